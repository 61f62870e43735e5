"""Hostile clients against a real ``labgraph serve`` on loopback.

Nothing a client sends may open a connection elsewhere, read a file outside what is published,
run script in a browser, take the server down or get a 500. Requests httpx would refuse to send
(bad bytes, undecoded dot segments, byte-at-a-time headers) go over a raw socket.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest

from conftest import REPO, start_server, stop_server

#: Small limits, so the guards trip quickly; no rate limit (tested in test_ratelimit.py).
HOSTILE_ENV = {
    "LABGRAPH_RATE_LIMIT": "0",
    "LABGRAPH_CLIENT_TIMEOUT": "2",
    "LABGRAPH_MAX_CONNECTIONS_PER_CLIENT": "16",
    "LABGRAPH_QUERY_TIMEOUT": "10",
    "LABGRAPH_ACCESS_LOG": "off",
}
ATTACKER = "127.0.0.2"  # the slow clients' address: loopback, but not the legitimate client's


@pytest.fixture(scope="module")
def url(serve_args: list[str]) -> Iterator[str]:
    """A server with HOSTILE_ENV, on each store: a query reaches a remote one, which must never
    be made to connect anywhere either."""
    proc, base = start_server(serve_args, env=HOSTILE_ENV)
    try:
        yield base
    finally:
        stop_server(proc)


def _address(base: str) -> tuple[str, int]:
    parts = urlsplit(base)
    assert parts.hostname and parts.port
    return parts.hostname, parts.port


def raw(base: str, data: bytes, *, timeout: float = 15, source: str | None = None) -> bytes:
    """Send ``data`` as is and read until the server closes (or stops talking)."""
    with socket.create_connection(
        _address(base), timeout=timeout, source_address=(source, 0) if source else None
    ) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def status(response: bytes) -> int:
    assert response.startswith(b"HTTP/1.1 "), response[:200]
    return int(response[9:12])


def get_raw(base: str, target: bytes, headers: bytes = b"") -> bytes:
    return raw(
        base,
        b"GET "
        + target
        + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        + headers
        + b"\r\n",
    )


# -- 1. no outbound connection, whatever the query ------------------------------------------------


@pytest.fixture
def listener() -> Iterator[tuple[socket.socket, str]]:
    """A loopback socket that must receive nothing; its URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield sock, f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def _connected(sock: socket.socket) -> bool:
    readable, _, _ = select.select([sock], [], [], 0.5)
    return bool(readable)


def test_no_query_or_request_opens_a_connection(
    url: str, listener: tuple[socket.socket, str]
) -> None:
    sock, target = listener
    queries = [
        f"SELECT * WHERE {{ SERVICE <{target}/sparql> {{ ?s ?p ?o }} }}",
        f"select * where {{ service silent <{target}/sparql> {{ ?s ?p ?o }} }}",
        f"SELECT * WHERE {{ ?s ?p ?o OPTIONAL {{ SeRvIcE <{target}/> {{ ?s ?q ?r }} }} }}",
        f"SELECT * WHERE {{ SERVICE#comment\n<{target}/> {{ ?s ?p ?o }} }}",
        f"SELECT * WHERE {{ {{ SELECT ?s WHERE {{ SERVICE <{target}/> {{ ?s ?p ?o }} }} }} }}",
        f"SELECT * WHERE {{ ?s ?p ?o FILTER EXISTS {{ SERVICE <{target}/> {{ ?s ?p ?o }} }} }}",
        f"SELECT * WHERE {{ ?s ?p 1e3SERVICE <{target}/> {{ ?a ?b ?c }} }}",
        f"SELECT * FROM <{target}/graph> WHERE {{ ?s ?p ?o }} LIMIT 1",
        f"SELECT * FROM NAMED <{target}/graph> WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }} LIMIT 1",
        f"DESCRIBE <{target}/thing>",
        f"CONSTRUCT {{ ?s ?p ?o }} FROM <{target}/g> WHERE {{ ?s ?p ?o }} LIMIT 1",
        f"LOAD <{target}/data.ttl>",
        f"LOAD SILENT <{target}/data.ttl> INTO GRAPH <http://example.org/g>",
        f"INSERT DATA {{ <{target}/a> <{target}/b> <{target}/c> }}",
    ]
    with httpx.Client(base_url=url, timeout=30) as client:
        answers = []
        for query in queries:
            answers.append(client.get("/sparql", params={"query": query}))
            answers.append(client.post("/sparql", data={"query": query}))
            answers.append(
                client.post(
                    "/sparql",
                    content=query.encode(),
                    headers={"Content-Type": "application/sparql-query"},
                )
            )
        answers.append(
            client.post(
                "/sparql",
                content=f"LOAD <{target}/x>".encode(),
                headers={"Content-Type": "application/sparql-update"},
            )
        )
        answers.append(client.post("/sparql", data={"update": f"LOAD <{target}/x>"}))
        answers.append(client.get("/sparql", params={"update": f"LOAD <{target}/x>"}))
        answers.append(
            client.get(
                "/sparql",
                params={
                    "query": "SELECT * WHERE { ?s ?p ?o } LIMIT 1",
                    "default-graph-uri": f"{target}/g",
                    "named-graph-uri": f"{target}/n",
                },
            )
        )
        for path in (
            f"/id/lab/ti-lab?format={quote(target)}",
            f"/doc/lab/ti-lab?format={quote(target)}",
        ):
            answers.append(client.get(path))
    for answer in answers:
        assert answer.status_code < 500, (answer.request.url, answer.text)
    refused = [a for a in answers if a.status_code in (400, 403)]
    assert len(refused) >= 3 * 10  # SERVICE, LOAD and INSERT are refused, not just harmless
    assert not _connected(sock), "a request made the server open a connection"


# -- 2. sizes -----------------------------------------------------------------------------------


def test_oversized_url_is_414(url: str) -> None:
    long_query = "SELECT * WHERE { ?s ?p ?o } #" + "x" * 9000
    response = httpx.get(url + "/sparql", params={"query": long_query})
    assert response.status_code == 414
    # A request line past what the HTTP parser buffers is refused as 414 too, not a bare 400.
    answer = get_raw(url, b"/sparql?query=" + b"a" * 40_000)
    assert status(answer) == 414


def test_oversized_header_block_is_431(url: str) -> None:
    answer = get_raw(url, b"/healthz", b"X-Big: " + b"a" * 40_000 + b"\r\n")
    assert status(answer) == 431
    many = b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 100) for i in range(300))
    assert status(get_raw(url, b"/healthz", many)) == 431


def _exchange(base: str, pieces: list[bytes], *, pause: float = 0.05) -> bytes:
    """Send ``pieces`` one by one (each its own TCP segment, more or less), then read all."""
    with socket.create_connection(_address(base), timeout=15) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for piece in pieces:
            sock.sendall(piece)
            time.sleep(pause)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_heads_are_measured_exactly_however_they_are_cut(url: str) -> None:
    """A head split anywhere (even inside its blank line) is fine; a body sent with its head
    does not count as head; pipelined requests are all answered."""
    head = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    for cut in (5, len(head) - 3, len(head) - 1):
        assert status(_exchange(url, [head[:cut], head[cut:]])) == 200
    query = b"query=" + quote("SELECT * WHERE { ?s ?p ?o } LIMIT 1 #" + "x" * 60_000).encode()
    post = (
        b"POST /sparql HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: %d\r\n\r\n" % len(query)
    ) + query
    assert status(_exchange(url, [post])) == 200  # 60 KB in one send: a body, not a head
    keep = head.replace(b"Connection: close", b"Connection: keep-alive")
    answers = _exchange(url, [keep + keep + head])
    assert answers.count(b"HTTP/1.1 200") == 3


def test_an_upgrade_offer_is_ignored_and_the_body_kept(url: str) -> None:
    """Java's HttpClient (Jena's rsparql) offers HTTP/2 on every POST; the server stays on
    HTTP/1.1 and must still read the query in the body (httptools alone drops it)."""
    query = b"ASK { ?s ?p ?o }"
    for framing in (
        b"Content-Length: %d\r\n\r\n%s" % (len(query), query),
        b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(query), query),
    ):
        head = (
            b"POST /sparql HTTP/1.1\r\nHost: localhost\r\n"
            b"Connection: Upgrade, HTTP2-Settings, close\r\n"
            b"HTTP2-Settings: AAEAAEAAAAIAAAABAAMAAABkAAQBAAAAAAUAAEAA\r\nUpgrade: h2c\r\n"
            b"Content-Type: application/sparql-query\r\n"
            b"Accept: application/sparql-results+json\r\n"
        )
        answer = _exchange(url, [head + framing])
        assert status(answer) == 200, answer[:300]
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["boolean"] is True


def test_a_body_that_stops_coming_gets_408(url: str) -> None:
    started = time.monotonic()
    answer = _exchange(
        url,
        [
            b"POST /sparql HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/sparql-query\r\n"
            b"Content-Length: 100\r\n\r\nASK"
        ],
    )
    assert status(answer) == 408
    assert time.monotonic() - started < 10  # the client_timeout (2 s here), not for ever


def test_oversized_body_is_413_with_or_without_content_length(url: str) -> None:
    body = b"SELECT * WHERE { ?s ?p ?o } #" + b"x" * 70_000
    response = httpx.post(
        url + "/sparql", content=body, headers={"Content-Type": "application/sparql-query"}
    )
    assert response.status_code == 413

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"#" * 4096

    response = httpx.post(
        url + "/sparql", content=chunks(), headers={"Content-Type": "application/sparql-query"}
    )
    assert response.status_code == 413
    assert (
        "transfer-encoding" not in response.request.headers
        or response.request.headers["transfer-encoding"] == "chunked"
    )
    # A chunked body to a route that does not read it is not a way around the limit either.
    chunked = b"".join(b"1000\r\n" + b"y" * 4096 + b"\r\n" for _ in range(20)) + b"0\r\n\r\n"
    answer = raw(
        url,
        b"POST /sparql HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + chunked,
    )
    assert status(answer) == 413


# -- 3. malformed requests: 4xx, never 500 --------------------------------------------------------

MALFORMED_HEADERS = [
    b"Accept: ;;;,,,q=abc",
    b"Accept: text/turtle;q=",
    b"Accept: */",
    b"Accept: text/html;q=2;q=3, ,/,",
    b"Accept: \xff\xfe\xfd",
    b'Accept: application/ld+json;profile="unterminated',
    b'If-None-Match: "unterminated, W/',
    b"If-Modified-Since: not a date \xff",
    b"If-Modified-Since: Mon, 99 Foo 99999 99:99:99 GMT",
    b"Range: bytes=abc-def",
    b"Range: bytes=99999999999-1",
    b"Accept-Encoding: gzip;q=nope, \xff",
    b"X-Request-Id: \xff\x00bad",
    b'Host: "><script>alert(1)</script>',
]
TARGETS = [
    b"/sparql",
    b"/sparql?query=ASK%7B%7D",
    b"/id/lab/ti-lab",
    b"/doc/lab/ti-lab",
    b"/doc/lab/ti-lab.ttl",
    b"/catalog",
    b"/dumps/labgraph.nt",
    b"/def/",
    b"/",
    b"/context.jsonld",
]


def test_malformed_headers_never_give_a_500(url: str) -> None:
    for header in MALFORMED_HEADERS:
        for target in TARGETS:
            answer = get_raw(url, target, header + b"\r\n")
            if answer:  # the HTTP parser may refuse and close at once
                assert status(answer) < 500, (header, target, answer[:300])


BAD_TARGETS = [
    b"/sparql?query=%zz",
    b"/sparql?query=%",
    b"/sparql?query=%C3%28",
    b"/sparql?query=%FF%FE",
    b"/sparql?query=\xff\xfe",
    b"/sparql?query=SELECT\x01*",
    b"/sparql?%00=%00",
    b"/sparql?query=ASK%7B%7D&query=ASK%7B%7D",
    b"/sparql?default-graph-uri=not%20an%20iri&query=ASK%7B%7D",
    b"/sparql?named-graph-uri=%FF&query=ASK%7B%7D",
    b"/doc/lab/%ff%fe",
    b"/doc/lab/ti-lab?format=%ff",
    b"/id/%C0%AF/x",
    b"/doc/lab/\xe9t\xe9",
    b"/%",
    b"/doc/%%%",
    b"/def/%00",
    b"/catalog.%ff",
    b"/dumps/%00",
    b"*",
    b"//",
    b"/?" + b"&" * 500,
    b"/sparql?" + b"&a=b" * 1500,
]


def test_bad_percent_encoding_and_bytes_in_urls_never_give_a_500(url: str) -> None:
    for target in BAD_TARGETS:
        answer = get_raw(url, target)
        assert answer, target
        assert status(answer) < 500, (target, answer[:300])


def test_malformed_posts_never_give_a_500(url: str) -> None:
    cases = [
        (b"application/sparql-query; charset=ebcdic", b"ASK {}"),
        (b"application/sparql-query; charset=", b"ASK {}"),
        (b"application/sparql-query", b"\xff\xfe\x00 ASK {}"),
        (b"application/x-www-form-urlencoded", b"query=%FF%FE"),
        (b"application/x-www-form-urlencoded", b"query=%zz&&&=&="),
        (b"application/x-www-form-urlencoded", b"\xc3\x28=\xc3\x28"),
        (b"application/x-www-form-urlencoded", b"query=ASK{}&query=ASK{}"),
        (b"multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data\r\n\r\n"),
        (b";;;", b"ASK {}"),
        (b"\xff/\xfe", b"ASK {}"),
        (b"text/plain", b"\x00" * 100),
    ]
    for content_type, body in cases:
        answer = raw(
            url,
            b"POST /sparql HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Type: " + content_type + b"\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body,
        )
        assert 400 <= status(answer) < 500, (content_type, body, answer[:300])


def test_binary_garbage_and_bad_framing_get_a_4xx(url: str) -> None:
    garbage = [
        bytes(range(256)),
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,  # a TLS ClientHello
        b"GET /\x00 HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"POST /sparql HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET / HTTP/1.1\r\nBad Header Name: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n",
        b"\r\n\r\n\r\n",
    ]
    for data in garbage:
        answer = raw(url, data)
        if answer:
            assert 400 <= status(answer) < 500, (data[:40], answer[:200])
    assert httpx.get(url + "/healthz").status_code == 200


# -- 4. what is echoed into HTML is escaped -------------------------------------------------------

XSS = "<script>alert(1)</script>"


def test_queries_and_data_echoed_into_html_are_escaped(url: str) -> None:
    html = {"Accept": "text/html"}
    with httpx.Client(base_url=url, timeout=30) as client:
        pages = [
            client.get("/sparql", params={"query": f"SELECT * WHERE {{ {XSS} }}"}, headers=html),
            client.get(
                "/sparql",
                params={
                    "query": f'SELECT ("{XSS}" AS ?x) ("\\"><img src=x '
                    f'onerror=alert(1)>" AS ?y) WHERE {{}}'
                },
                headers=html,
            ),
            client.get(
                "/sparql",
                params={"query": 'SELECT (IRI("javascript:alert(1)") AS ?x) WHERE {}'},
                headers=html,
            ),
            client.get("/sparql", params={"query": f"ASK {{}} # {XSS}"}, headers=html),
            client.get(f"/doc/lab/{quote(XSS, safe='')}", headers=html),
            client.get(f"/id/lab/x{quote(XSS, safe='')}", headers=html),
            client.get(f"/nowhere/{quote(XSS, safe='')}", headers=html),
            client.get("/doc/lab/ti-lab.html", headers={"Host": 'x"><script>alert(1)</script>'}),
            client.get("/dumps/", headers={"Host": "x'><script>alert(1)</script>"}),
            client.get("/", headers={"Host": 'x"><svg onload=alert(1)>'}),
        ]
    for page in pages:
        assert page.status_code < 500, (page.request.url, page.text[:300])
        body = page.text
        assert "<script>alert(1)" not in body, page.request.url
        assert "<img src=x" not in body, page.request.url
        assert "<svg onload" not in body, page.request.url
        assert 'href="javascript:' not in body.lower(), page.request.url
        assert "href='javascript:" not in body.lower(), page.request.url


# -- 5. path traversal ----------------------------------------------------------------------------

TRAVERSALS = [
    b"/dumps/..%2fmanifest.json",
    b"/dumps/..%2Fmanifest.json",
    b"/dumps/%2e%2e%2fmanifest.json",
    b"/dumps/%2e%2e/manifest.json",
    b"/dumps/../manifest.json",
    b"/dumps/..%5cmanifest.json",
    b"/dumps/%252e%252e%252fmanifest.json",
    b"/dumps/latest/..%2fmanifest.json",
    b"/dumps/latest/../../manifest.json",
    b"/dumps/manifest.json",
    b"/dumps/.%2e/manifest.json",
    b"/dumps/..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    b"/dumps/%2fetc%2fpasswd",
    b"/dumps/labgraph.nt%00.json",
    b"/dumps/..%00/manifest.json",
    b"/static/../../etc/passwd",
    b"/static/..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    b"/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    b"/static/..%2fapp.py",
    b"/static/%2e%2e%2fapp.py",
    b"/static/../app.py",
    b"/static/..%5capp.py",
    b"/static//etc/passwd",
    b"/static/%2fetc%2fpasswd",
    b"/static/....//....//etc/passwd",
    b"/static/..%c0%afapp.py",
    b"/static/%c0%ae%c0%ae/app.py",
    b"/doc/lab/..%2f..%2fmanifest.json",
    b"/doc/..%2f..%2fetc%2fpasswd/x",
    b"/doc/lab/../../../../etc/passwd",
    b"/doc/lab/..%2f..%2f..%2fetc%2fpasswd.ttl",
    b"/def/..%2f..%2f..%2fetc%2fpasswd",
    b"/def/../../../etc/passwd",
    b"/def/%2e%2e/manifest",
    b"/catalog.ttl/../../manifest.json",
    b"/catalog.%2e%2e%2fmanifest.json",
    b"/id/lab/..%2f..%2fmanifest.json",
]
SECRETS = (b"root:", b'"sha256"', b"import ", b"def create_app", b'"files"')


def test_path_traversal_is_impossible(url: str) -> None:
    assert status(get_raw(url, b"/dumps/labgraph.nt")) == 200  # the control
    for target in TRAVERSALS:
        answer = get_raw(url, target)
        code = status(answer)
        assert code in (400, 404, 405, 406, 422), (target, answer[:300])
        body = answer.split(b"\r\n\r\n", 1)[-1]
        for secret in SECRETS:
            assert secret not in body, (target, secret)


# -- 6. slow clients cannot starve the others ---------------------------------------------------


def test_slow_clients_cannot_starve_the_others(url: str) -> None:
    """Many connections sending their headers a byte at a time, from one address.

    They get 16 connections at most (the rest are refused at once), each is closed (408) when
    its request has not arrived in ``client_timeout`` (2 s here), and meanwhile every request of
    a normal client from another address is answered.
    """
    host, port = _address(url)
    slow: list[socket.socket] = []
    refused = 0
    for _ in range(60):
        sock = socket.create_connection((host, port), timeout=10, source_address=(ATTACKER, 0))
        slow.append(sock)
    request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
    stop = threading.Event()
    closed_by_server: list[bytes] = []

    def drip() -> None:
        alive = list(slow)
        position = 0
        while alive and not stop.is_set() and position < len(request):
            for sock in list(alive):
                try:
                    sock.sendall(request[position : position + 1])
                except OSError:
                    alive.remove(sock)
            position += 1
            time.sleep(0.2)

    dripper = threading.Thread(target=drip, daemon=True)
    dripper.start()
    try:
        answered = []
        with httpx.Client(base_url=url, timeout=20) as client:
            for _ in range(20):
                answered.append(client.get("/doc/lab/ti-lab.ttl").status_code)
                answered.append(client.get("/sparql", params={"query": "ASK {}"}).status_code)
                time.sleep(0.1)
        assert answered == [200] * 40
        for sock in slow:  # every slow connection ends, by a refusal or by its deadline
            sock.settimeout(20)
            data = b""
            with contextlib.suppress(OSError):
                while chunk := sock.recv(4096):
                    data += chunk
            closed_by_server.append(data)
    finally:
        stop.set()
        dripper.join(timeout=10)
        for sock in slow:
            sock.close()
    refused = sum(1 for data in closed_by_server if data.startswith(b"HTTP/1.1 503"))
    timed_out = sum(1 for data in closed_by_server if data.startswith(b"HTTP/1.1 408"))
    assert refused >= 60 - 16
    assert timed_out >= 1
    assert refused + timed_out == 60
    assert httpx.get(url + "/healthz").status_code == 200


def test_quick_load_has_no_errors(releases_dir: Path, tmp_path: Path) -> None:
    """``benchmarks/load.py --quick`` (its own server): 0 errors but deliberate 503s."""
    # Embedded only: load.py starts its own server from a releases folder (no --store option).
    report = tmp_path / "load.json"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "load.py"),
            "--quick",
            "--releases",
            str(releases_dir),
            "--json",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(report.read_text())
    assert figures["requests"] > 0
    assert figures["errors"] == 0, figures
    assert figures["by_status"].get("500", 0) == 0
    assert figures["peak_rss_mb"] > 0
    assert figures["latency_ms"]["p99"] >= figures["latency_ms"]["p50"] > 0
