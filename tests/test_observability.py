"""What an operator sees: request ids, JSON-lines access logs, Prometheus metrics."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from labgraph.settings import Settings
from labgraph.web import observability
from labgraph.web.app import create_app
from labgraph.web.observability import (
    configure_access_log,
    flush_access_log,
    query_hash,
    request_id,
)

from conftest import repo_settings

QUERY = "SELECT ?s WHERE { ?s a <https://w3id.org/labgraph/def/Lab> } LIMIT 1"
#: Slow enough to pass any deadline below a second: a three-way cross product of the graph.
HEAVY = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"


@pytest.fixture(scope="module")
def access_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs") / "access.jsonl"


@pytest.fixture(scope="module")
def client(releases_dir: Path, access_log: Path) -> Iterator[TestClient]:
    settings = repo_settings(
        releases_dir=releases_dir,
        access_log=str(access_log),
        query_timeout=0.5,
        max_concurrent_queries=1,
        queue_wait=0.05,
        rate_limit=0,
    )
    with TestClient(create_app(settings), base_url="http://testserver") as c:
        yield c


def _lines(access_log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in access_log.read_text().splitlines()]


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text."""
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        found = re.fullmatch(rf"{re.escape(name)}(?:\{{(.*)\}})? (\S+)", line)
        if not found:
            continue
        have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', found.group(1) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            return float(found.group(2))
    raise AssertionError(f"no sample {name}{labels} in:\n{text}")


def test_request_ids_are_kept_when_sane_and_made_otherwise(client: TestClient) -> None:
    made = client.get("/healthz").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert client.get("/healthz").headers["x-request-id"] != made
    kept = client.get("/healthz", headers={"X-Request-Id": "edge-7f3a.42"})
    assert kept.headers["x-request-id"] == "edge-7f3a.42"
    for insane in ("a" * 300, "with space", "<script>", "new\\nline", ""):
        answer = client.get("/healthz", headers={"X-Request-Id": insane})
        assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["x-request-id"]), insane
    # Every answer carries one, refusals and errors included.
    assert "x-request-id" in client.get("/nowhere").headers
    assert "x-request-id" in client.get("/sparql", params={"query": "x" * 9000}).headers
    assert request_id(b"\xff\xfe") != request_id(b"\xff\xfe")


def test_access_log_lines_are_json_with_a_query_hash_never_the_query(
    client: TestClient, access_log: Path
) -> None:
    flush_access_log()
    before = len(_lines(access_log)) if access_log.exists() else 0
    rid = "test-access-log-1"
    client.get(
        "/sparql",
        params={"query": QUERY},
        headers={"X-Request-Id": rid, "Accept": "application/sparql-results+json"},
    )
    client.post(
        "/sparql", data={"query": QUERY}, headers={"Accept": "application/sparql-results+json"}
    )
    client.post(
        "/sparql", content=QUERY.encode(), headers={"Content-Type": "application/sparql-query"}
    )
    client.get("/doc/lab/ti-lab.ttl")
    client.get("/doc/lab/%0a%7B%22injected%22%3A1%7D")  # a newline cannot forge a log line
    flush_access_log()
    lines = _lines(access_log)[before:]
    assert len(lines) == 5
    first = lines[0]
    assert first["request_id"] == rid
    assert first["method"] == "GET" and first["path"] == "/sparql" and first["status"] == 200
    assert first["route"] == "/sparql"
    assert isinstance(first["duration_ms"], float) and first["duration_ms"] >= 0
    assert isinstance(first["bytes"], int) and first["bytes"] > 0
    assert first["release"]
    expected = hashlib.sha256(QUERY.encode()).hexdigest()[:16]
    assert [line["query_hash"] for line in lines[:3]] == [expected] * 3 == [query_hash(QUERY)] * 3
    assert lines[3]["route"] == "/doc/{type_}/{name}" and "query_hash" not in lines[3]
    assert "injected" not in {str(k) for k in lines[4]}
    text = access_log.read_text()
    assert "SELECT" not in text and "Lab>" not in text  # the query itself is never written


def test_metrics_count_requests_by_route_template_and_status(client: TestClient) -> None:
    for _ in range(3):
        client.get("/doc/lab/ti-lab.ttl")
    for i in range(20):  # a scan of random URLs must not grow the label set
        client.get(f"/random-{i}")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert (
        _metric(
            text,
            "labgraph_http_requests_total",
            route="/doc/{type_}/{name}",
            method="GET",
            status="200",
        )
        >= 3
    )
    assert (
        _metric(
            text, "labgraph_http_requests_total", route="<unmatched>", method="GET", status="404"
        )
        >= 20
    )
    assert "random-" not in text
    assert (
        _metric(
            text,
            "labgraph_http_request_duration_seconds_count",
            route="/doc/{type_}/{name}",
            method="GET",
        )
        >= 3
    )
    assert (
        _metric(
            text,
            "labgraph_http_request_duration_seconds_bucket",
            route="/doc/{type_}/{name}",
            method="GET",
            le="+Inf",
        )
        >= 3
    )
    release = client.get("/healthz").text.split()[-1]
    assert _metric(text, "labgraph_release_info", release=release) == 1
    for name in (
        "labgraph_query_timeouts_total",
        "labgraph_query_busy_rejections_total",
        "labgraph_rate_limited_total",
        "labgraph_reload_failures_total",
        "labgraph_queries_in_flight",
    ):
        _metric(text, name)


def test_metrics_count_query_timeouts_and_busy_refusals(client: TestClient) -> None:
    def timeouts_and_busy() -> tuple[float, float]:
        text = client.get("/metrics").text
        return (
            _metric(text, "labgraph_query_timeouts_total"),
            _metric(text, "labgraph_query_busy_rejections_total"),
        )

    timeouts, busy = timeouts_and_busy()
    answers: list[int] = []
    together = threading.Barrier(3)

    def heavy() -> None:
        together.wait(timeout=30)
        answers.append(client.get("/sparql", params={"query": HEAVY}).status_code)

    threads = [threading.Thread(target=heavy) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(answers) == [503, 503, 503]  # one stopped at its deadline, two refused
    after_timeouts, after_busy = timeouts_and_busy()
    assert after_timeouts >= timeouts + 1
    assert after_busy >= busy + 1
    assert after_timeouts - timeouts + after_busy - busy == 3


def test_metrics_can_be_turned_off(releases_dir: Path) -> None:
    settings = repo_settings(releases_dir=releases_dir, metrics=False, access_log="off")
    with TestClient(create_app(settings)) as c:
        assert c.get("/metrics").status_code == 404
        assert c.get("/healthz").status_code == 200


def test_a_stuck_log_destination_never_stalls_the_server(
    releases_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pipe nobody reads (as a supervisor that died): lines are dropped, requests go on."""
    read_end, write_end = os.pipe()
    monkeypatch.setattr(observability, "ACCESS_LOG_BACKLOG", 20)
    settings = repo_settings(releases_dir=releases_dir, access_log=f"/dev/fd/{write_end}")
    try:
        with TestClient(create_app(settings)) as c:
            codes = {
                c.get("/healthz", headers={"X-Request-Id": "x" * 120}).status_code
                for _ in range(400)
            }  # ~100 KB of lines: more than a pipe holds
            assert codes == {200}
            assert _metric(c.get("/metrics").text, "labgraph_access_log_dropped_total") > 0
            os.close(read_end)  # the stuck writer gets EPIPE: the rest is dropped at once
            read_end = -1
    finally:
        if read_end >= 0:
            os.close(read_end)
        os.close(write_end)
        configure_access_log(Settings().access_log)


@pytest.mark.parametrize(
    "line",
    [
        {"path": '/doc/lab/é"\n<\\', "status": 200, "duration_ms": 0.1 + 0.2, "bytes": 10**20},
        {"query_hash": None, "ok": True, "nan": float("nan"), "inf": float("-inf"), "n": -0.0},
        {"client": "\u2028\x00", "method": "GET", "route": "<unmatched>"},
    ],
)
def test_access_lines_are_the_json_that_json_dumps_gives(line: dict[str, object]) -> None:
    for stamp in (1795000000.0, 1795000000.8969999, 1795000000.9999996, 1795000001.0004):
        when = dt.datetime.fromtimestamp(stamp, dt.UTC).isoformat(timespec="milliseconds")
        expected = json.dumps({"time": when, **line}, ensure_ascii=True, separators=(",", ":"))
        assert observability._json_line(stamp, line) == expected
