"""What the server is serving right now, and how it moves to a new release without a restart.

A :class:`Published` bundles one release (or one dataset file) with its query engine. Requests take
the current one at their start and keep it to the end, so a swap never changes data under a
request in flight; the old engine is closed once nothing uses it. A release that fails to open
(incomplete, corrupted) is never loaded: the server keeps the last good one and logs why.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..iris import Minter
from ..release import Release, ReleaseError, current
from ..settings import Settings
from ..store import Engine, prepare

log = logging.getLogger("labgraph.server")


@dataclass
class Published:
    """One servable dataset: its id (used in ETags), time, engine and release files."""

    id: str
    modified: dt.datetime
    engine: Engine
    release: Release | None = None
    users: int = field(default=0)

    @property
    def etag_base(self) -> str:
        return self.id


class Runtime:
    """Holds the current :class:`Published`; reloads on SIGHUP or when ``current`` moves."""

    def __init__(self, settings: Settings, dataset: Path | None = None) -> None:
        self.settings = settings
        self.dataset = dataset
        self.minter = Minter(settings.base)
        self.current: Published | None = None
        self._lock = asyncio.Lock()
        self._retired: list[Published] = []
        self.last_error: str | None = None

    @property
    def cache_dir(self) -> Path:
        if self.dataset is not None:
            return Path(tempfile.gettempdir()) / "labgraph-stores"
        return self.settings.releases_dir / ".stores"

    async def start(self) -> None:
        loaded = await self.reload()
        if not loaded and self.current is None:
            raise RuntimeError(self.last_error or "nothing to serve")

    async def reload(self) -> bool:
        """Load the newest servable release if it differs from the current one."""
        async with self._lock:
            try:
                found = await asyncio.to_thread(self._locate)
            except (ReleaseError, OSError, ValueError) as err:
                self.last_error = str(err)
                log.error("not loading release: %s; still serving %s", err,
                          self.current.id if self.current else "nothing")
                return False
            if found is None:
                self.last_error = f"no release in {self.settings.releases_dir}"
                return False
            ident, modified, source, release = found
            if self.current is not None and self.current.id == ident:
                return False
            try:
                store_path = await asyncio.to_thread(prepare, source, self.cache_dir)
                engine = Engine(store_path, size=self.settings.max_concurrent_queries,
                                timeout=self.settings.query_timeout,
                                queue_wait=self.settings.queue_wait,
                                max_bytes=self.settings.max_result_bytes)
                await engine.pool.start()
            except (OSError, ValueError) as err:
                self.last_error = f"{source}: {err}"
                log.error("not loading %s: %s; still serving %s", source, err,
                          self.current.id if self.current else "nothing")
                return False
            previous, self.current = self.current, Published(ident, modified, engine, release)
            log.info("serving %s (%d quads)", ident, engine.count())
            if previous is not None:
                self._retired.append(previous)
            await self._close_retired()
            return True

    def _locate(self) -> tuple[str, dt.datetime, Path, Release | None] | None:
        if self.dataset is not None:
            data = self.dataset.read_bytes()
            ident = hashlib.sha256(data).hexdigest()[:16]
            modified = dt.datetime.fromtimestamp(self.dataset.stat().st_mtime, dt.UTC)
            return ident, modified.replace(microsecond=0), self.dataset, None
        release = current(self.settings.releases_dir)
        if release is None:
            return None
        built = dt.datetime.fromisoformat(str(release.manifest["built"]).replace("Z", "+00:00"))
        return release.id, built, release.file("labgraph.nq"), release

    async def _close_retired(self) -> None:
        still = []
        for old in self._retired:
            if old.users == 0 and old.engine.pool.in_flight == 0:
                await old.engine.pool.close()
            else:
                still.append(old)
        self._retired = still

    @contextlib.asynccontextmanager
    async def use(self):  # type: ignore[no-untyped-def]
        """The current release for the length of one request."""
        published = self.current
        if published is None:
            raise RuntimeError("not ready")
        published.users += 1
        try:
            yield published
        finally:
            published.users -= 1
            if self._retired and published in self._retired:
                await self._close_retired()

    async def close(self) -> None:
        for published in [*self._retired, *([self.current] if self.current else [])]:
            await published.engine.pool.close()
        self._retired = []
        self.current = None
