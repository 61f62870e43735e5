"""The query engine over one release: pyoxigraph on disk, queried with deadlines that really stop.

pyoxigraph has no query timeout (oxigraph issue #1926), and a thread cannot be killed. So every
public SPARQL query runs in a pool of worker processes that open the same on-disk store read-only;
a query past its deadline has its process killed (its CPU freed at once) and a fresh worker takes
its place. Trusted, bounded queries (documents, pages) run in the server process on its own
read-only handle. The on-disk store of a release is made once by bulk-loading its N-Quads into a
cache folder beside the releases (written under a temporary name, then renamed: never half-made).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import logging
import multiprocessing as mp
import os
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from . import formats

log = logging.getLogger("labgraph.store")

_FORMATS_BY_EXTENSION = {
    "nq": ox.RdfFormat.N_QUADS,
    "trig": ox.RdfFormat.TRIG,
    "ttl": ox.RdfFormat.TURTLE,
    "nt": ox.RdfFormat.N_TRIPLES,
    "jsonld": ox.RdfFormat.JSON_LD,
    "rdf": ox.RdfFormat.RDF_XML,
}


class QueryError(Exception):
    """A query the engine refused (syntax, unsupported feature): the client's to fix (400)."""


class QueryTimeout(Exception):
    """The query ran past its deadline and was stopped."""


class Busy(Exception):
    """Every query worker stayed busy past the queue wait."""


class ResultTooLarge(Exception):
    """The serialised result grew past the configured cap."""


class NotAcceptable(Exception):
    """The result kind (solutions, boolean, graph) has no format the client accepts."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def prepare(source: Path, cache_dir: Path) -> Path:
    """An on-disk store holding ``source`` (an RDF file), made once and reused.

    The folder is named after the file's digest, so a changed file gets a new store; it is built
    under a temporary name and renamed, so a crash never leaves a half-loaded store in use.
    """
    fmt = _FORMATS_BY_EXTENSION.get(source.suffix.lstrip(".").lower())
    if fmt is None:
        raise ValueError(
            f"{source}: unknown RDF file extension (use .nq, .trig, .ttl, .nt, .jsonld or .rdf)"
        )
    digest = hashlib.sha256()
    with open(source, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    target = cache_dir / f"{source.stem}-{digest.hexdigest()[:16]}.oxigraph"
    if (target / "READY").exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f".{target.name}.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    store = ox.Store(str(tmp))
    store.bulk_load(path=str(source), format=fmt)
    store.flush()
    store.optimize()
    del store
    (tmp / "READY").write_text("loaded\n")
    try:
        os.rename(tmp, target)
    except OSError:  # another process made it meanwhile: use theirs
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@dataclass(frozen=True)
class Job:
    """A query to run, with the formats the client accepts for each kind of result."""

    query: str
    default_graphs: tuple[str, ...] = ()
    named_graphs: tuple[str, ...] = ()
    results_format: str | None = "json"
    graph_format: str | None = "turtle"
    base_iri: str | None = None


@dataclass(frozen=True)
class Answer:
    """A serialised result: its format name and bytes."""

    kind: str  # solutions | boolean | graph
    format: str
    body: bytes


class _CappedBuffer(io.RawIOBase):
    """A write target that refuses to grow past ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, chunk: Any) -> int:
        self.data += chunk
        if len(self.data) > self.limit:
            raise ResultTooLarge(self.limit)
        return len(chunk)


def result_format(kind: str, job: Job) -> tuple[formats.Format, Any]:
    """The format (and pyoxigraph's name for it) a result of ``kind`` is written in for ``job``.

    Raises :class:`NotAcceptable` when the client accepts no format for that kind of result.
    """
    if kind == "graph":
        name = job.graph_format
        fmt = formats.by_extension(name or "", formats.GRAPH_FORMATS) if name else None
        target: Any = fmt.rdf if fmt else None
    else:
        name = job.results_format
        fmt = formats.by_extension(name or "", formats.RESULTS_FORMATS) if name else None
        target = fmt.results if fmt else None
        if kind == "boolean" and fmt is not None and fmt.name in ("csv", "tsv"):
            target = None  # CSV/TSV have no boolean form
    if target is None or fmt is None:
        raise NotAcceptable(kind)
    return fmt, target


def execute(store: ox.Store, job: Job, max_bytes: int) -> Answer:
    """Run one query and serialise its result; raises the exceptions above."""
    kwargs: dict[str, Any] = {"base_iri": job.base_iri}
    if job.default_graphs:
        kwargs["default_graph"] = [ox.NamedNode(g) for g in job.default_graphs]
    if job.named_graphs:
        kwargs["named_graphs"] = [ox.NamedNode(g) for g in job.named_graphs]
    elif job.default_graphs:
        kwargs["named_graphs"] = []
    try:
        result = store.query(job.query, **kwargs)
    except (SyntaxError, ValueError) as err:
        raise QueryError(str(err)) from None
    if isinstance(result, ox.QueryTriples):
        kind = "graph"
    else:
        kind = "boolean" if isinstance(result, ox.QueryBoolean) else "solutions"
    fmt, target = result_format(kind, job)
    buffer = _CappedBuffer(max_bytes)
    try:
        result.serialize(buffer, format=target)
    except ResultTooLarge:
        raise
    except OSError as err:  # evaluation errors surface while the iterator is consumed
        if isinstance(err.__context__, ResultTooLarge) or "ResultTooLarge" in repr(err):
            raise ResultTooLarge(max_bytes) from None
        raise QueryError(str(err)) from None
    return Answer(kind, fmt.name, bytes(buffer.data))


#: Seconds a new worker may take to start and open the store before it is given up.
WORKER_START_TIMEOUT = 60.0


def _worker_main(conn: Connection, store_path: str, max_bytes: int) -> None:
    """A query worker: one read-only store handle, one query at a time, until told to stop.

    It says "ready" once the store is open, so that start-up (imports, opening the store) is
    never counted in a query's deadline.
    """
    try:
        store = ox.Store.read_only(store_path)
    except Exception as err:  # reported to the pool, which refuses to start
        conn.send(("failed", f"cannot open the store {store_path}: {err}"))
        return
    conn.send(("ready", None))
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        try:
            conn.send(("ok", execute(store, job, max_bytes)))
        except (QueryError, NotAcceptable, ResultTooLarge) as err:
            conn.send(("error", err))
        except Exception as err:  # an engine error is the server's, not the client's
            conn.send(("error", QueryError(f"query failed: {err}")))


class _Worker:
    """One query process and the pipe to it; it answers one job at a time, in order."""

    def __init__(self, ctx: Any, store_path: Path, max_bytes: int) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=_worker_main,
            args=(child, str(store_path), max_bytes),
            daemon=True,
            name="labgraph-query",
        )
        self.process.start()
        child.close()

    def wait_ready(self, timeout: float = WORKER_START_TIMEOUT) -> None:
        """Block until the worker has opened the store; OSError (and the worker killed) if not."""
        try:
            if not self.conn.poll(timeout):
                raise OSError(f"the query worker did not start within {timeout:g} s")
            status, message = self.conn.recv()
        except EOFError:
            status, message = "failed", "the query worker exited while starting"
        except OSError:
            self.kill()
            self.reap()
            raise
        if status != "ready":
            self.kill()
            self.reap()
            raise OSError(message)

    async def call(self, job: Job) -> tuple[str, Any]:
        """Send ``job`` and wait, without blocking the event loop, for its (status, payload)."""
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        fd = self.conn.fileno()
        loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
        try:
            self.conn.send(job)
            await ready
        finally:
            loop.remove_reader(fd)
        status, payload = self.conn.recv()
        return status, payload

    def kill(self) -> None:
        """SIGKILL: the CPU is freed at once; the process is reaped later by :meth:`reap`."""
        with contextlib.suppress(Exception):
            self.process.kill()

    def reap(self) -> None:
        """Wait for a killed process to be gone and release its pipe (blocking: use a thread)."""
        with contextlib.suppress(Exception):
            self.process.join(timeout=5)
        with contextlib.suppress(Exception):
            self.conn.close()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.send(None)
            self.process.join(timeout=2)
        if self.process.is_alive():
            self.kill()
        self.reap()


class QueryPool:
    """Worker processes over one store; bounded concurrency, enforced deadlines.

    A worker goes back to the idle queue only after a complete exchange. One whose exchange was cut
    short (deadline, crash, or the request cancelled because its client went away) may still be
    computing, or hold an unread answer that would be handed to the next request: it is killed and
    a fresh one spawned in a thread, so neither the 503 nor other requests wait for the spawn.
    """

    def __init__(
        self, store_path: Path, *, size: int, timeout: float, queue_wait: float, max_bytes: int
    ) -> None:
        self.store_path = store_path
        self.size = size
        self.timeout = timeout
        self.queue_wait = queue_wait
        self.max_bytes = max_bytes
        self._ctx = mp.get_context("forkserver")
        self._idle: asyncio.Queue[_Worker] | None = None
        self._all: set[_Worker] = set()
        self._respawning: set[asyncio.Future[_Worker]] = set()
        self._closed = False
        self.timeouts = 0
        self.in_flight = 0

    def _spawn(self) -> _Worker:
        """A new worker, ready to query (blocking: call it from a thread)."""
        worker = _Worker(self._ctx, self.store_path, self.max_bytes)
        worker.wait_ready()
        return worker

    async def start(self) -> None:
        """Start the workers together and wait until each has its store open."""
        self._idle = asyncio.Queue()

        def spawn_all() -> list[_Worker]:
            workers = [
                _Worker(self._ctx, self.store_path, self.max_bytes) for _ in range(self.size)
            ]
            try:
                for worker in workers:
                    worker.wait_ready()
            except OSError:
                for worker in workers:
                    worker.stop()
                raise
            return workers

        workers = await asyncio.to_thread(spawn_all)
        for w in workers:
            self._all.add(w)
            self._idle.put_nowait(w)

    async def _acquire(self) -> _Worker:
        assert self._idle is not None, "start() the pool first"
        try:
            return self._idle.get_nowait()
        except asyncio.QueueEmpty:
            if self.queue_wait <= 0:
                raise Busy() from None
        try:
            return await asyncio.wait_for(self._idle.get(), timeout=self.queue_wait)
        except TimeoutError:
            raise Busy() from None

    def _replace(self, worker: _Worker) -> None:
        """Kill ``worker`` now; reap it and put a fresh worker in the pool from a thread."""
        self._all.discard(worker)
        worker.kill()

        def respawn() -> _Worker:
            worker.reap()
            return self._spawn()

        future = asyncio.get_running_loop().run_in_executor(None, respawn)
        self._respawning.add(future)
        future.add_done_callback(self._respawned)

    def _respawned(self, future: asyncio.Future[_Worker]) -> None:
        self._respawning.discard(future)
        if future.cancelled() or future.exception() is not None:
            log.error("could not start a query worker: %s", future.exception())
            return
        worker = future.result()
        if self._closed or self._idle is None:
            threading.Thread(target=worker.stop, daemon=True).start()
            return
        self._all.add(worker)
        self._idle.put_nowait(worker)

    async def run(self, job: Job) -> Answer:
        """Run ``job`` on an idle worker (503 ``Busy`` past the queue wait) within the deadline."""
        worker = await self._acquire()
        idle = self._idle
        assert idle is not None
        self.in_flight += 1
        healthy = False
        try:
            try:
                status, payload = await asyncio.wait_for(worker.call(job), timeout=self.timeout)
            except TimeoutError:
                self.timeouts += 1
                raise QueryTimeout() from None
            except (EOFError, OSError):
                raise QueryError("the query worker stopped unexpectedly; try again") from None
            healthy = True
        finally:
            self.in_flight -= 1
            if healthy:
                idle.put_nowait(worker)
            else:
                self._replace(worker)
        if status == "ok":
            return payload
        raise payload

    async def close(self) -> None:
        self._closed = True
        workers = list(self._all)
        self._all.clear()
        await asyncio.to_thread(lambda: [w.stop() for w in workers])


class Engine:
    """One release's store: the pool for public queries, a local handle for trusted ones."""

    #: Trusted helpers (select, triples, exists) answer in-process without blocking for long.
    blocking = False

    def __init__(
        self, store_path: Path, *, size: int, timeout: float, queue_wait: float, max_bytes: int
    ) -> None:
        self.store_path = store_path
        self.local = ox.Store.read_only(str(store_path))
        self.pool = QueryPool(
            store_path, size=size, timeout=timeout, queue_wait=queue_wait, max_bytes=max_bytes
        )

    def select(self, query: str, **kwargs: Any) -> list[dict[str, Any]]:
        """Rows of a trusted SELECT, as {variable: term} dicts."""
        solutions = self.local.query(query, **kwargs)
        names = [v.value for v in solutions.variables]
        return [{n: row[n] for n in names} for row in solutions]

    def triples(self, query: str, **kwargs: Any) -> list[ox.Triple]:
        """Triples of a trusted CONSTRUCT."""
        return list(self.local.query(query, **kwargs))

    def exists(self, iri: str) -> bool:
        """Whether the graph says anything about ``iri`` (as a subject)."""
        node = ox.NamedNode(iri)
        return any(True for _ in self.local.quads_for_pattern(node, None, None))

    async def start(self) -> None:
        await self.pool.start()

    async def close(self) -> None:
        await self.pool.close()

    async def run(self, job: Job) -> Answer:
        """A public query, with its deadline and the concurrency bound."""
        return await self.pool.run(job)

    @property
    def in_flight(self) -> int:
        return self.pool.in_flight

    def count(self) -> int:
        return len(self.local)

    def graphs(self) -> Sequence[str]:
        return sorted(g.value for g in self.local.named_graphs() if isinstance(g, ox.NamedNode))
