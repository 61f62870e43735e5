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
import multiprocessing as mp
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from . import formats

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
        kind, name = "graph", job.graph_format
        fmt = formats.by_extension(name or "", formats.GRAPH_FORMATS) if name else None
        target: Any = fmt.rdf if fmt else None
    else:
        kind = "boolean" if isinstance(result, ox.QueryBoolean) else "solutions"
        name = job.results_format
        fmt = formats.by_extension(name or "", formats.RESULTS_FORMATS) if name else None
        target = fmt.results if fmt else None
        if kind == "boolean" and fmt is not None and fmt.name in ("csv", "tsv"):
            target = None  # CSV/TSV have no boolean form
    if target is None or fmt is None:
        raise NotAcceptable(kind)
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


def _worker_main(conn: Connection, store_path: str, max_bytes: int) -> None:
    """A query worker: one read-only store handle, one query at a time, until told to stop."""
    store = ox.Store.read_only(store_path)
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

    async def call(self, job: Job) -> Answer:
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
        if status == "ok":
            return payload
        raise payload

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.process.kill()
            self.process.join(timeout=5)
        self.conn.close()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.send(None)
            self.process.join(timeout=2)
        if self.process.is_alive():
            self.kill()
        else:
            self.conn.close()


class QueryPool:
    """Worker processes over one store; bounded concurrency, enforced deadlines."""

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
        self.timeouts = 0
        self.in_flight = 0

    def _spawn(self) -> _Worker:
        worker = _Worker(self._ctx, self.store_path, self.max_bytes)
        self._all.add(worker)
        return worker

    async def start(self) -> None:
        self._idle = asyncio.Queue()
        workers = await asyncio.to_thread(lambda: [self._spawn() for _ in range(self.size)])
        for w in workers:
            self._idle.put_nowait(w)

    async def run(self, job: Job) -> Answer:
        assert self._idle is not None, "start() the pool first"
        try:
            worker = await asyncio.wait_for(self._idle.get(), timeout=self.queue_wait)
        except TimeoutError:
            raise Busy() from None
        self.in_flight += 1
        try:
            return await asyncio.wait_for(worker.call(job), timeout=self.timeout)
        except TimeoutError:
            self.timeouts += 1
            self._all.discard(worker)
            worker.kill()
            worker = await asyncio.to_thread(self._spawn)
            raise QueryTimeout() from None
        except (EOFError, OSError, BrokenPipeError):
            self._all.discard(worker)
            worker.kill()
            worker = await asyncio.to_thread(self._spawn)
            raise QueryError("the query worker stopped unexpectedly; try again") from None
        finally:
            self.in_flight -= 1
            self._idle.put_nowait(worker)

    async def close(self) -> None:
        workers = list(self._all)
        self._all.clear()
        await asyncio.to_thread(lambda: [w.stop() for w in workers])


class Engine:
    """One release's store: the pool for public queries, a local handle for trusted ones."""

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

    def triples(self, query: str) -> list[ox.Triple]:
        """Triples of a trusted CONSTRUCT."""
        return list(self.local.query(query))

    def count(self) -> int:
        return len(self.local)

    def graphs(self) -> Sequence[str]:
        return sorted(g.value for g in self.local.named_graphs() if isinstance(g, ox.NamedNode))
