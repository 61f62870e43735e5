"""Answers of the current release are cached: a release never changes, nor do its answers."""

from __future__ import annotations

from fastapi.testclient import TestClient

from labgraph.settings import Settings
from labgraph.web.app import create_app
from labgraph.web.http import ByteCache

QUERY = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"


def test_a_repeated_query_is_answered_from_the_cache(app_client: TestClient) -> None:
    results: ByteCache = app_client.app.state.results  # type: ignore[attr-defined]
    params = {"query": QUERY + " # cache test"}
    first = app_client.get("/sparql", params=params, headers={"Accept": "text/csv"})
    hits = results.hits
    # Asked another way (so not a replay of the whole answer, tests/test_replay.py), same result.
    second = app_client.get("/sparql", params=params, headers={"Accept": "text/csv, */*;q=0.1"})
    assert first.status_code == second.status_code == 200
    assert second.content == first.content
    assert second.headers["content-type"] == first.headers["content-type"]
    assert results.hits == hits + 1
    other_format = app_client.get(
        "/sparql", params=params, headers={"Accept": "application/sparql-results+json"}
    )
    assert other_format.json()["results"]["bindings"][0]["n"]["value"] == first.text.split()[1]


def test_cache_can_be_turned_off(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"cache_bytes": 0}))
    with TestClient(app) as client:
        for _ in range(2):
            assert client.get("/sparql", params={"query": QUERY}).status_code == 200
            assert client.get("/doc/lab/ti-lab.ttl").status_code == 200
        for name in ("documents", "results", "answers"):
            cache: ByteCache = getattr(app.state, name)
            assert cache.hits == 0 and cache.size == 0 and len(cache) == 0, name


def test_byte_cache_is_bounded_and_least_recently_used() -> None:
    cache = ByteCache(100, max_item=40)
    cache.put("a", b"x" * 40)
    cache.put("b", b"y" * 40)
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", b"z" * 40)  # over 100 bytes: b, the least recently used, goes
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None
    cache.put("big", b"w" * 41)  # larger than one entry may be
    assert cache.get("big") is None
    assert cache.size <= 100
