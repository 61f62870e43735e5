"""The guard reads the query form and refuses SERVICE and updates, without being fooled.

Every case that must pass is also parsed by pyoxigraph, so the guard and the engine are shown to
read the same text the same way: a query the guard lets through is one the engine reads as that
form, and what it refuses really is a SERVICE or an update.
"""

from __future__ import annotations

import contextlib

import pyoxigraph as ox
import pytest

from labgraph.guard import inspect

ALLOWED = {
    "SELECT * WHERE { ?s ?p ?o }": "SELECT",
    "ask {}": "ASK",
    "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }": "CONSTRUCT",
    "DESCRIBE <http://example.org/x>": "DESCRIBE",
    "PREFIX ex: <http://example.org/> BASE <http://b/> SELECT * { ?s ex:p ?o }": "SELECT",
    # variables, prefixed names, IRIs, strings and comments that spell forbidden words
    "SELECT ?service ?load WHERE { ?service ?load ?insert }": "SELECT",
    "SELECT $service { $service ?p ?o }": "SELECT",
    "PREFIX service: <http://example.org/> SELECT * { ?s service:load ?o }": "SELECT",
    "PREFIX ex: <http://example.org/> SELECT * { ?s ex:SERVICE ?o }": "SELECT",
    "SELECT * { <http://example.org/SERVICE> <http://example.org/LOAD> ?o }": "SELECT",
    'SELECT * { ?s ?p "SERVICE <http://evil/> { }" }': "SELECT",
    "SELECT * { ?s ?p 'DROP ALL' }": "SELECT",
    'SELECT * { ?s ?p """multi\nline SERVICE "quoted" INSERT""" }': "SELECT",
    "SELECT * { ?s ?p '''it''s LOAD <x>''' }": "SELECT",
    'SELECT * { ?s ?p "escaped \\" SERVICE" }': "SELECT",
    "# SERVICE <http://evil/> in a comment\nSELECT * { ?s ?p ?o }": "SELECT",
    "SELECT * { ?s ?p ?o } # CLEAR ALL": "SELECT",
    "SELECT * { ?s ?p ?o FILTER(?o<?s||?s>?o) }": "SELECT",
    'SELECT ("\\u0053ERVICE" AS ?x) {}': "SELECT",  # an escape inside a string stays in it
}

SERVICE = [
    "SELECT * { SERVICE <http://example.org/sparql> { ?s ?p ?o } }",
    "select * { service silent <http://example.org/sparql> { ?s ?p ?o } }",
    "SELECT * { ?s ?p ?o . SERVICE ?endpoint { ?s ?p ?o } }",
    "SELECT * {SERVICE<http://example.org/sparql>{?s ?p ?o}}",
    "SELECT * { \\u0053ERVICE <http://example.org/sparql> { ?s ?p ?o } }",
    "SELECT * { SERVIC\\U00000045 <http://example.org/sparql> { ?s ?p ?o } }",
    "ASK { FILTER EXISTS { SERVICE <http://example.org/sparql> { ?s ?p ?o } } }",
    "PREFIX service: <http://example.org/> SELECT * { SERVICE service:x { ?s ?p ?o } }",
    "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p 'x' . SERVICE <http://e/> { ?s ?p ?o } }",
]

UPDATES = {
    "INSERT DATA { <http://a> <http://b> <http://c> }": "INSERT",
    "DELETE WHERE { ?s ?p ?o }": "DELETE",
    "LOAD <http://example.org/data.ttl>": "LOAD",
    "load silent <http://example.org/data.ttl> into graph <http://g>": "LOAD",
    "CLEAR ALL": "CLEAR",
    "DROP GRAPH <http://g>": "DROP",
    "CREATE GRAPH <http://g>": "CREATE",
    "ADD DEFAULT TO <http://g>": "ADD",
    "MOVE <http://a> TO <http://b>": "MOVE",
    "COPY <http://a> TO <http://b>": "COPY",
    "WITH <http://g> DELETE { ?s ?p ?o } WHERE { ?s ?p ?o }": "WITH",
    (
        "PREFIX ex: <http://example.org/> INSERT { ?s ex:p 1 } WHERE { SELECT ?s { ?s ?p ?o } }"
    ): "INSERT",
    "# a comment\nINSERT DATA { <http://a> <http://b> 'SELECT' }": "INSERT",
}


@pytest.mark.parametrize("text", ALLOWED)
def test_queries_pass_with_their_form(text: str) -> None:
    info = inspect(text)
    assert info.refusal is None
    assert info.form == ALLOWED[text]
    assert not info.is_update
    ox.Store().query(text)  # the engine agrees it is a valid query


@pytest.mark.parametrize("text", SERVICE)
def test_service_is_refused_whatever_its_spelling(text: str) -> None:
    info = inspect(text)
    assert info.refusal is not None
    assert "SERVICE" in info.refusal and "not allowed" in info.refusal
    assert not info.is_update


@pytest.mark.parametrize("text", UPDATES)
def test_updates_are_refused_and_named(text: str) -> None:
    info = inspect(text)
    assert info.is_update
    assert info.refusal is not None
    assert f"({UPDATES[text]})" in info.refusal and "read-only" in info.refusal
    if UPDATES[text] != "LOAD":  # the engine parses it as an update (LOAD would fetch the IRI)
        with contextlib.suppress(RuntimeError):  # evaluation errors (no such graph) are fine
            ox.Store().update(text)


def test_escapes_are_decoded_before_reading_as_the_spec_says() -> None:
    """SPARQL 1.1 §19.2 decodes \\u escapes before parsing; an engine following it would read
    ``\\u0053ERVICE`` as SERVICE, so the guard does too."""
    assert inspect("\\u0053ELECT * {}").form == "SELECT"
    assert inspect("\\u0049NSERT DATA { <http://a> <http://b> 1 }").is_update


def test_an_unfinished_string_cannot_hide_a_keyword() -> None:
    """A quote with no end is not a string: what follows is still read."""
    assert inspect('SELECT * { ?s ?p "open SERVICE <http://e/> { } }').refusal is not None


def test_garbage_has_no_form_and_is_left_to_the_parser() -> None:
    info = inspect("HELLO { ?s ?p ?o }")
    assert info.form is None and info.refusal is None and not info.is_update
    assert inspect("").form is None
    with pytest.raises(SyntaxError):
        ox.Store().query("HELLO { ?s ?p ?o }")


def test_a_query_after_the_prologue_is_not_an_update_because_of_a_later_keyword() -> None:
    info = inspect("SELECT * { ?s ?p ?o } LIMIT 1 ; INSERT DATA { <http://a> <http://b> 1 }")
    assert info.form == "SELECT" and not info.is_update
    with pytest.raises(SyntaxError):  # the engine refuses it as a query
        ox.Store().query("SELECT * { ?s ?p ?o } LIMIT 1 ; INSERT DATA { <http://a> <http://b> 1 }")


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * { ?s ?p 1e3SERVICE <http://127.0.0.1:9/> { ?a ?b ?c } }",
        "SELECT * { ?s ?p 1SERVICE <http://127.0.0.1:9/> { ?a ?b ?c } }",
        "SELECT * { ?s ?p .5E-2service <http://127.0.0.1:9/> { ?a ?b ?c } }",
    ],
)
def test_service_glued_to_a_number_is_refused(query: str) -> None:
    """Regression: a keyword glued to a numeric literal slipped past the tokenizer."""
    assert inspect(query).refusal is not None


@pytest.mark.parametrize(
    ("text", "volatile"),
    [
        ("SELECT (NOW() AS ?t) {}", True),
        ("SELECT (rand() AS ?r) {}", True),
        ("SELECT (STRUUID() AS ?u) {}", True),
        ("CONSTRUCT { ?s <http://e/id> ?u } WHERE { ?s ?p ?o BIND(UUID() AS ?u) }", True),
        ("SELECT ?now ?rand WHERE { ?now ?rand ?uuid }", False),
        ("SELECT * { ?s ?p 'NOW()' } # RAND()", False),
        ("PREFIX ex: <http://e/> SELECT * { ?s ex:now ?o }", False),
        ("SELECT (STR(?s) AS ?x) { ?s ?p ?o }", False),
    ],
)
def test_volatile_functions_are_noticed(text: str, volatile: bool) -> None:
    """Queries calling NOW(), RAND(), UUID() or STRUUID() get a new answer each time."""
    assert inspect(text).volatile is volatile


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("SELECT * FROM <http://e/g> WHERE { ?s ?p ?o }", True),
        ("select * from named <http://e/g> { graph ?g { ?s ?p ?o } }", True),
        ("PREFIX e: <http://e/> DESCRIBE ?s FROM e:g WHERE { ?s ?p ?o }", True),
        ("SELECT ?from { ?from <http://e/from> 'FROM' } # FROM <http://e/g>", False),
        ("PREFIX e: <http://e/> SELECT * { ?s e:from ?o }", False),
    ],
)
def test_a_dataset_clause_is_noticed(text: str, names: bool) -> None:
    """A remote store is sent the query's default graph as empty when the query names its own
    (labgraph.remote), as the embedded store has no graph but the release."""
    assert inspect(text).names_graphs is names
