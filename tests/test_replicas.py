"""Several servers over one release answer identically; one server can run several workers.

Both on each store (``serve_args``, tests/conftest.py): replicas sharing one remote store is what
``serve --store`` is for.
"""

from __future__ import annotations

import httpx

from conftest import server_log, start_server, stop_server

PATHS = (
    "/doc/lab/ti-lab.ttl",
    "/doc/lab/ti-lab.jsonld",
    "/doc/institution/ditp.html",
    "/catalog.ttl",
    "/dumps/labs.nt",
    "/context.jsonld",
)


def test_two_replicas_serve_the_same_bytes_and_etags(serve_args: list[str]) -> None:
    first, url_a = start_server(serve_args)
    try:
        second, url_b = start_server(serve_args)
        try:
            # As behind a reverse proxy: both replicas are reached under one public host.
            host = {"Host": "labgraph.example"}
            for path in PATHS:
                a = httpx.get(url_a + path, headers=host)
                b = httpx.get(url_b + path, headers=host)
                assert a.status_code == b.status_code == 200, path
                assert a.headers["etag"] == b.headers["etag"], path
                assert a.content == b.content, path
            a = httpx.get(url_a + "/doc/lab/ti-lab.jsonld")
            b = httpx.get(url_b + "/doc/lab/ti-lab.jsonld")
            assert a.content != b.content  # each names the context where it was reached…
            assert a.headers["etag"] != b.headers["etag"]  # …so their validators differ
        finally:
            stop_server(second)
    finally:
        stop_server(first)


def test_workers_share_one_store(serve_args: list[str]) -> None:
    proc, url = start_server([*serve_args, "--workers", "2"])
    try:
        etags = {httpx.get(url + "/doc/lab/ti-lab.ttl").headers["etag"] for _ in range(20)}
        assert len(etags) == 1
        query = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
        counts = {
            httpx.get(url + "/sparql", params={"query": query}, headers={"Accept": "text/csv"}).text
            for _ in range(10)
        }
        assert len(counts) == 1
        # Each worker serves current itself, never a fallback after failing to load it.
        assert "not loading" not in server_log(proc), server_log(proc)
    finally:
        stop_server(proc)
