"""HTTP throughput of labgraph side by side with its peers, on the same data and request mix.

Peers, each started here on loopback over the same N-Quads of one release:

- **Oxigraph's own server** (``oxigraph serve-read-only``, Rust): the ceiling for SPARQL;
- **rdflib-endpoint** (FastAPI over rdflib, the closest Python peer);
- **a bare Starlette app** returning the very bytes labgraph serves for a document: the ceiling
  for dereferencing in Python.

labgraph runs as users run it (``labgraph serve``, deadlines, worker processes, caps, CORS, gzip,
logs, answer cache), the per-client rate limit included but set too high to refuse the one load
generator on 127.0.0.1. The Python peers run on the same uvicorn stack as labgraph (httptools,
uvloop), so that a ratio measures the application, not the HTTP parser.
``--no-cache`` turns the answer caches off (replay included), so that every query reaches a worker.
Load is made by ``wrk`` (Debian package, C) with a Lua script cycling through the request mix;
the figure is requests per second, and the ratios are what to read (2 shared cores: noisy).

    python benchmarks/http_bench.py            # 15 s per scenario, 16 connections
    python benchmarks/http_bench.py --quick    # 3 s per scenario

Peers are installed on first use into benchmarks/.peers-venv (``oxigraph``, ``rdflib-endpoint``)
and wrk with apt-get when missing (needs root).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PEERS = REPO / "benchmarks" / ".peers-venv"
#: The peers, and the server stack labgraph runs on (uvicorn with httptools and uvloop), so that
#: the Python peers (bare Starlette, rdflib-endpoint) are served exactly as labgraph is.
PEER_PACKAGES = ["oxigraph", "rdflib-endpoint", "uvicorn", "starlette", "httptools", "uvloop"]
OUT = REPO / "benchmarks" / "out"

QUERIES = {
    "count": "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }",
    "labs": (
        "PREFIX lg: <https://w3id.org/labgraph/def/> "
        "PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#> "
        "SELECT ?lab ?name WHERE { ?lab a lg:Lab ; rdfs:label ?name } ORDER BY ?name"
    ),
    "per-region": (
        "PREFIX lg: <https://w3id.org/labgraph/def/> PREFIX dct: <http://purl.org/dc/terms/> "
        "SELECT ?region (COUNT(?lab) AS ?n) WHERE { ?lab a lg:Lab ; dct:spatial ?region } "
        "GROUP BY ?region ORDER BY DESC(?n)"
    ),
    "one-lab": "SELECT ?p ?o WHERE { <https://w3id.org/labgraph/id/lab/ti-lab> ?p ?o }",
    "join": (
        "PREFIX org: <http://www.w3.org/ns/org#> "
        "PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#> "
        "SELECT ?lab ?host ?name WHERE { ?lab org:unitOf ?host . ?host rdfs:label ?name }"
    ),
}
DOCUMENT = "/doc/lab/ti-lab.ttl"

LUA = """
local paths = {%s}
local i = 0
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i], {["Accept"] = "%s"})
end
"""

BARE_APP = """
from pathlib import Path
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

BODY = Path({body!r}).read_bytes()

async def doc(request):
    return Response(BODY, media_type="text/turtle; charset=utf-8")

app = Starlette(routes=[Route("/doc/{{type}}/{{name}}", doc)])
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 500:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


@contextlib.contextmanager
def running(
    cmd: list[str], ready_url: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        cmd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_until_up(ready_url)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def ensure_tools() -> None:
    if shutil.which("wrk") is None:
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "wrk"], check=True, stdout=subprocess.DEVNULL
        )
    if not (PEERS / "bin" / "oxigraph").exists() or not _has_server_stack():
        subprocess.run([sys.executable, "-m", "venv", str(PEERS)], check=True)
        subprocess.run([str(PEERS / "bin" / "pip"), "install", "-q", *PEER_PACKAGES], check=True)


def _has_server_stack() -> bool:
    """Whether the peers' venv runs uvicorn as labgraph does (httptools, uvloop)."""
    probe = [str(PEERS / "bin" / "python"), "-c", "import httptools, uvloop"]
    return subprocess.run(probe, capture_output=True).returncode == 0


def wrk(
    base: str, paths: list[str], accept: str, seconds: int, connections: int, workdir: Path
) -> dict[str, float]:
    script = workdir / "mix.lua"
    script.write_text(LUA % (", ".join(json.dumps(p) for p in paths), accept))
    out = subprocess.run(
        [
            "wrk",
            "-t",
            "1",
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--latency",
            "-s",
            str(script),
            base,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    figures: dict[str, float] = {"rps": 0.0, "non2xx": 0.0, "p99_ms": 0.0}
    for line in out.splitlines():
        words = line.split()
        if line.startswith("Requests/sec:"):
            figures["rps"] = float(words[1])
        elif line.strip().startswith("Non-2xx or 3xx responses:"):
            figures["non2xx"] = float(words[-1])
        elif line.strip().startswith("99%"):
            figures["p99_ms"] = _ms(words[1])
    return figures


def _ms(text: str) -> float:
    for unit, factor in (("ms", 1.0), ("us", 0.001), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text)


def query_paths(prefix: str) -> list[str]:
    return [f"{prefix}?" + urllib.parse.urlencode({"query": q}) for q in QUERIES.values()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=int, default=15, help="duration of each scenario")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="3 s per scenario")
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="turn labgraph's answer caches off, replay included (every query reaches a worker)",
    )
    args = parser.parse_args()
    seconds = 3 if args.quick else args.seconds
    ensure_tools()
    bin_ = PEERS / "bin"
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="labgraph-http-bench-") as tmp_name:
        tmp = Path(tmp_name)
        releases = tmp / "releases"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "labgraph.cli",
                "build",
                "--releases",
                str(releases),
                "--data",
                str(REPO / "data"),
            ],
            check=True,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
        )
        nquads = (releases / "current" / "labgraph.nq").resolve()
        store = tmp / "oxigraph"
        subprocess.run(
            [str(bin_ / "oxigraph"), "load", "--location", str(store), "--file", str(nquads)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        # Every protection on, the per-client rate limit included, set high enough that one
        # load generator on 127.0.0.1 is never refused: its cost is measured, not its 429s.
        env = {"LABGRAPH_RATE_LIMIT": "1000000", "LABGRAPH_RATE_BURST": "1000000"}
        if args.no_cache:
            env["LABGRAPH_CACHE_BYTES"] = "0"
        # Throughput with more server processes over the same read-only store.
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with running(
            [
                sys.executable,
                "-m",
                "labgraph.cli",
                "serve",
                "--releases",
                str(releases),
                "--port",
                str(port),
                "--workers",
                "2",
            ],
            base + "/healthz",
            env,
        ):
            results["labgraph sparql, 2 workers"] = wrk(
                base,
                query_paths("/sparql"),
                "application/sparql-results+json",
                seconds,
                args.connections,
                tmp,
            )
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with running(
            [
                sys.executable,
                "-m",
                "labgraph.cli",
                "serve",
                "--releases",
                str(releases),
                "--port",
                str(port),
            ],
            base + "/healthz",
            env,
        ):
            results["labgraph sparql"] = wrk(
                base,
                query_paths("/sparql"),
                "application/sparql-results+json",
                seconds,
                args.connections,
                tmp,
            )
            results["labgraph deref"] = wrk(
                base, [DOCUMENT], "text/turtle", seconds, args.connections, tmp
            )
            with urllib.request.urlopen(base + DOCUMENT) as response:
                (tmp / "doc.ttl").write_bytes(response.read())

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with running(
            [
                str(bin_ / "oxigraph"),
                "serve-read-only",
                "--location",
                str(store),
                "--bind",
                f"127.0.0.1:{port}",
            ],
            base + "/query?query=ASK%7B%7D",
        ):
            results["oxigraph sparql"] = wrk(
                base,
                query_paths("/query"),
                "application/sparql-results+json",
                seconds,
                args.connections,
                tmp,
            )

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with running(
            [
                str(bin_ / "rdflib-endpoint"),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                str(nquads),
            ],
            base + "/?query=ASK%7B%7D",
        ):
            results["rdflib-endpoint sparql"] = wrk(
                base,
                query_paths("/"),
                "application/sparql-results+json",
                seconds,
                args.connections,
                tmp,
            )

        app = tmp / "bare_app.py"
        app.write_text(BARE_APP.format(body=str(tmp / "doc.ttl")))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with running(
            [
                str(bin_ / "python"),
                "-m",
                "uvicorn",
                "--app-dir",
                str(tmp),
                "bare_app:app",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            base + DOCUMENT,
        ):
            results["starlette deref"] = wrk(
                base, [DOCUMENT], "text/turtle", seconds, args.connections, tmp
            )

    ratios = {
        "labgraph / oxigraph (sparql)": _ratio(results, "labgraph sparql", "oxigraph sparql"),
        "labgraph / rdflib-endpoint (sparql)": _ratio(
            results, "labgraph sparql", "rdflib-endpoint sparql"
        ),
        "labgraph / bare starlette (deref)": _ratio(results, "labgraph deref", "starlette deref"),
        "labgraph 2 workers / 1 worker (sparql)": _ratio(
            results, "labgraph sparql, 2 workers", "labgraph sparql"
        ),
    }
    print(f"{'scenario':28} {'req/s':>10} {'p99 ms':>9} {'non-2xx':>8}")
    for name, fig in results.items():
        print(f"{name:28} {fig['rps']:>10.0f} {fig['p99_ms']:>9.1f} {fig['non2xx']:>8.0f}")
    for name, value in ratios.items():
        print(f"{name:40} {value:6.2f}x")
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    (OUT / f"http_bench-{stamp}.json").write_text(
        json.dumps(
            {
                "seconds": seconds,
                "connections": args.connections,
                "cache": not args.no_cache,
                "results": results,
                "ratios": ratios,
            },
            indent=2,
        )
    )
    return 0


def _ratio(results: dict[str, dict[str, float]], a: str, b: str) -> float:
    return results[a]["rps"] / results[b]["rps"] if results[b]["rps"] else float("nan")


if __name__ == "__main__":
    sys.exit(main())
