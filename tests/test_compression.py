"""gzip when the client accepts it, identity otherwise, and caches told the answer varies."""

from __future__ import annotations

import gzip

import httpx
from fastapi.testclient import TestClient

DOC = "/doc/lab/ti-lab.ttl"


def _vary(response: httpx.Response) -> set[str]:
    return {v.strip().lower() for v in response.headers.get("vary", "").split(",") if v.strip()}


def test_gzip_when_accepted(app_client: TestClient) -> None:
    plain = app_client.get(DOC, headers={"Accept-Encoding": "identity"})
    zipped = app_client.get(DOC, headers={"Accept-Encoding": "gzip"})
    assert len(plain.content) > 1024  # large enough to be worth compressing
    assert "content-encoding" not in plain.headers
    assert zipped.headers["content-encoding"] == "gzip"
    # httpx decodes gzip itself: the bytes are the same document
    assert zipped.content == plain.content
    assert int(zipped.headers["content-length"]) < len(plain.content)
    assert "accept-encoding" in _vary(plain) and "accept-encoding" in _vary(zipped)


def test_vary_keeps_what_the_route_said(app_client: TestClient) -> None:
    negotiated = app_client.get(
        "/doc/lab/ti-lab", headers={"Accept": "text/turtle", "Accept-Encoding": "identity"}
    )
    assert {"accept", "accept-encoding"} <= _vary(negotiated)
    assert negotiated.headers["vary"].lower().count("accept-encoding") == 1


def test_gzipped_dumps_are_not_compressed_twice(app_client: TestClient) -> None:
    response = app_client.get("/dumps/labgraph.nt.gz", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert gzip.decompress(response.content).startswith(b"<")
