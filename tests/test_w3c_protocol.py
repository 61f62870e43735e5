"""The W3C SPARQL 1.1 Protocol and Service Description test suites, replayed over real HTTP.

The manifests (../shared/conformance/w3c-sparql11) are read with rdflib and every request they
describe is sent with httpx to a real ``labgraph serve --dataset FILE`` on loopback. The dataset is
an N-Quads file written here from the suite's data files, each in the named graph its
``ut:graphData`` label names. The endpoint is read-only, so the 7 positive update tests are
expected to be refused (4xx) instead, and the queries that follow them must see no change.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pyoxigraph as ox
import pytest
import rdflib
from rdflib import RDF, RDFS, Namespace
from rdflib.collection import Collection
from rdflib.term import Node

from labgraph.store import prepare
from test_sparql_endpoint import start_quiet

from conftest import shared, stop_server

MF = Namespace("http://www.w3.org/2001/sw/DataAccess/tests/test-manifest#")
HT = Namespace("http://www.w3.org/2011/http#")
CNT = Namespace("http://www.w3.org/2011/content#")
HTS = Namespace("http://www.w3.org/2011/http-statusCodes#")
UT = Namespace("http://www.w3.org/2009/sparql/tests/test-update#")
SD = Namespace("http://www.w3.org/ns/sparql-service-description#")
SRX = "{http://www.w3.org/2005/sparql-results#}"

PROTOCOL = shared("conformance", "w3c-sparql11", "protocol", "manifest.ttl")
SERVICE_DESCRIPTION = shared("conformance", "w3c-sparql11", "service-description", "manifest.ttl")

TABULAR_TYPES = {
    "application/sparql-results+json",
    "application/sparql-results+xml",
    "text/csv",
    "text/tab-separated-values",
}
BOOLEAN_TYPES = {"application/sparql-results+json", "application/sparql-results+xml"}
RDF_TYPES = {
    "text/turtle": "turtle",
    "application/rdf+xml": "xml",
    "application/n-triples": "nt",
    "application/ld+json": "json-ld",
    "application/n-quads": "nquads",
    "application/trig": "trig",
}


@dataclass(frozen=True)
class Step:
    """One HTTP request of a test and what its response must be."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None
    statuses: frozenset[str]  # status classes: "2xx", "3xx", "4xx", ...
    boolean: bool | None
    result_format: str | None


@dataclass(frozen=True)
class ProtocolTest:
    name: str
    title: str
    steps: tuple[Step, ...]
    graph_data: dict[str, Path] = field(default_factory=dict)

    @property
    def is_update(self) -> bool:
        """A positive update test: it expects an update to succeed on a writable endpoint."""
        return self.name.startswith("update_")


def _list(graph: rdflib.Graph, head: Node | None) -> list[Node]:
    return list(Collection(graph, head)) if head is not None else []


def _step(graph: rdflib.Graph, request: Node) -> Step:
    headers = {
        str(graph.value(h, HT.fieldName)): str(graph.value(h, HT.fieldValue))
        for h in _list(graph, graph.value(request, HT.headers))
    }
    body_node = graph.value(request, HT.body)
    body = None
    if body_node is not None:
        encoding = str(graph.value(body_node, CNT.characterEncoding) or "UTF-8")
        body = str(graph.value(body_node, CNT.chars)).encode(encoding.lower())
    response = graph.value(request, HT.resp)
    statuses = frozenset(
        str(s).rsplit("StatusCode", 1)[1].lower()
        for s in graph.objects(response, MF.expectedStatus)
    )
    boolean = graph.value(response, MF.expectedBoolean)
    result_format = graph.value(response, MF.expectedFormat)
    return Step(
        method=str(graph.value(request, HT.methodName)),
        path=str(graph.value(request, HT.absolutePath)),
        headers=headers,
        body=body,
        statuses=statuses,
        boolean=None if boolean is None else bool(boolean.toPython()),
        result_format=None if result_format is None else str(result_format),
    )


def load_protocol_tests() -> list[ProtocolTest]:
    """Every entry of the protocol manifest, in manifest order."""
    graph = rdflib.Graph().parse(PROTOCOL, format="turtle")
    manifest = next(graph.subjects(RDF.type, MF.Manifest))
    tests = []
    for entry in _list(graph, graph.value(manifest, MF.entries)):
        action = graph.value(entry, MF.action)
        steps = tuple(_step(graph, r) for r in _list(graph, graph.value(action, HT.requests)))
        graph_data = {
            str(graph.value(d, RDFS.label)): Path(
                str(graph.value(d, UT.graph)).removeprefix("file://")
            )
            for d in graph.objects(entry, UT.graphData)
        }
        name = str(entry).rsplit("#", 1)[1]
        tests.append(ProtocolTest(name, str(graph.value(entry, MF.name)), steps, graph_data))
    return tests


TESTS = load_protocol_tests()


def test_the_manifest_has_the_34_tests_and_27_apply_to_a_read_only_endpoint() -> None:
    assert len(TESTS) == 34
    assert sum(not t.is_update for t in TESTS) == 27
    assert sum(t.name.startswith("bad_") for t in TESTS) == 14
    assert all(t.steps for t in TESTS)


# Embedded only: the W3C suite replays its own datasets with serve --dataset.
@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server over the suite's data: every ``ut:graphData`` file in the graph its label names."""
    quads: set[str] = set()
    for test in TESTS:
        for graph_iri, path in test.graph_data.items():
            for triple in rdflib.Graph().parse(path, format="nt"):
                quads.add(" ".join(t.n3() for t in triple) + f" <{graph_iri}> .\n")
    assert quads, "the manifest names no data files"
    dataset = tmp_path_factory.mktemp("w3c") / "protocol.nq"
    dataset.write_text("".join(sorted(quads)), encoding="utf-8")
    proc, url = start_quiet(["--dataset", str(dataset)])
    try:
        yield url
    finally:
        stop_server(proc)


def _media_type(response: httpx.Response) -> str:
    return response.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _boolean(response: httpx.Response) -> bool:
    media_type = _media_type(response)
    assert media_type in BOOLEAN_TYPES, f"a boolean result came as {media_type!r}"
    if media_type.endswith("json"):
        value = json.loads(response.content)["boolean"]
        assert isinstance(value, bool)
        return value
    element = ElementTree.fromstring(response.content).find(f"{SRX}boolean")
    assert element is not None and element.text in ("true", "false")
    return element.text == "true"


def _check_format(response: httpx.Response, expected: str) -> None:
    media_type = _media_type(response)
    if expected == "boolean":
        _boolean(response)
    elif expected == "tabular":
        assert media_type in TABULAR_TYPES, f"solutions came as {media_type!r}"
        if media_type.endswith("json"):
            assert "bindings" in json.loads(response.content)["results"]
        elif media_type.endswith("xml"):
            assert ElementTree.fromstring(response.content).find(f"{SRX}results") is not None
        else:
            assert response.text.splitlines()[0].strip() in ("value", "?value")
    elif expected == "RDF":
        assert media_type in RDF_TYPES, f"a graph came as {media_type!r}"
        syntax = RDF_TYPES[media_type]
        target = rdflib.Dataset() if syntax in ("nquads", "trig") else rdflib.Graph()
        target.parse(data=response.content, format=syntax)
    else:
        raise AssertionError(f"unknown mf:expectedFormat {expected!r}")


def _send(client: httpx.Client, step: Step) -> httpx.Response:
    return client.request(step.method, step.path, headers=step.headers, content=step.body)


@pytest.mark.parametrize("test", [t for t in TESTS if not t.is_update], ids=lambda t: t.name)
def test_protocol(endpoint: str, test: ProtocolTest) -> None:
    """A query or bad_* test: every step gets the status class, result kind and value expected."""
    with httpx.Client(base_url=endpoint, timeout=30) as client:
        for step in test.steps:
            response = _send(client, step)
            status_class = f"{response.status_code // 100}xx"
            assert status_class in step.statuses, (
                f"{test.title}: {step.method} {step.path} -> {response.status_code} "
                f"(expected {sorted(step.statuses)}): {response.text[:300]}"
            )
            if step.result_format is not None:
                _check_format(response, step.result_format)
            if step.boolean is not None:
                assert _boolean(response) is step.boolean
            if status_class == "4xx":
                assert response.text.strip(), "a refusal must say why"


@pytest.mark.parametrize("test", [t for t in TESTS if t.is_update], ids=lambda t: t.name)
def test_update_is_refused_and_changes_nothing(endpoint: str, test: ProtocolTest) -> None:
    """The endpoint is read-only: the update gets a 4xx that says so, and the query after it
    (which checks the update's effect) finds the data unchanged."""
    update, *checks = test.steps
    with httpx.Client(base_url=endpoint, timeout=30) as client:
        response = _send(client, update)
        assert 400 <= response.status_code < 500, response.text
        assert "read-only" in response.text
        for step in checks:
            response = _send(client, step)
            assert response.status_code == 200, response.text
            assert step.boolean is True
            assert _boolean(response) is False, "the refused update changed the data"


# --- Service description --------------------------------------------------------------------

SD_CLASSES = {
    "Service",
    "Feature",
    "Language",
    "Function",
    "Aggregate",
    "EntailmentRegime",
    "EntailmentProfile",
    "GraphCollection",
    "Dataset",
    "Graph",
    "NamedGraph",
}
SD_INSTANCES = {
    "SPARQL10Query",
    "SPARQL11Query",
    "SPARQL11Update",
    "DereferencesURIs",
    "UnionDefaultGraph",
    "RequiresDataset",
    "EmptyGraphs",
    "BasicFederatedQuery",
}
#: Every property of the SD vocabulary (W3C Recommendation, section 3.4): (domain, range);
#: None where the range is not an SD class (an IRI or a literal).
SD_PROPERTIES: dict[str, tuple[str, str | None]] = {
    "endpoint": ("Service", None),
    "feature": ("Service", "Feature"),
    "defaultEntailmentRegime": ("Service", "EntailmentRegime"),
    "entailmentRegime": ("NamedGraph", "EntailmentRegime"),
    "defaultSupportedEntailmentProfile": ("Service", "EntailmentProfile"),
    "supportedEntailmentProfile": ("NamedGraph", "EntailmentProfile"),
    "extensionFunction": ("Service", "Function"),
    "extensionAggregate": ("Service", "Aggregate"),
    "languageExtension": ("Service", "Feature"),
    "supportedLanguage": ("Service", "Language"),
    "propertyFeature": ("Service", None),
    "defaultDataset": ("Service", "Dataset"),
    "availableGraphs": ("Service", "GraphCollection"),
    "resultFormat": ("Service", None),
    "inputFormat": ("Service", None),
    "defaultGraph": ("Dataset", "Graph"),
    "namedGraph": ("GraphCollection", "NamedGraph"),
    "name": ("NamedGraph", None),
    "graph": ("NamedGraph", "Graph"),
}
SD_SUBCLASSES = {
    "Dataset": {"GraphCollection"},
    "Function": {"Feature"},
    "Aggregate": {"Feature"},
    "Language": {"Feature"},
}
SD_INSTANCE_TYPES = {
    "SPARQL10Query": "Language",
    "SPARQL11Query": "Language",
    "SPARQL11Update": "Language",
}


def _sd_tests() -> list[str]:
    graph = rdflib.Graph().parse(SERVICE_DESCRIPTION, format="turtle")
    manifest = next(graph.subjects(RDF.type, MF.Manifest))
    return [str(e).rsplit("#", 1)[1] for e in _list(graph, graph.value(manifest, MF.entries))]


SD_TESTS = _sd_tests()


def test_the_service_description_manifest_has_its_3_checks() -> None:
    assert sorted(SD_TESTS) == ["conforms-to-schema", "has-endpoint-triple", "returns-rdf"]


def _types(graph: rdflib.Graph, node: Node) -> set[str]:
    found = {
        str(t).removeprefix(str(SD))
        for t in graph.objects(node, RDF.type)
        if str(t).startswith(str(SD))
    }
    if str(node).startswith(str(SD)):
        found.add(SD_INSTANCE_TYPES.get(str(node).removeprefix(str(SD)), "Feature"))
    for cls in list(found):
        found |= SD_SUBCLASSES.get(cls, set())
    return found


@pytest.mark.parametrize("check", SD_TESTS)
@pytest.mark.parametrize("path", ["/sparql", "/sparql/"])
def test_service_description(endpoint: str, check: str, path: str) -> None:
    response = httpx.get(endpoint + path, timeout=30)
    assert response.status_code == 200, response.text
    media_type = _media_type(response)
    assert media_type in RDF_TYPES, f"the description came as {media_type!r}"
    graph = rdflib.Graph().parse(data=response.content, format=RDF_TYPES[media_type])
    if check == "returns-rdf":
        assert len(graph) > 0
        assert (None, RDF.type, SD.Service) in graph
    elif check == "has-endpoint-triple":
        assert (None, SD.endpoint, rdflib.URIRef(endpoint + path)) in graph
    elif check == "conforms-to-schema":
        for s, p, o in graph:
            if p == RDF.type and str(o).startswith(str(SD)):
                assert str(o).removeprefix(str(SD)) in SD_CLASSES, f"unknown class {o}"
            for term in (s, o):
                if isinstance(term, rdflib.URIRef) and str(term).startswith(str(SD)):
                    local = str(term).removeprefix(str(SD))
                    assert local in SD_CLASSES | SD_INSTANCES, f"unknown SD term {term}"
            if not str(p).startswith(str(SD)):
                continue
            local = str(p).removeprefix(str(SD))
            assert local in SD_PROPERTIES, f"unknown SD property {p}"
            domain, range_ = SD_PROPERTIES[local]
            assert domain in _types(graph, s), f"{s} sd:{local}: subject not an sd:{domain}"
            if range_ is not None:
                assert range_ in _types(graph, o), f"{o}: object of sd:{local} not an sd:{range_}"
            if local in ("endpoint", "name"):
                assert isinstance(o, rdflib.URIRef)
    else:
        raise AssertionError(f"no check written for the manifest's {check!r}")


# --- --dataset -----------------------------------------------------------------------------

EX = "http://example.org/"
TRIPLE = f'<{EX}s> <{EX}p> "o" '
DATASET_FILES = {
    "d.nq": f"{TRIPLE}<{EX}g> .\n{TRIPLE}.\n",
    "d.trig": f"<{EX}g> {{ {TRIPLE}. }}\n{TRIPLE}.\n",
    "d.ttl": f"{TRIPLE}.\n",
    "d.nt": f"{TRIPLE}.\n",
}
GRAPHS_QUERY = (
    "SELECT ?g (COUNT(*) AS ?n) { { ?s ?p ?o } UNION { GRAPH ?g { ?s ?p ?o } } } GROUP BY ?g"
)


@pytest.mark.parametrize("name", DATASET_FILES)
def test_every_dataset_syntax_loads_with_its_named_graphs(tmp_path: Path, name: str) -> None:
    """``--dataset`` files are loaded by :func:`labgraph.store.prepare` (the server calls it):
    N-Quads, TriG, Turtle and N-Triples, named graphs kept. End to end, the W3C suite's server
    reads N-Quads and test_sparql_endpoint's ``small`` server TriG."""
    source = tmp_path / name
    source.write_text(DATASET_FILES[name], encoding="utf-8")
    store = ox.Store.read_only(str(prepare(source, tmp_path / "stores")))
    rows = {
        (row["g"].value if row["g"] else None): int(row["n"].value)
        for row in store.query(GRAPHS_QUERY)
    }
    named = name in ("d.nq", "d.trig")
    assert rows == ({None: 1, f"{EX}g": 1} if named else {None: 1})


def test_an_unknown_dataset_extension_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "d.csv"
    source.write_text("a,b\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown RDF file extension"):
        prepare(source, tmp_path / "stores")


def test_dataset_flag_refuses_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.nq"
    done = subprocess.run(
        [sys.executable, "-m", "labgraph.cli", "serve", "--dataset", str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "no such file" in done.stderr
