"""Content negotiation over the formats table: q-values, wildcards, aliases, errors, ?format=."""

from __future__ import annotations

import pytest

from labgraph import formats
from labgraph.formats import (
    CSV,
    DOCUMENT_FORMATS,
    GRAPH_FORMATS,
    HTML,
    JSONLD,
    NTRIPLES,
    RDFXML,
    RESULTS_FORMATS,
    SPARQL_JSON,
    SPARQL_XML,
    TSV,
    TURTLE,
)
from labgraph.web.conneg import NegotiationError, negotiate, offered_list, parse_accept


@pytest.mark.parametrize("accept", [None, "", "   ", "*/*", "*", "*/*;q=0.5", ", ,"])
def test_no_preference_gets_the_default(accept: str | None) -> None:
    assert negotiate(accept, RESULTS_FORMATS) is SPARQL_JSON
    assert negotiate(accept, GRAPH_FORMATS) is TURTLE
    assert negotiate(accept, GRAPH_FORMATS, default=JSONLD) is JSONLD


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("text/csv", CSV),
        ("text/tab-separated-values", TSV),
        ("application/sparql-results+xml", SPARQL_XML),
        ("application/sparql-results+json", SPARQL_JSON),
        ("application/json", SPARQL_JSON),  # an alias
        ("application/xml", SPARQL_XML),  # an alias
        ("TEXT/CSV", CSV),  # media types are case-insensitive
        ("text/csv; charset=utf-8", CSV),
        ("text/*", CSV),  # the first text/ offer
        ("text/tab-separated-values;q=0.9, text/csv;q=0.8", TSV),
        ("text/csv;q=0.1, */*", SPARQL_JSON),  # the wildcard's q=1 beats text/csv's 0.1
        ("application/sparql-results+json;q=0, */*", SPARQL_XML),  # q=0: never that one
        ("text/csv, application/sparql-results+xml", SPARQL_XML),  # equal q: the offers' order
        ("*/*;q=0.1, text/tab-separated-values;q=0.1", TSV),  # equal q: exact beats wildcard
        ("text/csv;q=0.5;foo=bar", CSV),  # accept-extensions after q
        ("text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2", SPARQL_JSON),  # Java's default
    ],
)
def test_results_negotiation(accept: str, expected: formats.Format) -> None:
    assert negotiate(accept, RESULTS_FORMATS) is expected


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/ld+json", JSONLD),
        ("application/json", JSONLD),
        ("application/rdf+xml", RDFXML),
        ("application/xml", RDFXML),
        ("application/x-turtle", TURTLE),
        ("application/n-triples", NTRIPLES),
        ("text/turtle;q=0.5, application/ld+json;q=0.9", JSONLD),
        ("application/*", JSONLD),  # the first application/ offer
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", RDFXML),
    ],
)
def test_graph_negotiation(accept: str, expected: formats.Format) -> None:
    assert negotiate(accept, GRAPH_FORMATS) is expected


def test_a_browser_gets_html_where_it_is_offered() -> None:
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    assert negotiate(browser, DOCUMENT_FORMATS) is HTML


@pytest.mark.parametrize(
    "accept",
    ["image/png", "text/csv;q=0", "*/*;q=0", "application/sparql-results+json;q=0, text/plain"],
)
def test_nothing_acceptable_is_a_406_listing_the_offers(accept: str) -> None:
    with pytest.raises(NegotiationError) as caught:
        negotiate(accept, (SPARQL_JSON, CSV) if "json" in accept else (CSV,))
    assert caught.value.status == 406
    assert caught.value.offers
    assert "text/csv" in offered_list(caught.value.offers)


@pytest.mark.parametrize(
    "accept",
    [
        ";;;garbage",
        "text",
        "text/",
        "/csv",
        "text/csv/x",
        "*/csv",
        "text/csv;q=abc",
        "text/csv;q=2",
        "text/csv;q=-1",
        "text/csv;q=nan",
        "text/csv;q",
        "te xt/csv",
        'text/"csv"',
    ],
)
def test_a_malformed_accept_header_is_a_400(accept: str) -> None:
    with pytest.raises(NegotiationError) as caught:
        negotiate(accept, RESULTS_FORMATS)
    assert caught.value.status == 400
    assert "Accept" in caught.value.message


def test_quoted_parameters_may_hold_commas() -> None:
    assert parse_accept('text/csv;foo="a,b";q=0.3, */*;q=0.1') == (
        ("text", "csv", 0.3),
        ("*", "*", 0.1),
    )


@pytest.mark.parametrize(
    ("value", "offers", "expected"),
    [
        ("ttl", GRAPH_FORMATS, TURTLE),
        ("turtle", GRAPH_FORMATS, TURTLE),
        ("jsonld", GRAPH_FORMATS, JSONLD),
        ("text/turtle", GRAPH_FORMATS, TURTLE),
        ("nt", GRAPH_FORMATS, NTRIPLES),
        ("csv", RESULTS_FORMATS, CSV),
        ("tsv", RESULTS_FORMATS, TSV),
        ("srx", RESULTS_FORMATS, SPARQL_XML),
        ("html", DOCUMENT_FORMATS, HTML),
        # what SPARQLWrapper sends as ``format=``: the meaning depends on the kind of result
        ("json", RESULTS_FORMATS, SPARQL_JSON),
        ("json", GRAPH_FORMATS, JSONLD),
        ("xml", RESULTS_FORMATS, SPARQL_XML),
        ("xml", GRAPH_FORMATS, RDFXML),
        ("rdf+xml", GRAPH_FORMATS, RDFXML),
        ("n3", GRAPH_FORMATS, TURTLE),
        ("json-ld", GRAPH_FORMATS, JSONLD),
        ("text/tab-separated-values", RESULTS_FORMATS, TSV),
    ],
)
def test_format_parameter_overrides_accept(
    value: str, offers: tuple[formats.Format, ...], expected: formats.Format
) -> None:
    assert negotiate("image/png", offers, format_param=value) is expected


@pytest.mark.parametrize(
    ("value", "offers"),
    [("ttl", RESULTS_FORMATS), ("csv", GRAPH_FORMATS), ("pdf", DOCUMENT_FORMATS)],
)
def test_a_format_parameter_not_offered_is_a_406(
    value: str, offers: tuple[formats.Format, ...]
) -> None:
    with pytest.raises(NegotiationError) as caught:
        negotiate(None, offers, format_param=value)
    assert caught.value.status == 406
    assert value in caught.value.message


def test_nothing_to_offer_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        negotiate("*/*", ())


def test_several_format_values_the_first_that_names_an_offer_wins() -> None:
    # SPARQLWrapper sends its format name, then its whole Accept header, as ``format=``.
    sent = ["json-ld", "application/ld+json,application/x-json+ld"]
    assert negotiate("image/png", GRAPH_FORMATS, format_param=sent) is JSONLD
    assert negotiate(None, GRAPH_FORMATS, format_param=sent[1:]) is JSONLD
    assert negotiate(None, GRAPH_FORMATS, format_param=["bogus", "ttl"]) is TURTLE
    tsv = ["tsv", "text/tab-separated-values"]
    assert negotiate(None, RESULTS_FORMATS, format_param=tsv) is TSV


def test_empty_format_values_leave_it_to_accept() -> None:
    assert negotiate("text/csv", RESULTS_FORMATS, format_param=["", " "]) is CSV
    assert negotiate("text/csv", RESULTS_FORMATS, format_param="") is CSV
