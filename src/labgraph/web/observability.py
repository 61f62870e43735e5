"""What an operator sees: JSON-lines access logs, request ids and Prometheus metrics.

Every request gets an id (a sane incoming ``X-Request-Id`` is kept, so a proxy's id follows the
request through), echoed in the response and in its access-log line. A log line never holds a
client's query, only its hash: queries can carry personal data, and a hash is enough to group
the lines of one query. Metrics are labelled by route *template* (``/id/{type_}/{id_}``), never
by raw path, so a scan of random URLs cannot grow them without bound.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import functools
import hashlib
import itertools
import json
import logging
import logging.handlers
import os
import re
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client import generate_latest as _generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from .runtime import Runtime

ACCESS_LOGGER = "labgraph.access"
REQUEST_ID_HEADER = "x-request-id"
#: Key of ``scope["state"]`` where the SPARQL endpoint leaves the query it read (for its hash).
SPARQL_QUERY_STATE = "sparql_query"
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+=/-]{0,127}")
_METHODS = frozenset({"GET", "HEAD", "POST", "OPTIONS", "PUT", "DELETE", "PATCH"})
_SPARQL_PATHS = frozenset({"/sparql", "/sparql/"})
_FORM = "application/x-www-form-urlencoded"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
UNMATCHED = "<unmatched>"


def request_id(incoming: bytes | None) -> str:
    """The incoming id when it is short printable ASCII, else a new random one."""
    if incoming:
        try:
            text = incoming.decode("ascii")
        except UnicodeDecodeError:
            text = ""
        if _SANE_ID.fullmatch(text):
            return text
    return _new_id()


class _Ids:
    """Request ids: a random per-process prefix and a counter. Unique like a UUID, without a
    system call per request (``os.urandom`` alone costs more than a cached answer here)."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"


_new_id = _Ids()


def query_hash(query: str | bytes) -> str:
    """A short, stable fingerprint of a query (the same text always gives the same hash)."""
    if isinstance(query, str) and len(query) <= _MEMO_CHARS:
        return _str_hash(query)
    data = query.encode("utf-8", "surrogatepass") if isinstance(query, str) else query
    return hashlib.sha256(data).hexdigest()[:16]


_MEMO_CHARS = 4096


@functools.lru_cache(maxsize=4096)
def _str_hash(query: str) -> str:
    """Memoised: clients repeat their queries, and the log hashes each one every time."""
    return hashlib.sha256(query.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def sparql_query_hash(query_string: bytes, content_type: str, body: bytes) -> str | None:
    """The hash of the query of a SPARQL protocol request (URL, form body or direct body)."""
    try:
        params = parse_qs(query_string.decode("latin-1"), keep_blank_values=True)
    except ValueError:
        params = {}
    if "query" in params:
        return query_hash(params["query"][0])
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == _FORM and body:
        try:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        except (UnicodeDecodeError, ValueError):
            return query_hash(body)
        if "query" in form:
            return query_hash(form["query"][0])
        return None
    return query_hash(body) if body else None


class _Backlog(logging.Handler):
    """Lines waiting for the writer thread: a deque, since appending to one is atomic and takes
    no lock (a ``queue.Queue`` costs a lock and a condition per line on both sides). When the
    writer has fallen ``maxsize`` lines behind (a stuck pipe, a full disk, a slow collector),
    new lines are dropped and counted rather than waited for."""

    def __init__(self, maxsize: int) -> None:
        super().__init__()
        self.maxsize = maxsize
        self.lines: collections.deque[Any] = collections.deque()
        self.submitted = itertools.count(1)  # next() is atomic: the loop and other threads
        self.last = 0  # number of the last line submitted
        self.done = 0  # lines written or dropped, counted by the writer thread only
        self.dropped = 0

    def put(self, item: Any) -> None:
        if len(self.lines) >= self.maxsize:
            self.dropped += 1
            return
        self.lines.append(item)
        self.last = next(self.submitted)

    def emit(self, record: logging.LogRecord) -> None:  # logged to the access logger by others
        self.put(record)


class _AccessLog:
    """The access log's backlog and the daemon thread that writes it out."""

    def __init__(self, target: logging.Handler, maxsize: int) -> None:
        self.target = target
        self.handler = _Backlog(maxsize)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._write, name="labgraph-access-log", daemon=True)
        self.thread.start()

    def submit(self, line: dict[str, Any]) -> None:
        """Queue one access line; it is timestamped now and formatted by the writer thread."""
        self.handler.put((time.time(), line))

    def _write(self) -> None:
        lines = self.handler.lines
        while True:
            # Let lines gather: one write (and one hand-off of the GIL) per batch, not per line.
            stopping = self.stopping.wait(ACCESS_LOG_BATCH_SECONDS)
            while lines:
                batch = [lines.popleft() for _ in range(min(len(lines), ACCESS_LOG_BACKLOG))]
                self._write_batch(batch)
                self.handler.done += len(batch)
            if stopping:
                return

    def _write_batch(self, batch: list[Any]) -> None:
        formatted: list[str] = []
        for item in batch:
            if isinstance(item, logging.LogRecord):  # logged by someone else
                self._emit(item, 1)
                continue
            formatted.append(_json_line(*item))
        if formatted:
            self._emit(
                logging.makeLogRecord(
                    {
                        "name": ACCESS_LOGGER,
                        "msg": "\n".join(formatted),
                        "levelno": logging.INFO,
                        "levelname": "INFO",
                    }
                ),
                len(formatted),
            )

    def _emit(self, record: logging.LogRecord, lines: int) -> None:
        try:
            self.target.handle(record)
        except Exception:  # a destination gone for good: the lines are lost, not the server
            self.handler.dropped += lines

    def stop(self) -> None:
        """Write what is queued (for a moment at most: the destination may be stuck)."""
        self.stopping.set()
        self.thread.join(timeout=2)
        if not self.thread.is_alive():
            with contextlib.suppress(OSError):
                self.target.close()


#: One encoder for every line (``json.dumps`` with options builds one per call).
_ENCODE = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode
_QUOTE = json.encoder.encode_basestring_ascii  # C: a JSON string, quotes included


def _json_line(stamp: float, line: dict[str, Any]) -> str:
    """``{"time": …, **line}`` as compact ASCII JSON, the same as ``json.dumps`` gives, at a
    third of its cost: the writer thread formats every line, on the server's CPU."""
    second = int(stamp)
    micros = round((stamp - second) * 1e6)  # as datetime rounds, then truncated to ms
    second, micros = (second + 1, 0) if micros >= 1_000_000 else (second, micros)
    millis = micros // 1000
    parts = [f'{{"time":"{_iso_second(second)}.{millis:03d}+00:00"']
    for key, value in line.items():
        if isinstance(value, str):
            text = _QUOTE(value)
        elif value is None:
            text = "null"
        elif type(value) is int or type(value) is float:
            text = _ENCODE(value) if value != value or value in _INFINITE else repr(value)
        else:
            text = _ENCODE(value)
        parts.append(f",{_QUOTE(key)}:{text}")
    parts.append("}")
    return "".join(parts)


_INFINITE = (float("inf"), float("-inf"))


@functools.lru_cache(maxsize=8)
def _iso_second(second: int) -> str:
    return dt.datetime.fromtimestamp(second, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


#: Lines the access log may fall behind its destination before it drops new ones.
ACCESS_LOG_BACKLOG = 10_000
#: How long the writer lets lines gather before writing them out together.
ACCESS_LOG_BATCH_SECONDS = 0.05
_access_log: _AccessLog | None = None


def configure_access_log(destination: str) -> logging.Logger:
    """Send access lines (bare JSON, one per line) to stderr, stdout, a file, or nowhere.

    Lines are written by a thread, never by the event loop: a log destination that stops
    reading (a pipe nobody drains, a full disk) must not stop the server. Past a backlog of
    :data:`ACCESS_LOG_BACKLOG` lines, new ones are dropped and counted
    (``labgraph_access_log_dropped_total``).
    """
    global _access_log
    logger = logging.getLogger(ACCESS_LOGGER)
    if _access_log is not None:
        logger.removeHandler(_access_log.handler)
        _access_log.stop()
        _access_log = None
    logger.propagate = False
    logger.setLevel(logging.INFO)
    if destination == "off":
        logger.disabled = True
        return logger
    logger.disabled = False
    target: logging.Handler
    if destination in ("stderr", "-"):
        target = logging.StreamHandler(sys.stderr)
    elif destination == "stdout":
        target = logging.StreamHandler(sys.stdout)
    else:  # a file; WatchedFileHandler reopens it after logrotate moves it
        target = logging.handlers.WatchedFileHandler(destination, encoding="utf-8")
    target.setFormatter(logging.Formatter("%(message)s"))
    _access_log = _AccessLog(target, ACCESS_LOG_BACKLOG)
    logger.addHandler(_access_log.handler)
    return logger


def flush_access_log(timeout: float = 5.0) -> None:
    """Wait (at most ``timeout`` s) until every queued access line is written (tests, shutdown)."""
    if _access_log is None:
        return
    backlog = _access_log.handler
    target = backlog.last
    deadline = time.monotonic() + timeout
    while backlog.done < target and time.monotonic() < deadline:
        time.sleep(0.01)


def access_log_dropped() -> int:
    """Access lines dropped because the destination fell behind."""
    return _access_log.handler.dropped if _access_log is not None else 0


class RuntimeCollector(Collector):
    """Metrics read from the runtime at scrape time: the release served, query outcomes."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Any]:
        runtime = self.runtime
        info = InfoMetricFamily("labgraph_release", "The release being served")
        current = runtime.current
        info.add_metric([], {"release": current.id if current else ""})
        yield info
        stats = runtime.stats
        for name, help_text, value in (
            ("labgraph_query_timeouts", "Queries stopped at their deadline", stats.timeouts),
            (
                "labgraph_query_busy_rejections",
                "Queries refused because every worker stayed busy (503)",
                stats.busy,
            ),
            ("labgraph_reloads", "Releases loaded since start", stats.reloads),
            (
                "labgraph_reload_failures",
                "Releases refused (incomplete or corrupted)",
                stats.reload_failures,
            ),
        ):
            counter = CounterMetricFamily(name, help_text)
            counter.add_metric([], value)
            yield counter
        gauge = GaugeMetricFamily("labgraph_queries_in_flight", "Queries being evaluated")
        gauge.add_metric([], stats.in_flight)
        yield gauge
        dropped = CounterMetricFamily(
            "labgraph_access_log_dropped", "Access-log lines dropped: the destination fell behind"
        )
        dropped.add_metric([], access_log_dropped())
        yield dropped
        retired = GaugeMetricFamily(
            "labgraph_retired_releases", "Previous releases still finishing requests"
        )
        retired.add_metric([], len(runtime.retired))
        yield retired


class CacheCollector(Collector):
    """Hits, misses and bytes of the answer caches, read at scrape time: the hit ratio says
    whether ``cache_bytes`` is large enough for what clients ask."""

    def __init__(self, caches: Mapping[str, Any]) -> None:
        self.caches = caches

    def collect(self) -> Iterator[Any]:
        hits = CounterMetricFamily(
            "labgraph_cache_hits", "Answers found in a cache", labels=["cache"]
        )
        misses = CounterMetricFamily(
            "labgraph_cache_misses", "Answers looked for in a cache and not found", labels=["cache"]
        )
        size = GaugeMetricFamily("labgraph_cache_bytes", "Bytes held by a cache", labels=["cache"])
        for name, cache in self.caches.items():
            hits.add_metric([name], cache.hits)
            misses.add_metric([name], cache.misses)
            size.add_metric([name], cache.size)
        yield hits
        yield misses
        yield size


class Metrics:
    """The app's own registry (so several apps can live in one process, as in tests)."""

    def __init__(self, runtime: Runtime, caches: Mapping[str, Any] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "labgraph_http_requests",
            "HTTP requests answered",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "labgraph_http_request_duration_seconds",
            "Time to answer a request, by route template",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "labgraph_rate_limited",
            "SPARQL requests refused with 429 (per-client rate)",
            registry=self.registry,
        )
        self.registry.register(RuntimeCollector(runtime))
        if caches:
            self.registry.register(CacheCollector(caches))
        # Bounded: route templates, methods and statuses are finite sets.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:  # labels() takes a lock and builds a key: once per series
            children = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def exposition(self) -> tuple[bytes, str]:
        """The Prometheus text format of every metric, and its content type."""
        return _generate_latest(self.registry), CONTENT_TYPE_LATEST


def route_template(scope: Scope) -> str:
    """The matched route's template (bounded cardinality), or a fixed label when none matched."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class Observability:
    """Outermost ASGI middleware: request id, access-log line and metrics for every request."""

    def __init__(self, app: ASGIApp, metrics: Metrics, *, max_body: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body
        self.log = logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming_id = content_type = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming_id = value
            elif name == b"content-type":
                content_type = value
        rid = request_id(incoming_id)
        scope.setdefault("state", {})["request_id"] = rid
        sent: dict[str, Any] = {"status": 500, "bytes": 0, "release": None}
        is_sparql = scope.get("path") in _SPARQL_PATHS
        body = bytearray()

        async def observed_receive() -> Message:  # keeps the start of a query body, for its hash
            message = await receive()
            if message["type"] == "http.request" and len(body) <= self.max_body:
                body.extend(message.get("body", b"")[: self.max_body + 1 - len(body)])
            return message

        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent["status"] = message["status"]
                # ASGI header names are lower case: no need to fold them here.
                raw = []
                for header in message.get("headers", ()):
                    name = header[0]
                    if name == b"x-request-id":
                        continue
                    if name == b"x-labgraph-release":
                        sent["release"] = header[1].decode("latin-1")
                    raw.append(header)
                raw.append((b"x-request-id", rid.encode("ascii")))
                message["headers"] = raw
            elif message["type"] == "http.response.body":
                sent["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, observed_receive if is_sparql else receive, observed_send)
        finally:
            elapsed = time.perf_counter() - started
            method = scope.get("method", "")
            route = route_template(scope)
            self.metrics.observe(
                route, method if method in _METHODS else "OTHER", sent["status"], elapsed
            )
            sink = _access_log
            if sink is not None and not self.log.disabled:
                line: dict[str, Any] = {
                    "request_id": rid,
                    "client": (scope.get("client") or ("", 0))[0],
                    "method": method,
                    "path": scope.get("path", ""),
                    "route": route,
                    "status": sent["status"],
                    "duration_ms": round(elapsed * 1000, 3),
                    "bytes": sent["bytes"],
                }
                if sent["release"]:
                    line["release"] = sent["release"]
                if is_sparql:
                    query = scope["state"].get(SPARQL_QUERY_STATE)  # as the endpoint read it
                    if query is not None:
                        line["query_hash"] = query_hash(query)
                    else:  # refused before the endpoint read it
                        line["query_hash"] = sparql_query_hash(
                            scope.get("query_string", b""),
                            (content_type or b"").decode("latin-1"),
                            bytes(body),
                        )
                sink.submit(line)
