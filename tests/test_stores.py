"""The same behaviour whether the release is served by the embedded store or a remote one.

``remote`` runs a real Oxigraph server (from PyPI), loads the release with ``labgraph publish``
and serves it with ``labgraph serve --store``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import REPO, free_port, start_server, stop_server

LAB_COUNT = ("PREFIX lg: <https://w3id.org/labgraph/def/> "
             "SELECT (COUNT(?l) AS ?n) WHERE { ?l a lg:Lab }")


@pytest.fixture(scope="module", params=["embedded", "remote"])
def served(request: pytest.FixtureRequest, releases_dir: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    args = ["--releases", str(releases_dir), "--data", str(REPO / "data")]
    if request.param == "embedded":
        proc, url = start_server(args)
        try:
            yield url
        finally:
            stop_server(proc)
        return
    port = free_port()
    location = tmp_path_factory.mktemp("oxigraph")
    oxigraph = subprocess.Popen([str(Path(sys.executable).parent / "oxigraph"), "serve",
                                 "--location", str(location), "--bind", f"127.0.0.1:{port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(store + "/query", params={"query": "ASK {}"}, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        published = subprocess.run([sys.executable, "-m", "labgraph.cli", "publish", *args,
                                    "--store", store], capture_output=True, text=True,
                                   timeout=120)
        assert published.returncode == 0, published.stderr
        proc, url = start_server([*args, "--store", store])
        try:
            yield url
        finally:
            stop_server(proc)
    finally:
        oxigraph.kill()
        oxigraph.wait()


def test_dereference_and_document(served: str) -> None:
    response = httpx.get(served + "/id/lab/ti-lab", headers={"Accept": "text/turtle"})
    assert response.status_code == 303
    doc = httpx.get(served + "/doc/lab/ti-lab.ttl")
    assert doc.status_code == 200 and "Ti Lab" in doc.text
    assert "prefecture-region-bretagne" in doc.text  # an outgoing link, with its label
    assert httpx.get(served + "/id/lab/no-such-lab").status_code == 404


def test_sparql_results_agree(served: str) -> None:
    response = httpx.get(served + "/sparql", params={"query": LAB_COUNT},
                         headers={"Accept": "application/sparql-results+json"})
    assert response.status_code == 200
    assert int(response.json()["results"]["bindings"][0]["n"]["value"]) >= 18
    refused = httpx.get(served + "/sparql", params={"query": "CLEAR ALL"})
    assert refused.status_code == 403


def test_pages_and_catalogue(served: str) -> None:
    page = httpx.get(served + "/doc/lab/ti-lab.html")
    assert page.status_code == 200 and "Ti Lab" in page.text
    home = httpx.get(served + "/")
    assert home.status_code == 200
    assert httpx.head(served + "/catalog.ttl").headers["content-type"].startswith("text/turtle")


def test_same_etag_for_the_same_release(served: str, releases_dir: Path) -> None:
    response = httpx.get(served + "/doc/lab/ti-lab.ttl")
    release_id = (releases_dir / "current").resolve().name
    assert response.headers["x-labgraph-release"] == release_id
