"""What the server is serving right now, and how it moves to a new release without a restart.

A :class:`Published` bundles one release (or one dataset file) with its query engine. Requests take
the current one at their start and keep it to the end, so a swap never changes data under a
request in flight; the old engine's workers are stopped once no request uses it, in the
background. A release is checked in full (every file's size *and* sha256) before it is loaded, so
a half-written or corrupted one is never served: the server keeps the last good one and logs why,
once per broken release rather than at every poll. Everything slow (reading, hashing, loading the
store, starting workers) runs in threads, so a reload never stalls the requests being answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import tempfile
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..iris import Minter
from ..release import CURRENT, Release, ReleaseError, list_releases, open_release
from ..remote import RemoteEngine, StoreUnavailable, read_pointer
from ..settings import Settings
from ..store import Answer, Busy, Engine, Job, QueryError, QueryPool, QueryTimeout, prepare

log = logging.getLogger("labgraph.server")
GRAPH_FILE = "labgraph.nq"
WARM_UP = "ASK { }"


@dataclass
class Published:
    """One servable dataset: its id (used in ETags), time, engine and release files."""

    id: str
    modified: dt.datetime
    engine: Engine | RemoteEngine
    release: Release | None = None
    users: int = field(default=0)

    @property
    def etag_base(self) -> str:
        return self.id

    @property
    def busy(self) -> bool:
        return self.users > 0 or self.engine.in_flight > 0


@dataclass
class Stats:
    """Counters the metrics endpoint reads; they outlive the engines they came from."""

    timeouts: int = 0
    busy: int = 0
    reloads: int = 0
    reload_failures: int = 0
    in_flight: int = 0


async def _counted(stats: Stats, query: Coroutine[Any, Any, Answer]) -> Answer:
    """Await a query, counting it in flight, and its deadline hits and busy refusals."""
    stats.in_flight += 1
    try:
        return await query
    except QueryTimeout:
        stats.timeouts += 1
        raise
    except Busy:
        stats.busy += 1
        raise
    finally:
        stats.in_flight -= 1


class _CountingPool(QueryPool):
    """The query pool, counting deadlines hit and busy refusals for the metrics."""

    def __init__(self, store_path: Path, *, stats: Stats, **kwargs: Any) -> None:
        super().__init__(store_path, **kwargs)
        self.stats = stats

    async def run(self, job: Job) -> Answer:
        return await _counted(self.stats, super().run(job))


class _ObservedEngine(Engine):
    def __init__(self, store_path: Path, *, stats: Stats, **kwargs: Any) -> None:
        super().__init__(store_path, **kwargs)
        self.pool = _CountingPool(store_path, stats=stats, **kwargs)


class _ObservedRemote(RemoteEngine):
    """A remote store's engine, counting deadlines hit and busy refusals like the pool does."""

    def __init__(self, store_url: str, *, stats: Stats, **kwargs: Any) -> None:
        super().__init__(store_url, **kwargs)
        self.stats = stats

    async def run(self, job: Job) -> Answer:
        return await _counted(self.stats, super().run(job))


@dataclass(frozen=True)
class _Candidate:
    ident: str
    modified: dt.datetime
    source: Path | None  # None: the release is in a remote store
    release: Release | None


class _Refused(Exception):
    """A candidate that must not be served; ``key`` identifies it so it is reported once."""

    def __init__(self, key: tuple[Any, ...], message: str) -> None:
        super().__init__(message)
        self.key = key


class Runtime:
    """Holds the current :class:`Published`; reloads on SIGHUP or when ``current`` moves."""

    def __init__(self, settings: Settings, dataset: Path | None = None) -> None:
        self.settings = settings
        self.dataset = dataset
        self.minter = Minter(settings.base)
        self.current: Published | None = None
        self.stats = Stats()
        self.last_error: str | None = None
        self._lock = asyncio.Lock()
        self._retired: list[Published] = []
        self._closing: set[asyncio.Task[None]] = set()
        self._refused: tuple[Any, ...] | None = None
        self._dataset_stat: tuple[int, int] | None = None

    @property
    def retired(self) -> list[Published]:
        """Previous releases whose requests are still running."""
        return list(self._retired)

    @property
    def cache_dir(self) -> Path:
        if self.dataset is not None:
            return Path(tempfile.gettempdir()) / "labgraph-stores"
        return self.settings.releases_dir / ".stores"

    async def start(self) -> None:
        """Load what ``current`` points to; if it is broken, the newest complete release."""
        await self.reload(force=True)
        if self.current is None and self.dataset is None:
            fallback = await asyncio.to_thread(self._newest_complete)
            if fallback is not None:
                log.warning(
                    "serving %s, the newest complete release, until current is fixed",
                    fallback.ident,
                )
                async with self._lock:
                    await self._load(fallback)
        if self.current is None:
            raise RuntimeError(self.last_error or "nothing to serve")

    async def reload(self, *, force: bool = False) -> bool:
        """Load the release ``current`` points to if it is new and complete; True if it was.

        A refused release is logged once; ``force`` (SIGHUP, start) checks and logs it again.
        """
        async with self._lock:
            try:
                candidate = await asyncio.to_thread(self._locate, force)
            except _Refused as err:
                self._refuse(err, force)
                return False
            if candidate is None:
                return False
            return await self._load(candidate)

    def _refuse(self, err: _Refused, force: bool) -> None:
        if force or err.key != self._refused:
            self.stats.reload_failures += 1
            log.error(
                "not loading %s; still serving %s",
                err,
                self.current.id if self.current else "nothing",
            )
        self._refused = err.key
        self.last_error = str(err)

    async def _load(self, candidate: _Candidate) -> bool:
        engine: Engine | RemoteEngine | None = None
        try:
            if candidate.source is None:
                engine = self._remote_engine(candidate.ident)
                await engine.start()
            else:
                store_path = await asyncio.to_thread(prepare, candidate.source, self.cache_dir)
                engine = await asyncio.to_thread(self._engine, store_path)
                await engine.start()
                await self._warm_up(engine)
        except (
            OSError,
            ValueError,
            SyntaxError,
            QueryError,
            QueryTimeout,
            Busy,
            StoreUnavailable,
        ) as err:
            if engine is not None:
                await engine.close()
            self._refuse(_Refused(("load", candidate.ident), f"{candidate.source}: {err}"), False)
            return False
        previous = self.current
        self.current = Published(candidate.ident, candidate.modified, engine, candidate.release)
        self._refused = None
        self.last_error = None
        self.stats.reloads += 1
        log.info(
            "serving %s%s", candidate.ident, f" (was {previous.id})" if previous is not None else ""
        )
        if previous is not None:
            self._retired.append(previous)
            self._close_idle()
        return True

    @staticmethod
    async def _warm_up(engine: Engine) -> None:
        """One trivial query per worker before the swap: the first users of a new release
        must not wait for its workers to start (imports, opening the store)."""
        await asyncio.gather(*(engine.pool.run(Job(WARM_UP)) for _ in range(engine.pool.size)))

    def _remote_engine(self, release_id: str) -> RemoteEngine:
        settings = self.settings
        assert settings.store_url is not None
        return _ObservedRemote(
            settings.store_url,
            stats=self.stats,
            base=settings.base,
            release_id=release_id,
            timeout=settings.query_timeout,
            max_bytes=settings.max_result_bytes,
            max_concurrent=settings.max_concurrent_queries,
            queue_wait=settings.queue_wait,
            query_path=settings.store_query_path,
        )

    def _engine(self, store_path: Path) -> Engine:
        settings = self.settings
        return _ObservedEngine(
            store_path,
            stats=self.stats,
            size=settings.max_concurrent_queries,
            timeout=settings.query_timeout,
            queue_wait=settings.queue_wait,
            max_bytes=settings.max_result_bytes,
        )

    def _locate(self, force: bool) -> _Candidate | None:
        """The candidate to load, None when nothing changed; raises :class:`_Refused`."""
        if self.dataset is not None:
            return self._locate_dataset(force)
        if self.settings.store_url is not None:
            return self._locate_remote(force)
        link = self.settings.releases_dir / CURRENT
        if not link.is_symlink() and not link.exists():
            if self.current is None:
                raise _Refused(("missing",), f"no release in {self.settings.releases_dir}")
            return None
        path = link.resolve()
        current = self.current
        if current is not None and current.release is not None and current.release.path == path:
            return None
        try:
            stamp = (path / "manifest.json").stat().st_mtime_ns
        except OSError:
            stamp = None
        key = ("release", str(path), stamp)
        if key == self._refused and not force:
            return None
        return self._check(path, key)

    def _check(self, path: Path, key: tuple[Any, ...]) -> _Candidate:
        try:
            release = open_release(path, verify=True)
            if GRAPH_FILE not in release.manifest["files"]:
                raise ReleaseError(f"{path}: no {GRAPH_FILE} in the manifest")
            built = dt.datetime.fromisoformat(str(release.manifest["built"]).replace("Z", "+00:00"))
        except (ReleaseError, KeyError, ValueError, OSError) as err:
            raise _Refused(key, str(err)) from None
        return _Candidate(release.id, built, release.file(GRAPH_FILE), release)

    def _locate_remote(self, force: bool) -> _Candidate | None:
        """The release the remote store's pointer graph names (one small query per poll)."""
        settings = self.settings
        assert settings.store_url is not None
        try:
            pointer = read_pointer(
                settings.store_url, settings.base, query_path=settings.store_query_path
            )
        except (StoreUnavailable, OSError, ValueError) as err:
            raise _Refused(("store", str(err)), f"store {settings.store_url}: {err}") from None
        if pointer is None:
            raise _Refused(
                ("store", "empty"),
                f"nothing published in {settings.store_url} "
                f"for {settings.base}: run labgraph publish --store first",
            )
        if self.current is not None and self.current.id == pointer.release_id:
            return None
        release = None
        folder = settings.releases_dir / pointer.release_id
        if folder.is_dir():  # the release's files (dumps, catalogue) when this server has them
            try:
                release = open_release(folder)
            except ReleaseError:
                release = None
        modified = pointer.built or pointer.published or dt.datetime.now(dt.UTC)
        return _Candidate(pointer.release_id, modified.replace(microsecond=0), None, release)

    def _locate_dataset(self, force: bool) -> _Candidate | None:
        assert self.dataset is not None
        try:
            info = self.dataset.stat()
        except OSError as err:
            raise _Refused(("dataset", None), f"{self.dataset}: {err}") from None
        stat = (info.st_mtime_ns, info.st_size)
        if stat == self._dataset_stat and not force:
            return None  # unchanged: do not re-read and re-hash a large file at every poll
        self._dataset_stat = stat
        digest = hashlib.sha256()
        with open(self.dataset, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        ident = digest.hexdigest()[:16]
        if self.current is not None and self.current.id == ident:
            return None
        modified = dt.datetime.fromtimestamp(info.st_mtime, dt.UTC).replace(microsecond=0)
        return _Candidate(ident, modified, self.dataset, None)

    def _newest_complete(self) -> _Candidate | None:
        for release in reversed(list_releases(self.settings.releases_dir)):
            try:
                return self._check(release.path, ("fallback", str(release.path)))
            except _Refused as err:
                log.error("not loading %s", err)
        return None

    def _close_idle(self) -> None:
        """Stop the workers of retired releases no request uses any more (in the background)."""
        idle = [p for p in self._retired if not p.busy]
        for published in idle:
            self._retired.remove(published)  # before any await: never closed twice
            task = asyncio.get_running_loop().create_task(self._close(published))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def _close(self, published: Published) -> None:
        try:
            await published.engine.close()
            log.info("stopped the query workers of %s", published.id)
        except Exception:  # closing must never take the server down
            log.exception("could not stop the query workers of %s", published.id)

    async def drain(self) -> None:
        """Wait until the retired engines being closed are closed (tests, shutdown)."""
        while self._closing:
            await asyncio.gather(*list(self._closing), return_exceptions=True)

    @contextlib.asynccontextmanager
    async def use(self) -> AsyncIterator[Published]:
        """The current release for the length of one request."""
        published = self.current
        if published is None:
            raise RuntimeError("not ready")
        published.users += 1
        try:
            yield published
        finally:
            published.users -= 1
            if published in self._retired:
                self._close_idle()

    async def close(self) -> None:
        """Stop every engine (server shutdown)."""
        everything = [*self._retired, *([self.current] if self.current else [])]
        self._retired = []
        self.current = None
        for published in everything:
            await self._close(published)
        await self.drain()
