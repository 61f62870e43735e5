"""/sparql over real HTTP: request forms, datasets, every result format, negotiation, refusals,
size caps, and proof that no query makes the server open a connection.

Real servers on loopback: the session's ``server`` (tests/conftest.py) over the real release, on
each store; ``small`` over a generated dataset with named graphs, started with small caps so the
413/414 and result-size paths are reached with small requests; and ``capped``, those caps on each
store (``small`` itself for the embedded one, the real release served from the remote store).
The dataset tests stay on ``small``: ``serve --dataset`` is the embedded store's (a remote store
serves releases, which have no named graphs).
"""

from __future__ import annotations

import csv
import io
import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode
from xml.etree import ElementTree

import httpx
import pytest
import rdflib
from rdflib.compare import isomorphic

from conftest import STORES, start_server, stop_server

LG = "https://w3id.org/labgraph/"
TI_LAB = LG + "id/lab/ti-lab"
EX = "http://example.org/"
G1, G2 = EX + "g1", EX + "g2"
SRX = "{http://www.w3.org/2005/sparql-results#}"
MAX_QUERY = 2048
MAX_RESULT = 4096

SELECT = "SELECT ?s ?p ?o WHERE { ?s ?p ?o } ORDER BY ?s ?p ?o LIMIT 5"
LABS = f"SELECT (COUNT(?l) AS ?n) WHERE {{ ?l a <{LG}def/Lab> }}"
CONSTRUCT = f"CONSTRUCT {{ <{TI_LAB}> ?p ?o }} WHERE {{ <{TI_LAB}> ?p ?o }}"
DESCRIBE = f"DESCRIBE <{TI_LAB}>"

RESULT_TYPES = {
    "json": "application/sparql-results+json",
    "xml": "application/sparql-results+xml",
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
}
GRAPH_TYPES = {
    "text/turtle": "turtle",
    "application/ld+json": "json-ld",
    "application/rdf+xml": "xml",
    "application/n-triples": "nt",
    "application/n-quads": "nquads",
    "application/trig": "trig",
}


def media_type(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";", 1)[0].strip()


def subjects_of(response: httpx.Response) -> list[str]:
    """The ?s column of a SELECT result, whatever its format."""
    kind = media_type(response)
    if kind == RESULT_TYPES["json"]:
        return [b["s"]["value"] for b in response.json()["results"]["bindings"]]
    if kind == RESULT_TYPES["xml"]:
        root = ElementTree.fromstring(response.content)
        return [
            r.findtext(f"{SRX}binding[@name='s']/{SRX}uri", "") for r in root.iter(f"{SRX}result")
        ]
    if kind == RESULT_TYPES["csv"]:
        rows = list(csv.DictReader(io.StringIO(response.text)))
        return [r["s"] for r in rows]
    if kind == RESULT_TYPES["tsv"]:
        lines = response.text.splitlines()
        assert lines[0].split("\t") == ["?s", "?p", "?o"]
        return [line.split("\t")[0].strip("<>") for line in lines[1:]]
    raise AssertionError(f"not a results format: {kind}")


def parse_graph(response: httpx.Response) -> rdflib.Graph:
    syntax = GRAPH_TYPES[media_type(response)]
    if syntax in ("nquads", "trig"):
        dataset = rdflib.Dataset()
        dataset.parse(data=response.content, format=syntax)
        graph = rdflib.Graph()
        for s, p, o, _ in dataset.quads():
            graph.add((s, p, o))
        return graph
    return rdflib.Graph().parse(data=response.content, format=syntax)


#: Caps small enough to be reached with small requests (``small``, ``capped``).
CAPS = {
    "LABGRAPH_MAX_QUERY_BYTES": str(MAX_QUERY),
    "LABGRAPH_MAX_RESULT_BYTES": str(MAX_RESULT),
    "LABGRAPH_MAX_URL_BYTES": "16384",
}
#: Settings for a test server that takes many requests from one address: no per-client rate
#: limit (it exists to stop exactly that) and no JSON access log.
UNTHROTTLED = {"LABGRAPH_RATE_LIMIT": "0", "LABGRAPH_ACCESS_LOG": "off"}


def start_quiet(
    args: list[str], *, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """``start_server`` for a server that will take many requests from this one address."""
    return start_server(args, env={**UNTHROTTLED, **(env or {})})


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server over 100 default-graph triples and two named graphs, with small caps.

    The dataset is TriG, so ``--dataset`` is shown to keep a TriG file's named graphs (the W3C
    suite's server reads N-Quads)."""
    lines = [f'<{EX}item/{i:03}> <{EX}p> "value {i}" .\n' for i in range(100)]
    lines.append(f'<{G1}> {{ <{EX}a> <{EX}in> "g1" . }}\n')
    lines.append(f'<{G2}> {{ <{EX}b> <{EX}in> "g2" . }}\n')
    dataset = tmp_path_factory.mktemp("small") / "small.trig"
    dataset.write_text("".join(lines), encoding="utf-8")
    proc, url = start_quiet(["--dataset", str(dataset)], env=CAPS)
    try:
        yield url
    finally:
        stop_server(proc)


@pytest.fixture(scope="module", params=STORES)
def capped(request: pytest.FixtureRequest) -> Iterator[str]:
    """A server with the small caps, on each store: ``small`` for the embedded one."""
    if request.param == "embedded":
        yield request.getfixturevalue("small")
        return
    releases = request.getfixturevalue("releases_dir")
    store = request.getfixturevalue("store_url")
    proc, url = start_quiet(["--releases", str(releases), "--store", store], env=CAPS)
    try:
        yield url
    finally:
        stop_server(proc)


@pytest.fixture()
def listener() -> Iterator[tuple[str, socket.socket]]:
    """A listening loopback socket: any connection to it would wait in its accept queue."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/", sock
    finally:
        sock.close()


def assert_never_connected(sock: socket.socket) -> None:
    sock.settimeout(0.5)
    try:
        conn, peer = sock.accept()
    except TimeoutError:
        return
    conn.close()
    raise AssertionError(f"the server opened a connection from {peer}")


# --- request forms -------------------------------------------------------------------------


def test_get(client: httpx.Client) -> None:
    response = client.get("/sparql", params={"query": LABS})
    assert response.status_code == 200
    assert media_type(response) == RESULT_TYPES["json"]
    assert int(response.json()["results"]["bindings"][0]["n"]["value"]) >= 18


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=UTF-8",
        "Application/X-WWW-Form-Urlencoded;charset=utf-8",
    ],
)
def test_post_form(client: httpx.Client, content_type: str) -> None:
    response = client.post(
        "/sparql", content=urlencode({"query": LABS}), headers={"Content-Type": content_type}
    )
    assert response.status_code == 200, response.text
    assert int(response.json()["results"]["bindings"][0]["n"]["value"]) >= 18


@pytest.mark.parametrize(
    "content_type",
    [
        "application/sparql-query",
        "application/sparql-query; charset=utf-8",
        'application/sparql-query;charset="UTF-8"',
    ],
)
def test_post_direct(client: httpx.Client, content_type: str) -> None:
    response = client.post("/sparql", content=LABS.encode(), headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert int(response.json()["results"]["bindings"][0]["n"]["value"]) >= 18


@pytest.mark.parametrize("function", ["STRUUID()", "UUID()", "RAND()", "NOW()"])
def test_volatile_answers_are_never_cached(client: httpx.Client, function: str) -> None:
    """A release never changes, so answers are cached and revalidated by ETag, except those
    of queries whose value changes at each evaluation."""
    query = f"SELECT ({function} AS ?v) {{}}"
    first, second = (client.get("/sparql", params={"query": query}) for _ in range(2))
    assert first.status_code == second.status_code == 200
    for response in (first, second):
        assert "etag" not in response.headers
        assert response.headers["cache-control"] == "no-store"
    if function != "NOW()":  # two NOW() may fall in the same clock tick
        assert first.json() != second.json(), "the second answer came from a cache"
    stable = client.get("/sparql", params={"query": LABS})
    assert "etag" in stable.headers and "public" in stable.headers["cache-control"]


def test_head_has_the_get_headers_and_no_body(client: httpx.Client) -> None:
    response = client.head("/sparql", params={"query": LABS})
    assert response.status_code == 200
    assert media_type(response) == RESULT_TYPES["json"]
    assert response.content == b""


def test_get_is_revalidated_with_its_etag(client: httpx.Client) -> None:
    first = client.get("/sparql", params={"query": LABS})
    again = client.get(
        "/sparql", params={"query": LABS}, headers={"If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304
    other = client.get(
        "/sparql",
        params={"query": LABS},
        headers={"If-None-Match": first.headers["etag"], "Accept": "text/csv"},
    )
    assert other.status_code == 200, "another format is another representation"


@pytest.mark.parametrize(
    ("method", "kwargs", "status"),
    [
        (
            "PUT",
            {"content": b"ASK {}", "headers": {"Content-Type": "application/sparql-query"}},
            405,
        ),
        ("DELETE", {}, 405),
        ("POST", {"content": b"ASK {}", "headers": {"Content-Type": "text/plain"}}, 415),
        ("POST", {"content": b"query=ASK+%7B%7D"}, 415),
        (
            "POST",
            {
                "content": "ASK {}".encode("utf-16"),
                "headers": {"Content-Type": "application/sparql-query; charset=UTF-16"},
            },
            415,
        ),
        (
            "POST",
            {
                "content": b"ASK { ?s ?p '\xff' }",
                "headers": {"Content-Type": "application/sparql-query"},
            },
            400,
        ),
        (
            "POST",
            {
                "content": b"query=%FF",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
            400,
        ),
        (
            "POST",
            {
                "content": b"nothing=here",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
            400,
        ),
    ],
)
def test_malformed_requests_are_refused_with_a_reason(
    client: httpx.Client, method: str, kwargs: dict, status: int
) -> None:
    response = client.request(method, "/sparql", **kwargs)
    assert response.status_code == status, response.text
    assert response.text.strip()


def test_two_queries_are_a_400(client: httpx.Client) -> None:
    response = client.get("/sparql?query=ASK%7B%7D&query=ASK%7B%7D")
    assert response.status_code == 400
    assert "more than one" in response.text


# --- dataset (embedded only: a remote store serves a release, never a --dataset file) -----


def _subjects(small: str, query: str, **params: object) -> set[str]:
    response = httpx.get(small + "/sparql", params={"query": query, **params}, timeout=30)
    assert response.status_code == 200, response.text
    return {b["s"]["value"] for b in response.json()["results"]["bindings"]}


def test_default_graph_uri_picks_the_default_graph(small: str) -> None:
    query = "SELECT DISTINCT ?s WHERE { ?s ?p ?o }"
    assert EX + "a" not in _subjects(small, query + " ORDER BY ?s LIMIT 5")  # the store's own
    assert _subjects(small, query, **{"default-graph-uri": G1}) == {EX + "a"}
    assert _subjects(small, query, **{"default-graph-uri": [G1, G2]}) == {EX + "a", EX + "b"}


def test_named_graph_uri_limits_the_named_graphs(small: str) -> None:
    query = "SELECT ?s WHERE { GRAPH ?g { ?s ?p ?o } }"
    assert _subjects(small, query) == {EX + "a", EX + "b"}
    assert _subjects(small, query, **{"named-graph-uri": G2}) == {EX + "b"}


def test_protocol_dataset_overrides_from(small: str) -> None:
    query = f"SELECT ?s FROM <{G2}> WHERE {{ ?s ?p ?o }}"
    assert _subjects(small, query) == {EX + "b"}
    assert _subjects(small, query, **{"default-graph-uri": G1}) == {EX + "a"}


def test_dataset_parameters_in_a_form_post(small: str) -> None:
    response = httpx.post(
        small + "/sparql",
        data={"query": "SELECT ?s WHERE { ?s ?p ?o }", "default-graph-uri": G2},
        timeout=30,
    )
    assert response.status_code == 200
    assert [b["s"]["value"] for b in response.json()["results"]["bindings"]] == [EX + "b"]


def test_a_graph_name_must_be_an_iri(small: str) -> None:
    response = httpx.get(
        small + "/sparql", params={"query": "ASK {}", "default-graph-uri": "not an iri"}, timeout=30
    )
    assert response.status_code == 400
    assert "not an absolute IRI" in response.text


def test_relative_iris_resolve_against_the_endpoint(small: str) -> None:
    response = httpx.get(
        small + "/sparql",
        params={"query": "CONSTRUCT { <s> <p> 1 } {}"},
        headers={"Accept": "application/n-triples"},
        timeout=30,
    )
    assert response.status_code == 200
    assert response.text.startswith(f"<{small}/s> <{small}/p> ")


def test_a_graph_the_client_names_is_empty_never_the_pointer_or_a_release(
    client: httpx.Client, releases_dir: Path
) -> None:
    """The release is the default graph and the only graph with triples, on either store: a
    remote store also holds the pointer graph and release graphs, under names a client can give.
    """

    def count(**params: str) -> int:
        response = client.get("/sparql", params=params, headers={"Accept": "text/csv"})
        assert response.status_code == 200, response.text
        return int(response.text.split()[1])

    every = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
    assert count(query=every) > 1000
    release = (releases_dir / "current").resolve().name
    for graph in (f"{LG}graph/current", f"{LG}graph/{release}", EX + "nowhere"):
        assert count(query=every, **{"default-graph-uri": graph}) == 0, graph
        assert count(query=f"SELECT (COUNT(*) AS ?n) FROM <{graph}> {{ ?s ?p ?o }}") == 0, graph
        assert count(query=f"SELECT (COUNT(*) AS ?n) {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}") == 0
        assert (
            count(
                query="SELECT (COUNT(*) AS ?n) { GRAPH ?g { ?s ?p ?o } }",
                **{"named-graph-uri": EX + "nowhere"},
            )
            == 0
        )


# --- result formats ------------------------------------------------------------------------


@pytest.mark.parametrize("name", RESULT_TYPES)
def test_select_in_every_results_format(client: httpx.Client, name: str) -> None:
    reference = subjects_of(client.get("/sparql", params={"query": SELECT}))
    response = client.get(
        "/sparql", params={"query": SELECT}, headers={"Accept": RESULT_TYPES[name]}
    )
    assert response.status_code == 200
    assert media_type(response) == RESULT_TYPES[name]
    assert "Accept" in response.headers["vary"]
    assert subjects_of(response) == reference and len(reference) == 5


@pytest.mark.parametrize(("name", "value"), [("json", "true"), ("xml", "true")])
def test_ask_as_json_and_xml(client: httpx.Client, name: str, value: str) -> None:
    response = client.get(
        "/sparql",
        params={"query": f"ASK {{ <{TI_LAB}> ?p ?o }}"},
        headers={"Accept": RESULT_TYPES[name]},
    )
    assert response.status_code == 200
    assert media_type(response) == RESULT_TYPES[name]
    if name == "json":
        assert response.json()["boolean"] is True
    else:
        root = ElementTree.fromstring(response.content)
        assert root.findtext(f"{SRX}boolean") == value


def test_ask_has_no_csv_form_so_csv_alone_is_a_406(client: httpx.Client) -> None:
    response = client.get("/sparql", params={"query": "ASK {}"}, headers={"Accept": "text/csv"})
    assert response.status_code == 406
    assert RESULT_TYPES["json"] in response.text and RESULT_TYPES["xml"] in response.text
    lenient = client.get(
        "/sparql", params={"query": "ASK {}"}, headers={"Accept": "text/csv, */*;q=0.1"}
    )
    assert lenient.status_code == 200 and lenient.json()["boolean"] is True


@pytest.mark.parametrize("query", [CONSTRUCT, DESCRIBE], ids=["construct", "describe"])
@pytest.mark.parametrize("accept", GRAPH_TYPES)
def test_graphs_in_every_rdf_format(client: httpx.Client, query: str, accept: str) -> None:
    reference = parse_graph(
        client.get("/sparql", params={"query": query}, headers={"Accept": "application/n-triples"})
    )
    assert len(reference) > 5
    response = client.get("/sparql", params={"query": query}, headers={"Accept": accept})
    assert response.status_code == 200
    assert media_type(response) == accept
    assert isomorphic(parse_graph(response), reference)


@pytest.mark.parametrize("query", [CONSTRUCT, DESCRIBE], ids=["construct", "describe"])
def test_graphs_default_to_turtle(client: httpx.Client, query: str) -> None:
    for accept in (None, "*/*", "text/*"):
        headers = {"Accept": accept} if accept else {}
        response = client.get("/sparql", params={"query": query}, headers=headers)
        assert response.status_code == 200
        assert media_type(response) == "text/turtle", accept
    as_results = client.get(
        "/sparql", params={"query": query}, headers={"Accept": RESULT_TYPES["json"]}
    )
    assert as_results.status_code == 406, "a graph is never labelled as SPARQL results"
    assert "text/turtle" in as_results.text


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("text/csv;q=0.5, text/tab-separated-values", "tsv"),
        ("text/csv;q=0.9, application/sparql-results+xml;q=0.8", "csv"),
        ("application/sparql-results+json;q=0, */*;q=0.5", "xml"),
        ("text/html;q=0.1, text/csv", "csv"),
        ("application/json", "json"),
    ],
)
def test_q_values_choose_the_format(client: httpx.Client, accept: str, expected: str) -> None:
    response = client.get("/sparql", params={"query": SELECT}, headers={"Accept": accept})
    assert response.status_code == 200
    assert media_type(response) == RESULT_TYPES[expected]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("csv", "text/csv"),
        ("tsv", "text/tab-separated-values"),
        ("xml", "application/sparql-results+xml"),
    ],
)
def test_format_parameter_overrides_accept(client: httpx.Client, value: str, expected: str) -> None:
    response = client.get(
        "/sparql",
        params={"query": SELECT, "format": value},
        headers={"Accept": "application/sparql-results+json"},
    )
    assert response.status_code == 200
    assert media_type(response) == expected


def test_no_acceptable_format_is_a_406_listing_the_offers(client: httpx.Client) -> None:
    response = client.get("/sparql", params={"query": SELECT}, headers={"Accept": "image/png"})
    assert response.status_code == 406
    for offered in RESULT_TYPES.values():
        assert offered in response.text
    graph = client.get("/sparql", params={"query": CONSTRUCT}, headers={"Accept": "image/png"})
    assert graph.status_code == 406
    for offered in GRAPH_TYPES:
        assert offered in graph.text


def test_a_malformed_accept_header_is_a_400(client: httpx.Client) -> None:
    response = client.get(
        "/sparql", params={"query": SELECT}, headers={"Accept": "text/csv;q=lots"}
    )
    assert response.status_code == 400
    assert "Accept" in response.text


def test_a_syntax_error_is_a_400_with_the_parser_message(client: httpx.Client) -> None:
    response = client.get("/sparql", params={"query": "SELECT * WHERE { ?s ?p }"})
    assert response.status_code == 400
    assert media_type(response) == "text/plain"
    assert "error at 1:" in response.text  # the position, as the parser reports it


def test_the_service_description(client: httpx.Client, server: str) -> None:
    response = client.get("/sparql")
    assert response.status_code == 200 and media_type(response) == "text/turtle"
    graph = rdflib.Graph().parse(data=response.content, format="turtle")
    sd = rdflib.Namespace("http://www.w3.org/ns/sparql-service-description#")
    assert (None, sd.endpoint, rdflib.URIRef(server + "/sparql")) in graph
    page = client.get("/sparql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and media_type(page) == "text/html"


# --- refusals ------------------------------------------------------------------------------

UPDATE = "INSERT DATA { <http://example.org/s> <http://example.org/p> 1 }"


@pytest.mark.parametrize(
    ("method", "kwargs"),
    [
        ("GET", {"params": {"update": "CLEAR ALL"}}),
        ("GET", {"params": {"query": UPDATE}}),
        ("GET", {"params": {"query": "DROP ALL"}}),
        ("POST", {"data": {"update": UPDATE}}),
        ("POST", {"data": {"query": "CLEAR DEFAULT"}}),
        (
            "POST",
            {"content": UPDATE.encode(), "headers": {"Content-Type": "application/sparql-update"}},
        ),
        (
            "POST",
            {"content": UPDATE.encode(), "headers": {"Content-Type": "application/sparql-query"}},
        ),
        (
            "POST",
            {
                "params": {"using-graph-uri": "http://example.org/g"},
                "content": b"ASK {}",
                "headers": {"Content-Type": "application/sparql-query"},
            },
        ),
    ],
    ids=[
        "get-update",
        "get-query",
        "get-drop",
        "form-update",
        "form-query",
        "direct-update",
        "direct-query",
        "using-graph-uri",
    ],
)
def test_update_is_refused_in_every_form(
    client: httpx.Client, method: str, kwargs: dict, request: pytest.FixtureRequest
) -> None:
    response = client.request(method, "/sparql", **kwargs)
    assert response.status_code == 403, response.text
    assert "read-only" in response.text
    # A query of its own (a comment makes it new): an answer cached earlier would prove nothing.
    check = f"ASK {{ <http://example.org/s> ?p ?o }} # {request.node.name}"
    assert client.get("/sparql", params={"query": check}).json()["boolean"] is False


def test_load_service_and_from_never_open_a_connection(
    client: httpx.Client, listener: tuple[str, socket.socket]
) -> None:
    url, sock = listener
    refused = {
        f"LOAD <{url}>": 403,
        f"LOAD SILENT <{url}> INTO GRAPH <{url}g>": 403,
        f"SELECT * WHERE {{ SERVICE <{url}> {{ ?s ?p ?o }} }}": 400,
        f"SELECT * WHERE {{ SERVICE SILENT <{url}> {{ ?s ?p ?o }} }}": 400,
        f"ASK {{ FILTER EXISTS {{ SERVICE <{url}> {{ ?s ?p ?o }} }} }}": 400,
    }
    for query, status in refused.items():
        for response in (
            client.get("/sparql", params={"query": query}),
            client.post("/sparql", data={"query": query}),
        ):
            assert response.status_code == status, (query, response.text)
            assert "not allowed" in response.text
    loaded = client.post(
        "/sparql",
        content=f"LOAD <{url}>".encode(),
        headers={"Content-Type": "application/sparql-update"},
    )
    assert loaded.status_code == 403
    answered = [
        f"SELECT * FROM <{url}> WHERE {{ ?s ?p ?o }}",
        f"SELECT * FROM NAMED <{url}> WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }}",
        f"ASK {{ GRAPH <{url}> {{ ?s ?p ?o }} }}",
        f"DESCRIBE <{url}>",
    ]
    for query in answered:  # a graph IRI is a name in the store, never something to fetch
        response = client.get(
            "/sparql",
            params={"query": query, "default-graph-uri": url}
            if "FROM NAMED" in query
            else {"query": query},
        )
        assert response.status_code == 200, response.text
    response = client.get(
        "/sparql",
        params={"query": "ASK { ?s ?p ?o }", "default-graph-uri": url, "named-graph-uri": url},
    )
    assert response.status_code == 200 and response.json()["boolean"] is False
    assert_never_connected(sock)


# --- caps ----------------------------------------------------------------------------------


def _padded(size: int) -> str:
    query = "ASK {}\n"
    return query + "#" * (size - len(query))


def test_a_body_over_the_cap_is_a_413(capped: str) -> None:
    big = _padded(MAX_QUERY + 100).encode()
    direct = httpx.post(
        capped + "/sparql",
        content=big,
        headers={"Content-Type": "application/sparql-query"},
        timeout=30,
    )
    assert direct.status_code == 413
    assert str(MAX_QUERY) in direct.text
    form = httpx.post(capped + "/sparql", data={"query": big.decode()}, timeout=30)
    assert form.status_code == 413


def test_a_chunked_body_over_the_cap_is_a_413(capped: str) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap must hold while reading
        for _ in range(10):
            yield b"#" * 1000

    response = httpx.post(
        capped + "/sparql",
        content=chunks(),
        headers={"Content-Type": "application/sparql-query"},
        timeout=30,
    )
    assert response.status_code == 413
    assert str(MAX_QUERY) in response.text


def test_a_query_over_the_cap_is_a_413_and_a_url_over_its_cap_a_414(capped: str) -> None:
    assert (
        httpx.get(
            capped + "/sparql", params={"query": _padded(MAX_QUERY - 200)}, timeout=30
        ).status_code
        == 200
    )
    response = httpx.get(capped + "/sparql", params={"query": _padded(MAX_QUERY + 1)}, timeout=30)
    assert response.status_code == 413
    assert str(MAX_QUERY) in response.text
    too_long = httpx.get(capped + "/sparql", params={"query": _padded(20000)}, timeout=30)
    assert too_long.status_code == 414


@pytest.mark.parametrize("query", ["SELECT * WHERE { ?s ?p ?o }", "CONSTRUCT WHERE { ?s ?p ?o }"])
def test_a_result_over_the_cap_is_an_error_never_a_truncation(capped: str, query: str) -> None:
    response = httpx.get(capped + "/sparql", params={"query": query}, timeout=30)
    assert response.status_code == 422
    assert f"larger than {MAX_RESULT} bytes" in response.text
    assert "LIMIT" in response.text
    fits = httpx.get(capped + "/sparql", params={"query": query + " LIMIT 3"}, timeout=30)
    assert fits.status_code == 200


def test_the_small_dataset_is_what_the_tests_assume(small: str) -> None:
    response = httpx.get(
        small + "/sparql", params={"query": "SELECT (COUNT(*) AS ?n) {?s ?p ?o}"}, timeout=30
    )
    assert json.loads(response.content)["results"]["bindings"][0]["n"]["value"] == "100"
