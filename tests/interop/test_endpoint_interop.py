"""The live endpoint and documents, read by SPARQL clients and RDF parsers we did not write.

A real ``labgraph serve`` over the real data, on loopback, is queried with Apache Jena's
``rsparql`` (SPARQL 1.1 Protocol client), its documents are dereferenced by Jena's ``arq
--data=URL`` (through the 303) and by raptor's ``rapper -i guess URL``, every RDF syntax the
endpoint and the documents are negotiated in is validated by Jena's ``riot --validate``, and
rasqal's ``roqet -p URL`` queries the endpoint. Each must agree with the reference answer.

The tools come from Debian (``.ci/interop-deps``, run by ``make interop``); a missing tool fails
the test and says so. Debian's Jena 4.5 cannot read JSON-LD 1.1 (no Jakarta JSON), so JSON-LD is
validated with Jena's JSON-LD 1.0 reader; and its ``riot`` reads files only (a URL argument is
taken for a path), so ``riot`` checks what httpx fetched, while ``arq`` dereferences by itself.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest
import rdflib
from rdflib.compare import isomorphic

pytestmark = pytest.mark.interop

TIMEOUT = 300  # seconds: only so that a hung JVM cannot hang CI forever
LAB_PATH = "/id/lab/ti-lab"
LAB = "https://w3id.org/labgraph" + LAB_PATH
TYPES = f"SELECT ?type WHERE {{ <{LAB}> a ?type }} ORDER BY ?type"
CONSTRUCT = f"CONSTRUCT {{ <{LAB}> ?p ?o }} WHERE {{ <{LAB}> ?p ?o }}"
DESCRIBE = f"DESCRIBE <{LAB}>"
COUNT = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
#: What riot is told a negotiated document is (jsonld10: see the module docstring).
RIOT_SYNTAX = {
    "text/turtle": "turtle",
    "application/ld+json": "jsonld10",
    "application/rdf+xml": "rdfxml",
    "application/n-triples": "ntriples",
    "application/n-quads": "nquads",
    "application/trig": "trig",
}
SRX = "{http://www.w3.org/2005/sparql-results#}"


def tool(name: str) -> str:
    """Path of a command-line tool; fails (never skips) with how to install it."""
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"`{name}` is not on PATH: run `make interop` (its `.ci/interop-deps`, as "
            "root, installs Jena's rsparql/arq/riot, raptor's rapper and rasqal's roqet)",
            pytrace=False,
        )
    return found


def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def complaints(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if " WARN " in line or " ERROR " in line
    ]


@pytest.fixture(scope="module")
def base(server: str) -> str:
    """The session's real server over the real release (tests/conftest.py)."""
    return server


@pytest.fixture(scope="module")
def reference(base: str) -> rdflib.Graph:
    """The lab's triples, as N-Triples over httpx."""
    response = httpx.get(
        base + "/sparql",
        params={"query": CONSTRUCT},
        headers={"Accept": "application/n-triples"},
        timeout=30,
    )
    assert response.status_code == 200
    graph = rdflib.Graph().parse(data=response.text, format="nt")
    assert len(graph) > 5
    return graph


@pytest.fixture(scope="module")
def document(base: str) -> rdflib.Graph:
    """The lab's document (its triples and those that point to it), as N-Triples over httpx."""
    response = httpx.get(base + "/doc/lab/ti-lab.nt", timeout=30)
    assert response.status_code == 200
    return rdflib.Graph().parse(data=response.text, format="nt")


@pytest.fixture(scope="module")
def types(reference: rdflib.Graph) -> list[str]:
    return sorted(str(o) for o in reference.objects(rdflib.URIRef(LAB), rdflib.RDF.type))


# --- Jena rsparql: the SPARQL 1.1 Protocol client ------------------------------------------


@pytest.mark.parametrize("post", [False, True], ids=["get", "post"])
@pytest.mark.parametrize("results", ["json", "xml", "csv", "tsv"])
def test_rsparql_select(
    base: str, types: list[str], results: str, post: bool, tmp_path: Path
) -> None:
    query = tmp_path / "q.rq"
    query.write_text(TYPES, encoding="utf-8")
    cmd = [
        tool("rsparql"),
        "--service",
        base + "/sparql",
        "--query",
        str(query),
        f"--results={results}",
        *(["--post"] if post else []),
    ]
    out = run(cmd).stdout
    if results == "json":
        got = [b["type"]["value"] for b in json.loads(out)["results"]["bindings"]]
    elif results == "xml":
        root = ElementTree.fromstring(out)
        got = [u.text or "" for u in root.iter(f"{SRX}uri")]
    elif results == "csv":
        got = [row["type"] for row in csv.DictReader(io.StringIO(out))]
    else:
        got = [line.strip("<>") for line in out.splitlines()[1:]]
    assert got == types


@pytest.mark.parametrize("post", [False, True], ids=["get", "post"])
def test_rsparql_ask(base: str, post: bool) -> None:
    out = run(
        [
            tool("rsparql"),
            "--service",
            base + "/sparql",
            "--results=json",
            *(["--post"] if post else []),
            f"ASK {{ <{LAB}> ?p ?o }}",
        ]
    ).stdout
    assert json.loads(out)["boolean"] is True


@pytest.mark.parametrize("query", [CONSTRUCT, DESCRIBE], ids=["construct", "describe"])
def test_rsparql_graphs(base: str, reference: rdflib.Graph, query: str) -> None:
    out = run([tool("rsparql"), "--service", base + "/sparql", "--results=nt", query]).stdout
    assert isomorphic(rdflib.Graph().parse(data=out, format="nt"), reference)


def test_rsparql_reports_the_refusal_of_service(base: str) -> None:
    cmd = [
        tool("rsparql"),
        "--service",
        base + "/sparql",
        "SELECT * WHERE { SERVICE <http://127.0.0.1:9/> { ?s ?p ?o } }",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert result.returncode != 0
    assert "400" in result.stdout + result.stderr


# --- Jena arq and riot: documents ----------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        LAB_PATH,
        "/doc/lab/ti-lab",
        "/doc/lab/ti-lab.ttl",
        "/doc/lab/ti-lab.rdf",
        "/doc/lab/ti-lab.nt",
    ],
)
def test_arq_queries_a_dereferenced_document(
    base: str, document: rdflib.Graph, path: str, tmp_path: Path
) -> None:
    """Jena fetches the URL itself (its own Accept header; the /id/ URI answers 303)."""
    query = tmp_path / "count.rq"
    query.write_text(COUNT, encoding="utf-8")
    out = run([tool("arq"), f"--data={base}{path}", "--query", str(query), "--results=json"]).stdout
    assert int(json.loads(out)["results"]["bindings"][0]["n"]["value"]) == len(document)


@pytest.mark.parametrize("accept", RIOT_SYNTAX)
def test_riot_validates_the_endpoint_graphs_in_every_format(
    base: str, reference: rdflib.Graph, accept: str, tmp_path: Path
) -> None:
    response = httpx.get(
        base + "/sparql", params={"query": DESCRIBE}, headers={"Accept": accept}, timeout=30
    )
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == accept
    _riot_agrees(response.content, accept, reference, tmp_path)


@pytest.mark.parametrize(
    "accept", ["text/turtle", "application/ld+json", "application/rdf+xml", "application/n-triples"]
)
def test_riot_validates_the_document_in_every_format(
    base: str, document: rdflib.Graph, accept: str, tmp_path: Path
) -> None:
    response = httpx.get(
        base + LAB_PATH, headers={"Accept": accept}, follow_redirects=True, timeout=30
    )
    assert response.status_code == 200
    assert response.history and response.history[0].status_code == 303
    assert response.headers["content-type"].split(";")[0] == accept
    _riot_agrees(response.content, accept, document, tmp_path)


def _riot_agrees(body: bytes, accept: str, expected: rdflib.Graph, tmp_path: Path) -> None:
    """riot validates ``body`` strictly, and its N-Triples of it are ``expected``."""
    source = tmp_path / "answer"
    source.write_bytes(body)
    syntax = f"--syntax={RIOT_SYNTAX[accept]}"
    checked = run([tool("riot"), syntax, "--validate", str(source)])
    assert not complaints(checked), "\n".join(complaints(checked))
    out = run([tool("riot"), syntax, "--output=nt", str(source)]).stdout
    assert isomorphic(rdflib.Graph().parse(data=out, format="nt"), expected)


# --- raptor and rasqal ---------------------------------------------------------------------

_RAPPER_COUNT = re.compile(r"Parsing returned (\d+) triples")


@pytest.mark.parametrize("path", [LAB_PATH, "/doc/lab/ti-lab"])
def test_rapper_guesses_and_parses_the_document(
    base: str, document: rdflib.Graph, path: str
) -> None:
    """rapper sends its own Accept header, follows the 303 and guesses the syntax."""
    result = run([tool("rapper"), "-i", "guess", "-c", base + path])
    found = _RAPPER_COUNT.search(result.stderr)
    assert found, result.stderr
    assert int(found.group(1)) == len(document)
    assert "Error" not in result.stderr and "Warning" not in result.stderr


def test_roqet_queries_the_endpoint(base: str, types: list[str]) -> None:
    """roqet asks for SPARQL XML. (rasqal 0.9.33 reads only variable bindings from SPARQL XML,
    whatever the server: a boolean reads as 0 rows, so ASK is left to rsparql.)"""
    result = run([tool("roqet"), "-p", base + "/sparql", "-e", TYPES])
    got = re.findall(r"type=uri<([^>]+)>", result.stdout)
    assert got == types, result.stdout + result.stderr
