"""Per-client rate limiting of the SPARQL endpoint: 429 with Retry-After, configurable, off at 0."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from labgraph.web.app import create_app
from labgraph.web.ratelimit import TokenBuckets, client_key

from conftest import repo_settings

ASK = {"query": "ASK { ?s ?p ?o }"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_the_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=2.0, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)  # one token comes back every 0.5 s
    assert buckets.take("b") == 0.0  # another client has its own bucket
    clock.now += 0.5
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0
    clock.now += 60  # refilled, but never beyond the burst
    assert [buckets.take("a") for _ in range(4)][-1] > 0


def test_fractional_rates_and_bounded_memory() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=0.1, burst=1, clock=clock, max_clients=100)
    assert buckets.take("a") == 0.0
    assert buckets.take("a") == pytest.approx(10.0)
    for i in range(1000):
        buckets.take(f"client-{i}")
    assert len(buckets) == 100
    with pytest.raises(ValueError):
        TokenBuckets(rate=0, burst=1)


def test_clients_are_keyed_by_address_and_ipv6_by_its_64() -> None:
    assert client_key("192.0.2.7") == "192.0.2.7"
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::2")
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")
    assert client_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert client_key(None) == "unknown"
    assert client_key("testclient") == "testclient"


# Embedded only: the limit is applied before any query reaches a store.
def test_sparql_answers_429_with_retry_after_past_the_burst(releases_dir: Path) -> None:
    settings = repo_settings(
        releases_dir=releases_dir, rate_limit=0.5, rate_burst=3, access_log="off"
    )
    app = create_app(settings)
    with TestClient(app, client=("192.0.2.1", 4000)) as alice:
        codes = [alice.get("/sparql", params=ASK).status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        limited = alice.get("/sparql", params=ASK, headers={"Origin": "https://example.org"})
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.headers["access-control-allow-origin"] == "*"  # readable by a browser
        assert "per second" in limited.text
        assert alice.post("/sparql", data=ASK).status_code == 429  # every method counts
        assert alice.get("/doc/lab/ti-lab.ttl").status_code == 200  # only /sparql is limited
        assert (
            alice.options(
                "/sparql",
                headers={"Origin": "https://example.org", "Access-Control-Request-Method": "POST"},
            ).status_code
            == 200
        )  # preflight is free
        metrics = alice.get("/metrics").text
        assert "labgraph_rate_limited_total 2.0" in metrics


def test_rate_limit_zero_disables_it(releases_dir: Path) -> None:
    settings = repo_settings(
        releases_dir=releases_dir, rate_limit=0, rate_burst=1, access_log="off"
    )
    with TestClient(create_app(settings)) as client:
        codes = {client.get("/sparql", params=ASK).status_code for _ in range(30)}
        assert codes == {200}
