"""Real SPARQL clients against a real server: SPARQLWrapper and rdflib's SPARQLStore.

Each client is used as a researcher would, in every return format it offers and with each of its
request methods, with warnings turned into errors: SPARQLWrapper warns (and carries on) when the
media type of an answer is not the one it asked for, which is how a mislabelled DESCRIBE shows.
Graph answers are compared with the same graph fetched as N-Triples.
"""

from __future__ import annotations

import csv
import io
import urllib.error
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import rdflib
from rdflib.compare import isomorphic
from rdflib.plugins.stores.sparqlstore import SPARQLStore
from SPARQLWrapper import (
    CSV,
    GET,
    JSON,
    JSONLD,
    N3,
    POST,
    POSTDIRECTLY,
    RDFXML,
    TSV,
    TURTLE,
    URLENCODED,
    XML,
    SPARQLWrapper,
)
from SPARQLWrapper.SPARQLExceptions import QueryBadFormed

LAB = "https://w3id.org/labgraph/id/lab/ti-lab"
SELECT = f"SELECT ?p ?o WHERE {{ <{LAB}> ?p ?o }} ORDER BY ?p ?o"
ASK = f"ASK {{ <{LAB}> ?p ?o }}"
CONSTRUCT = f"CONSTRUCT {{ <{LAB}> ?p ?o }} WHERE {{ <{LAB}> ?p ?o }}"
DESCRIBE = f"DESCRIBE <{LAB}>"
METHODS = {
    "get": (GET, URLENCODED),
    "post-form": (POST, URLENCODED),
    "post-direct": (POST, POSTDIRECTLY),
}


@pytest.fixture(scope="module")
def endpoint(server: str) -> str:
    """The session's real server (tests/conftest.py), on each store."""
    return server + "/sparql"


@pytest.fixture(scope="module")
def reference(endpoint: str) -> dict[str, Any]:
    """What the answers must hold: the lab's triples, fetched as N-Triples with httpx."""
    response = httpx.get(
        endpoint,
        params={"query": CONSTRUCT},
        headers={"Accept": "application/n-triples"},
        timeout=30,
    )
    graph = rdflib.Graph().parse(data=response.text, format="nt")
    assert len(graph) > 5
    return {"graph": graph, "objects": sorted(str(o) for o in graph.objects())}


def wrapper(endpoint: str, query: str, fmt: str, method: str) -> SPARQLWrapper:
    client = SPARQLWrapper(endpoint)
    client.setQuery(query)
    client.setReturnFormat(fmt)
    http_method, request_method = METHODS[method]
    client.setMethod(http_method)
    client.setRequestMethod(request_method)
    return client


@pytest.fixture()
def strict() -> Iterator[None]:
    """Every warning is an error, but one: SPARQLWrapper 2.0 builds RDF/XML and JSON-LD answers
    into an rdflib ``ConjunctiveGraph``, which rdflib 7 deprecates. That warning is about the
    client's code, not about what the server sent."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings(
            "ignore", message="ConjunctiveGraph is deprecated", category=DeprecationWarning
        )
        yield


@pytest.mark.usefixtures("strict")
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("fmt", [JSON, XML, CSV, TSV])
def test_sparqlwrapper_select(
    endpoint: str, reference: dict[str, Any], fmt: str, method: str
) -> None:
    result = wrapper(endpoint, SELECT, fmt, method).query()
    assert result._get_responseFormat() == fmt
    converted = result.convert()
    if fmt == JSON:
        objects = [b["o"]["value"] for b in converted["results"]["bindings"]]
    elif fmt == XML:
        objects = [
            b.getElementsByTagName("binding")[1].firstChild.firstChild.data
            for b in converted.getElementsByTagName("result")
        ]
    elif fmt == CSV:
        objects = [row["o"] for row in csv.DictReader(io.StringIO(converted.decode()))]
    else:
        lines = converted.decode().splitlines()
        assert lines[0].split("\t") == ["?p", "?o"]
        objects = [rdflib.util.from_n3(line.split("\t")[1]) for line in lines[1:]]
        objects = [str(o) for o in objects]
    assert sorted(objects) == reference["objects"]


@pytest.mark.usefixtures("strict")
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("fmt", [JSON, XML])
def test_sparqlwrapper_ask(endpoint: str, fmt: str, method: str) -> None:
    result = wrapper(endpoint, ASK, fmt, method).query()
    assert result._get_responseFormat() == fmt
    converted = result.convert()
    if fmt == JSON:
        assert converted["boolean"] is True
    else:
        assert converted.getElementsByTagName("boolean")[0].firstChild.data == "true"


@pytest.mark.usefixtures("strict")
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("fmt", [TURTLE, N3, RDFXML, XML, JSONLD])
@pytest.mark.parametrize("query", [CONSTRUCT, DESCRIBE], ids=["construct", "describe"])
def test_sparqlwrapper_graphs(
    endpoint: str, reference: dict[str, Any], query: str, fmt: str, method: str
) -> None:
    result = wrapper(endpoint, query, fmt, method).query()
    expected = {TURTLE: TURTLE, N3: TURTLE, RDFXML: RDFXML, XML: RDFXML, JSONLD: JSONLD}[fmt]
    assert result._get_responseFormat() == expected  # DESCRIBE labelled as what it is
    converted = result.convert()
    if isinstance(converted, bytes):  # Turtle and N3 come back as text
        graph = rdflib.Graph().parse(data=converted, format="turtle")
    else:
        graph = rdflib.Graph()
        for triple in converted.triples((None, None, None)):
            graph.add(triple)
    assert isomorphic(graph, reference["graph"])


@pytest.mark.usefixtures("strict")
def test_sparqlwrapper_sees_the_parser_message_of_a_bad_query(endpoint: str) -> None:
    with pytest.raises(QueryBadFormed, match="error at"):
        wrapper(endpoint, "SELECT * WHERE { ?s ?p }", JSON, "get").query()


@pytest.mark.usefixtures("strict")
@pytest.mark.parametrize("method", ["post-form", "post-direct"])
def test_sparqlwrapper_update_is_refused(endpoint: str, method: str) -> None:
    client = wrapper(
        endpoint, "INSERT DATA { <http://example.org/s> <http://example.org/p> 1 }", JSON, method
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        client.query()
    assert caught.value.code == 403
    assert "read-only" in caught.value.read().decode()


@pytest.mark.usefixtures("strict")
@pytest.mark.parametrize("method", ["GET", "POST", "POST_FORM"])
@pytest.mark.parametrize("fmt", ["xml", "json", "csv", "tsv"])
def test_rdflib_sparqlstore_select(
    endpoint: str, reference: dict[str, Any], fmt: str, method: str
) -> None:
    graph = rdflib.Graph(SPARQLStore(endpoint, returnFormat=fmt, method=method))
    rows = list(graph.query(SELECT))
    assert sorted(str(row[1]) for row in rows) == reference["objects"]


@pytest.mark.usefixtures("strict")
@pytest.mark.parametrize("method", ["GET", "POST", "POST_FORM"])
@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_rdflib_sparqlstore_ask(endpoint: str, fmt: str, method: str) -> None:
    graph = rdflib.Graph(SPARQLStore(endpoint, returnFormat=fmt, method=method))
    assert graph.query(ASK).askAnswer is True
    assert graph.query("ASK { <http://example.org/nothing> ?p ?o }").askAnswer is False


@pytest.mark.usefixtures("strict")
@pytest.mark.parametrize("method", ["GET", "POST", "POST_FORM"])
@pytest.mark.parametrize("query", [CONSTRUCT, DESCRIBE], ids=["construct", "describe"])
def test_rdflib_sparqlstore_graphs(
    endpoint: str, reference: dict[str, Any], query: str, method: str
) -> None:
    graph = rdflib.Graph(SPARQLStore(endpoint, method=method))
    answer = graph.query(query).graph
    assert answer is not None and isomorphic(answer, reference["graph"])


@pytest.mark.usefixtures("strict")
def test_rdflib_sparqlstore_as_a_read_only_graph(endpoint: str, reference: dict[str, Any]) -> None:
    store = SPARQLStore(endpoint)
    graph = rdflib.Graph(store)
    lab = rdflib.URIRef(LAB)
    assert set(graph.triples((lab, None, None))) == set(reference["graph"])
    assert len(store) > 1000
    assert (lab, rdflib.RDF.type, None) in graph
