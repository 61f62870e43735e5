"""The hot routes answer the same whether FastPaths calls them or FastAPI's router does."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from labgraph.settings import Settings
from labgraph.web.app import HOT_PATHS, create_app
from labgraph.web.fastpath import FastPaths

QUERY = "SELECT ?p ?o WHERE { <https://w3id.org/labgraph/id/lab/ti-lab> ?p ?o }"
REQUESTS: list[tuple[str, str, dict[str, str], bytes | None]] = [
    ("GET", "/doc/lab/ti-lab.ttl", {}, None),
    ("GET", "/doc/lab/ti-lab", {"Accept": "application/ld+json"}, None),
    ("HEAD", "/doc/lab/ti-lab.jsonld", {}, None),
    ("GET", "/doc/lab/ti-lab", {"Accept": "image/png"}, None),
    ("GET", "/doc/lab/no-such-lab.ttl", {}, None),
    ("GET", "/doc/nonsense/x.ttl", {"Accept": "text/html"}, None),
    ("GET", "/id/lab/ti-lab", {"Accept": "text/turtle"}, None),
    ("GET", "/id/lab/ti-lab", {"Accept": "text/html"}, None),
    ("GET", "/sparql?query=" + quote(QUERY), {"Accept": "text/csv"}, None),
    ("GET", "/sparql/?query=" + quote(QUERY), {}, None),
    ("GET", "/sparql?query=" + quote("SELECT * {"), {}, None),
    ("POST", "/sparql", {"Content-Type": "application/sparql-query"}, QUERY.encode()),
    (
        "POST",
        "/sparql",
        {"Content-Type": "application/x-www-form-urlencoded"},
        b"update=" + quote("DROP ALL").encode(),
    ),
    ("PUT", "/sparql", {}, b""),
    ("GET", "/sparql", {"Accept": "text/turtle"}, None),
]


def _without_fastpaths(settings: Settings):
    app = create_app(settings)
    app.user_middleware = [m for m in app.user_middleware if m.cls is not FastPaths]
    return app


@pytest.fixture(scope="module")
def clients(settings: Settings) -> Iterator[tuple[TestClient, TestClient]]:
    with (
        TestClient(create_app(settings)) as fast,
        TestClient(_without_fastpaths(settings)) as plain,
    ):
        yield fast, plain


def test_every_hot_route_is_dispatched_directly(settings: Settings) -> None:
    app = create_app(settings)
    [fast] = [m for m in app.user_middleware if m.cls is FastPaths]
    routes = FastPaths(app, **fast.kwargs).routes
    assert {r.path for r in routes} == HOT_PATHS
    assert {"GET", "HEAD", "POST"} <= {m for r in routes for m in r.methods}


@pytest.mark.parametrize(("method", "path", "headers", "body"), REQUESTS)
def test_fast_and_plain_routing_answer_alike(
    clients: tuple[TestClient, TestClient],
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None,
) -> None:
    answers = [
        c.request(method, path, headers=headers, content=body, follow_redirects=False)
        for c in clients
    ]
    fast, plain = answers
    assert fast.status_code == plain.status_code
    assert fast.content == plain.content
    drop = {"x-request-id", "date"}
    assert {k: v for k, v in fast.headers.items() if k not in drop} == {
        k: v for k, v in plain.headers.items() if k not in drop
    }


def test_fast_path_routes_are_labelled_in_metrics(clients: tuple[TestClient, TestClient]) -> None:
    fast, _ = clients
    fast.get("/doc/lab/ti-lab.ttl")
    metrics = fast.get("/metrics").text
    assert 'route="/doc/{type_}/{name}"' in metrics
