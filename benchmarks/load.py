"""Bounded load test of ``labgraph serve`` on loopback: errors, latency and memory under load.

N concurrent clients (each its own keep-alive connection) loop over a mix of what the server's
audiences do — dereference a lab's URI (303), fetch its document as Turtle, JSON-LD or HTML,
run small SPARQL queries, fetch the catalogue — for a fixed time and at most a fixed number of
requests, then stop. It reports every status, the errors (anything but the expected answers and
the server's deliberate backpressure: 503 with Retry-After, 429), p50/p90/p99 latency, and the
peak resident memory of the server and its query workers, sampled while the load runs.

    python benchmarks/load.py                    # 64 clients for 60 s, own server
    python benchmarks/load.py --quick            # 16 clients for 10 s (CI)
    python benchmarks/load.py --url http://127.0.0.1:8000 --pid 1234

Only loopback addresses are accepted as targets. Figures go to benchmarks/out/ as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import ipaddress
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
EXPECTED = {200, 303, 304}
DELIBERATE = {503, 429}  # backpressure: every worker busy, connection caps, rate limit
QUERIES = [
    "PREFIX lg: <https://w3id.org/labgraph/def/> SELECT (COUNT(?l) AS ?n) WHERE { ?l a lg:Lab }",
    "PREFIX lg: <https://w3id.org/labgraph/def/> PREFIX rdfs: "
    "<http://www.w3.org/2000/01/rdf-schema#> SELECT ?l ?name WHERE { ?l a lg:Lab ; rdfs:label "
    "?name } ORDER BY ?name LIMIT 20",
    "ASK { ?s ?p ?o }",
    "PREFIX dct: <http://purl.org/dc/terms/> SELECT ?r (COUNT(?l) AS ?n) WHERE { ?l dct:spatial "
    "?r } GROUP BY ?r ORDER BY DESC(?n)",
]
#: (weight, kind) of each request of the mix.
MIX = [(35, "id"), (25, "ttl"), (10, "html"), (5, "jsonld"), (20, "sparql"), (5, "catalog")]


@dataclass
class Figures:
    """What one run measured."""

    clients: int
    duration_s: float
    requests: int = 0
    errors: int = 0
    deliberate: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_kind: dict[str, int] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)
    releases_seen: list[str] = field(default_factory=list)
    latency_ms: dict[str, float] = field(default_factory=dict)
    throughput_rps: float = 0.0
    peak_rss_mb: float | None = None
    peak_rss_largest_process_mb: float | None = None
    processes: int | None = None

    def summary(self) -> str:
        lat = self.latency_ms
        lines = [
            f"{self.clients} clients, {self.duration_s:.1f} s: {self.requests} requests "
            f"({self.throughput_rps:.0f}/s), {self.errors} errors, {self.deliberate} deliberate "
            f"503/429",
            f"status: {dict(sorted(self.by_status.items()))}",
            f"latency ms: p50 {lat.get('p50', 0):.1f}  p90 {lat.get('p90', 0):.1f}  "
            f"p99 {lat.get('p99', 0):.1f}  max {lat.get('max', 0):.1f}",
        ]
        if self.peak_rss_mb is not None:
            lines.append(
                f"peak RSS of server + workers: {self.peak_rss_mb:.0f} MB "
                f"({self.processes} processes; largest "
                f"{self.peak_rss_largest_process_mb:.0f} MB)"
            )
        for sample in self.error_samples[:5]:
            lines.append(f"error: {sample}")
        return "\n".join(lines)


def check_loopback(url: str) -> None:
    """Refuse any target but this machine: a load test never leaves loopback."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise SystemExit(f"load.py: {url} is not a loopback address; refusing to load it")


def _request(
    kind: str, labs: list[str], rng: random.Random
) -> tuple[str, dict[str, str], dict[str, str]]:
    lab = rng.choice(labs)
    if kind == "id":
        return f"/id/lab/{lab}", {}, {"Accept": "text/turtle"}
    if kind == "ttl":
        return f"/doc/lab/{lab}.ttl", {}, {}
    if kind == "html":
        return f"/doc/lab/{lab}.html", {}, {}
    if kind == "jsonld":
        return f"/doc/lab/{lab}.jsonld", {}, {}
    if kind == "catalog":
        return "/catalog.ttl", {}, {}
    return "/sparql", {"query": rng.choice(QUERIES)}, {"Accept": "application/sparql-results+json"}


async def _client(
    base: str,
    labs: list[str],
    deadline: float,
    budget: list[int],
    seed: int,
    latencies: list[float],
    statuses: Counter[str],
    kinds: Counter[str],
    samples: list[str],
    releases: set[str],
    until: Callable[[], bool] | None,
) -> None:
    rng = random.Random(seed)
    kinds_list = [k for w, k in MIX for _ in range(w)]
    async with httpx.AsyncClient(
        base_url=base, timeout=60, follow_redirects=False, limits=httpx.Limits(max_connections=1)
    ) as client:
        while time.monotonic() < deadline and budget[0] > 0 and not (until and until()):
            budget[0] -= 1
            kind = rng.choice(kinds_list)
            path, params, headers = _request(kind, labs, rng)
            started = time.perf_counter()
            try:
                response = await client.get(path, params=params, headers=headers)
                await response.aread()
            except httpx.HTTPError as err:
                statuses["transport-error"] += 1
                if len(samples) < 20:
                    samples.append(f"{kind} {path}: {type(err).__name__}: {err}")
                await asyncio.sleep(0.05)
                continue
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[str(response.status_code)] += 1
            kinds[kind] += 1
            release = response.headers.get("x-labgraph-release")
            if release:
                releases.add(release)
            code = response.status_code
            if code in DELIBERATE and "retry-after" not in response.headers:
                statuses["deliberate-without-retry-after"] += 1
            if code not in EXPECTED and code not in DELIBERATE and len(samples) < 20:
                samples.append(f"{kind} {path} {params}: {code} {response.text[:200]!r}")
            if code in DELIBERATE:
                await asyncio.sleep(float(response.headers.get("retry-after", "1")) / 10)


async def _sample_memory(pid: int | None, stop: asyncio.Event, peak: dict[str, float]) -> None:
    if pid is None:
        return
    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    while not stop.is_set():
        total, largest, count = 0, 0, 0
        try:
            for proc in [root, *root.children(recursive=True)]:
                try:
                    rss = proc.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
                total += rss
                largest = max(largest, rss)
                count += 1
        except psutil.NoSuchProcess:
            return
        peak["total"] = max(peak.get("total", 0), total)
        peak["largest"] = max(peak.get("largest", 0), largest)
        peak["processes"] = max(peak.get("processes", 0), count)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=0.25)


def lab_ids(base: str) -> list[str]:
    """Ids of the labs the server publishes (to dereference them)."""
    query = (
        "PREFIX lg: <https://w3id.org/labgraph/def/> SELECT ?l WHERE { ?l a lg:Lab } "
        "ORDER BY ?l LIMIT 500"
    )
    response = httpx.get(
        base + "/sparql",
        params={"query": query},
        headers={"Accept": "application/sparql-results+json"},
        timeout=60,
    )
    response.raise_for_status()
    ids = [b["l"]["value"].rsplit("/", 1)[-1] for b in response.json()["results"]["bindings"]]
    if not ids:
        raise SystemExit("load.py: the server publishes no lab")
    return ids


async def run_load(
    base: str,
    *,
    clients: int,
    duration: float,
    max_requests: int,
    pid: int | None = None,
    seed: int = 0,
    until: Callable[[], bool] | None = None,
) -> Figures:
    """Load ``base`` with ``clients`` clients for ``duration`` s or ``max_requests`` requests.

    ``until``, when given, ends the run early as soon as it returns True (tests under load).
    """
    check_loopback(base)
    labs = await asyncio.to_thread(lab_ids, base)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    samples: list[str] = []
    releases: set[str] = set()
    peak: dict[str, float] = {}
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample_memory(pid, stop, peak))
    budget = [max_requests]
    started = time.monotonic()
    deadline = started + duration
    await asyncio.gather(
        *(
            _client(
                base,
                labs,
                deadline,
                budget,
                seed * 1000 + i,
                latencies,
                statuses,
                kinds,
                samples,
                releases,
                until,
            )
            for i in range(clients)
        )
    )
    elapsed = time.monotonic() - started
    stop.set()
    await sampler
    figures = Figures(clients=clients, duration_s=round(elapsed, 2))
    figures.requests = sum(v for k, v in statuses.items() if k.isdigit())
    figures.deliberate = sum(statuses.get(str(c), 0) for c in DELIBERATE)
    figures.errors = sum(
        v for k, v in statuses.items() if not k.isdigit() or int(k) not in EXPECTED | DELIBERATE
    )
    figures.by_status = dict(statuses)
    figures.by_kind = dict(kinds)
    figures.error_samples = samples
    figures.releases_seen = sorted(releases)
    figures.throughput_rps = round(figures.requests / elapsed, 1) if elapsed else 0.0
    if latencies:
        ordered = sorted(latencies)
        figures.latency_ms = {
            "p50": round(statistics.median(ordered), 2),
            "p90": round(ordered[int(0.90 * (len(ordered) - 1))], 2),
            "p99": round(ordered[int(0.99 * (len(ordered) - 1))], 2),
            "max": round(ordered[-1], 2),
        }
    if peak:
        figures.peak_rss_mb = round(peak["total"] / 2**20, 1)
        figures.peak_rss_largest_process_mb = round(peak["largest"] / 2**20, 1)
        figures.processes = int(peak["processes"])
    return figures


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(releases: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """``labgraph serve`` on a free loopback port, without rate limit (we measure capacity)."""
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "labgraph.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--releases",
            str(releases),
            "--data",
            str(ROOT / "data"),
        ],
        cwd=ROOT,
        env={**os.environ, "LABGRAPH_RATE_LIMIT": "0", "LABGRAPH_ACCESS_LOG": "off", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"load.py: the server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("load.py: the server did not become ready")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="16 clients for 10 s (CI)")
    parser.add_argument("--clients", type=int, help="concurrent clients (default 64)")
    parser.add_argument("--duration", type=float, help="seconds (default 60)")
    parser.add_argument(
        "--max-requests",
        type=int,
        default=500_000,
        help="stop after this many requests (default 500000)",
    )
    parser.add_argument("--url", help="load this running server (loopback only)")
    parser.add_argument("--pid", type=int, help="with --url: the server's pid, for its memory")
    parser.add_argument(
        "--releases",
        type=Path,
        help="releases folder for the server started here (default: a fresh build of data/)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    clients = args.clients or (16 if args.quick else 64)
    duration = args.duration or (10.0 if args.quick else 60.0)
    proc = None
    url, pid = args.url, args.pid
    with tempfile.TemporaryDirectory(prefix="labgraph-load-") as tmp:
        if url is None:
            releases = args.releases
            if releases is None:
                releases = Path(tmp) / "releases"
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "labgraph.cli",
                        "build",
                        "--data",
                        str(ROOT / "data"),
                        "--releases",
                        str(releases),
                    ],
                    cwd=ROOT,
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
            proc, url = start_server(releases, {})
            pid = proc.pid
        check_loopback(url)
        try:
            figures = asyncio.run(
                run_load(
                    url,
                    clients=clients,
                    duration=duration,
                    max_requests=args.max_requests,
                    pid=pid,
                    seed=args.seed,
                )
            )
        finally:
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
    print(figures.summary())
    record = {
        "benchmark": "load",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "system": platform.platform(),
        },
        "quick": args.quick,
        **asdict(figures),
    }
    text = json.dumps(record, indent=2, sort_keys=True)
    if args.json:
        args.json.write_text(text + "\n")
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    (OUT / f"load-{stamp}.json").write_text(text + "\n")
    return 0 if figures.errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
