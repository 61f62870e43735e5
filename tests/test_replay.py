"""Whole answers replayed to repeated requests (web/replay.py), and only when that is safe.

A replay must be indistinguishable from the answer the routes would give (but for the request
id and the date), must honour everything an answer varies on, must never keep what is private,
volatile or an error, must still count against the rate limit, must be logged and measured like
any answer, and must end with the release it was made on.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from labgraph.build import build
from labgraph.settings import Settings
from labgraph.web.app import create_app
from labgraph.web.http import ByteCache
from labgraph.web.observability import flush_access_log

from conftest import REPO, repo_settings

QUERY = "SELECT ?s WHERE { ?s a <https://w3id.org/labgraph/def/Lab> } ORDER BY ?s LIMIT 3"
PER_REQUEST = {"x-request-id", "date"}


def _answers(client: TestClient) -> ByteCache:
    return client.app.state.answers  # type: ignore[attr-defined,no-any-return]


def _same(first: Response, second: Response) -> None:
    assert second.status_code == first.status_code
    assert second.content == first.content
    assert [(k, v) for k, v in second.headers.multi_items() if k not in PER_REQUEST] == [
        (k, v) for k, v in first.headers.multi_items() if k not in PER_REQUEST
    ]
    assert second.headers["x-request-id"] != first.headers["x-request-id"]


@pytest.mark.parametrize(
    ("path", "params", "headers"),
    [
        ("/doc/lab/ti-lab", None, {"Accept": "application/ld+json"}),
        ("/doc/lab/ti-lab.ttl", None, {}),
        ("/id/lab/ti-lab", None, {"Accept": "text/turtle"}),
        ("/sparql", {"query": QUERY}, {"Accept": "text/csv"}),
        ("/sparql", None, {"Accept": "text/turtle"}),  # the service description
    ],
)
def test_a_repeated_request_is_replayed_whole(
    app_client: TestClient, path: str, params: dict[str, str] | None, headers: dict[str, str]
) -> None:
    cache = _answers(app_client)

    def get() -> Response:
        return app_client.get(path, params=params, headers=headers, follow_redirects=False)

    first = get()
    assert first.status_code in (200, 303)
    hits = cache.hits
    second = get()
    assert cache.hits == hits + 1
    _same(first, second)
    head = app_client.head(path, params=params, headers=headers, follow_redirects=False)
    assert head.status_code == first.status_code and head.content == b""
    assert head.headers["content-length"] == first.headers["content-length"]


def test_what_an_answer_varies_on_is_in_the_key(app_client: TestClient) -> None:
    """Each variant is asked twice in a row, twice over: the replays give each its own answer."""
    path = "/doc/lab/ti-lab"
    etag = app_client.get(path + ".ttl").headers["etag"]
    variants: dict[str, dict[str, str]] = {
        "turtle": {"Accept": "text/turtle", "Accept-Encoding": "identity"},
        "json-ld": {"Accept": "application/ld+json", "Accept-Encoding": "identity"},
        "gzip": {"Accept": "text/turtle", "Accept-Encoding": "gzip"},
        "cors": {"Accept": "text/turtle", "Origin": "https://notebook.example"},
        "conditional": {"Accept": "text/turtle", "If-None-Match": etag},
        "other host": {"Accept": "text/turtle", "Host": "mirror.example"},
    }
    seen: dict[str, Response] = {}
    for _ in range(2):
        for name, headers in variants.items():
            answer = app_client.get(path, headers=headers)
            if name in seen:
                _same(seen[name], answer)
            seen[name] = answer
    assert seen["turtle"].headers["content-type"].startswith("text/turtle")
    assert seen["json-ld"].headers["content-type"].startswith("application/ld+json")
    assert "content-encoding" not in seen["turtle"].headers
    assert seen["gzip"].headers["content-encoding"] == "gzip"
    assert seen["gzip"].content == seen["turtle"].content  # httpx decoded it
    assert "access-control-allow-origin" not in seen["turtle"].headers
    assert seen["cors"].headers["access-control-allow-origin"] == "*"
    assert seen["conditional"].status_code == 304 and seen["conditional"].content == b""
    assert seen["turtle"].status_code == 200
    assert seen["other host"].headers["content-location"].startswith("http://mirror.example/")
    assert seen["turtle"].headers["content-location"].startswith("http://testserver/")


def test_private_volatile_and_failed_answers_are_never_kept(app_client: TestClient) -> None:
    cache = _answers(app_client)
    kept = len(cache)
    never = [
        ("GET", "/sparql", {"query": "SELECT (NOW() AS ?t) WHERE {}"}, {}),  # no-store
        ("GET", "/sparql", {"query": "SELECT WHERE {"}, {}),  # 400
        ("GET", "/doc/lab/no-such-lab.ttl", None, {}),  # 404
        ("GET", "/doc/lab/ti-lab.ttl", None, {"Cookie": "session=1"}),
        ("GET", "/doc/lab/ti-lab.ttl", None, {"Authorization": "Bearer x"}),
        ("GET", "/doc/lab/ti-lab.ttl", None, {"Range": "bytes=0-10"}),
        ("GET", "/healthz", None, {}),
        ("GET", "/metrics", None, {}),
    ]
    for method, path, params, headers in never:
        for _ in range(2):
            app_client.request(method, path, params=params, headers=headers)
    for _ in range(2):
        app_client.post("/sparql", data={"query": QUERY})
    assert len(cache) == kept
    now = [
        app_client.get("/sparql", params={"query": "SELECT (STRUUID() AS ?u) WHERE {}"}).text
        for _ in range(2)
    ]
    assert now[0] != now[1]


def test_replayed_queries_still_count_against_the_rate_limit(releases_dir: Path) -> None:
    settings = repo_settings(
        releases_dir=releases_dir, rate_limit=0.5, rate_burst=3, access_log="off"
    )
    app = create_app(settings)
    params = {"query": QUERY}
    with TestClient(app, client=("192.0.2.9", 4000)) as client:
        codes = [client.get("/sparql", params=params).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        assert app.state.answers.hits == 2
        assert "labgraph_rate_limited_total 1.0" in client.get("/metrics").text
    with TestClient(app, client=("192.0.2.10", 4000)) as other:  # another address: its own
        assert other.get("/sparql", params=params).status_code == 200


def test_replays_are_logged_and_measured_like_any_answer(
    releases_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "access.jsonl"
    settings = repo_settings(releases_dir=releases_dir, access_log=str(log))
    with TestClient(create_app(settings)) as client:
        for _ in range(3):
            client.get("/sparql", params={"query": QUERY}, headers={"Accept": "text/csv"})
        metrics = client.get("/metrics").text
    flush_access_log()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    queries = [line for line in lines if line["path"] == "/sparql"]
    assert len(queries) == 3
    assert {line["route"] for line in queries} == {"/sparql"}
    assert len({line["query_hash"] for line in queries}) == 1
    assert len({line["request_id"] for line in queries}) == 3
    assert all(line["status"] == 200 and line["release"] for line in queries)
    assert 'labgraph_cache_hits_total{cache="answers"} 2.0' in metrics
    assert 'labgraph_http_requests_total{method="GET",route="/sparql",status="200"} 3.0' in metrics


def test_stored_answers_end_with_their_release(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(REPO / "tests" / "fixtures" / "mini", data)
    settings: Settings = repo_settings(
        data_dir=data, releases_dir=tmp_path / "releases", reload_interval=0.1, access_log="off"
    )
    assert build(settings).ok
    count = "SELECT (COUNT(?l) AS ?n) WHERE { ?l a <https://w3id.org/labgraph/def/Lab> }"
    with TestClient(create_app(settings)) as client:

        def labs() -> tuple[str, str]:
            answer = client.get("/sparql", params={"query": count}, headers={"Accept": "text/csv"})
            return answer.text.split()[1], answer.headers["x-labgraph-release"]

        before = labs()
        assert labs() == before and client.app.state.answers.hits == 1  # type: ignore[attr-defined]
        with open(data / "labs.csv", "a", encoding="utf-8") as fh:
            fh.write("lab-gamma,Lab Gamma,,inst-one,prefecture,84,,,,,,doc-one\n")
        assert build(settings).ok
        deadline = time.monotonic() + 30
        while client.get("/healthz").text.split()[-1] == before[1]:
            assert time.monotonic() < deadline, "the new release was not picked up"
            time.sleep(0.05)
        after = labs()
        assert after[1] != before[1]
        assert int(after[0]) == int(before[0]) + 1


def test_memory_stays_within_its_share(releases_dir: Path) -> None:
    settings = repo_settings(releases_dir=releases_dir, cache_bytes=3 * 40_000, access_log="off")
    app = create_app(settings)
    with TestClient(app) as client:
        for i in range(200):
            assert client.get("/sparql", params={"query": f"{QUERY} # {i}"}).status_code == 200
    cache: ByteCache = app.state.answers
    assert 0 < len(cache) < 200
    assert cache.size <= 40_000
