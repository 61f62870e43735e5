"""End-to-end: a real server over the real data answers the three audiences, on each store."""

from __future__ import annotations

from pathlib import Path

import httpx


def test_lab_uri_redirects_to_its_turtle_document(client: httpx.Client) -> None:
    response = client.get("/id/lab/ti-lab", headers={"Accept": "text/turtle"})
    assert response.status_code == 303
    assert response.headers["location"].endswith("/doc/lab/ti-lab.ttl")
    assert "Accept" in response.headers["vary"]
    doc = client.get(response.headers["location"])
    assert doc.status_code == 200
    assert doc.headers["content-type"].startswith("text/turtle")
    assert "Ti Lab" in doc.text
    assert "prefecture-region-bretagne" in doc.text  # an outgoing link, with its label
    assert client.get("/id/lab/no-such-lab").status_code == 404


def test_sparql_counts_the_labs(client: httpx.Client) -> None:
    query = (
        "PREFIX lg: <https://w3id.org/labgraph/def/> SELECT (COUNT(?l) AS ?n) WHERE { ?l a lg:Lab }"
    )
    response = client.get(
        "/sparql", params={"query": query}, headers={"Accept": "application/sparql-results+json"}
    )
    assert response.status_code == 200
    n = int(response.json()["results"]["bindings"][0]["n"]["value"])
    assert n >= 18
    assert client.get("/sparql", params={"query": "CLEAR ALL"}).status_code == 403


def test_catalogue_head_is_turtle(client: httpx.Client) -> None:
    response = client.head("/catalog.ttl")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/turtle")


def test_answers_name_the_release_served(client: httpx.Client, releases_dir: Path) -> None:
    response = client.get("/doc/lab/ti-lab.ttl")
    assert response.headers["x-labgraph-release"] == (releases_dir / "current").resolve().name
