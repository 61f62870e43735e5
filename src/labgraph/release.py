"""Releases: immutable folders of dumps, switched into service atomically.

``releases/<id>/`` is written under a temporary name, flushed to disk, renamed, and only then is
``releases/current`` (a symlink) replaced by a rename, so a crash or a ``kill -9`` at any point
leaves the previous ``current`` intact and usable. A release is complete when its
``manifest.json`` exists and every file it lists has the announced size (and, on demand, digest).
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shutil
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
CURRENT = "current"
STAGING_PREFIX = ".staging-"
#: Dump file stem of each record type ("labs.ttl"); the whole graph is "labgraph.ttl".
DUMP_NAMES = {
    "lab": "labs",
    "institution": "institutions",
    "project": "projects",
    "event": "events",
    "figure": "figures",
    "source": "sources",
}


class ReleaseError(Exception):
    """A release folder that is missing, incomplete or corrupted."""


@dataclass(frozen=True)
class Release:
    """A complete release on disk, described by its manifest."""

    path: Path
    manifest: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.manifest["id"])

    def file(self, name: str) -> Path:
        if name not in self.manifest["files"]:
            raise KeyError(name)
        return self.path / name

    def sha256(self, name: str) -> str:
        return str(self.manifest["files"][name]["sha256"])


def _gzipper() -> Any:
    """Deterministic gzip (no timestamp), so identical dumps have identical .gz copies.

    Its output, for any split of the input, equals ``gzip.compress(data, 6, mtime=0)``.
    """
    return zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: gzip header with mtime 0


class Sink:
    """Bytes streamed to one or more release files (same content) and one shared .gz copy.

    Sizes and SHA-256 digests are computed as the bytes go by, and the copy is compressed once
    however many names share the content (``labgraph.nt`` and ``labgraph.nq``), so a dump never
    has to be held in memory. Hashing, compressing and writing happen on a thread of their own,
    a megabyte at a time and in order (zlib and hashlib release the GIL on such buffers): the
    thread that produces the bytes — Python serialising a dump — is not slowed by them.
    """

    BUFFER = 1 << 20
    QUEUED = 4  # buffers waiting for the writer thread at most: memory stays bounded

    def __init__(self, targets: list[Path], gz_targets: list[Path]) -> None:
        self._files = [open(t, "wb") for t in targets]  # noqa: SIM115
        self._gz_files = [open(t, "wb") for t in gz_targets]  # noqa: SIM115
        self._pending: list[bytes] = []
        self._pending_size = 0
        self.size = 0
        self.gz_size = 0
        self._sha = hashlib.sha256()
        self._gz_sha = hashlib.sha256()
        self._gz = _gzipper() if gz_targets else None
        self._queue: queue.Queue[bytes | None] = queue.Queue(self.QUEUED)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="labgraph-sink", daemon=True)
        self._thread.start()

    def write(self, data: bytes) -> int:
        self._pending.append(bytes(data))
        self._pending_size += len(data)
        if self._pending_size >= self.BUFFER:
            self._flush()
        return len(data)

    def _flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending, self._pending_size = [], 0
        if self._error is not None:
            raise self._error
        self._queue.put(data)

    def _drain(self) -> None:
        while (data := self._queue.get()) is not None:
            if self._error is not None:
                continue  # keep taking buffers so that the producer never blocks
            try:
                self._consume(data)
            except BaseException as err:  # re-raised in the producer's thread
                self._error = err

    def _consume(self, data: bytes) -> None:
        self.size += len(data)
        self._sha.update(data)
        for fh in self._files:
            fh.write(data)
        if self._gz is not None:
            self._write_gz(self._gz.compress(data))

    def _write_gz(self, packed: bytes) -> None:
        if packed:
            self.gz_size += len(packed)
            self._gz_sha.update(packed)
            for fh in self._gz_files:
                fh.write(packed)

    def _join(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def finish(self) -> tuple[tuple[int, str], tuple[int, str] | None]:
        """Flush everything to disk; (bytes, sha256) of the content and of its .gz copy."""
        self._flush()
        self._join()
        if self._error is not None:
            raise self._error
        if self._gz is not None:
            self._write_gz(self._gz.flush())
        for fh in (*self._files, *self._gz_files):
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
        gz = (self.gz_size, self._gz_sha.hexdigest()) if self._gz is not None else None
        return (self.size, self._sha.hexdigest()), gz

    def close(self) -> None:
        self._join()
        for fh in (*self._files, *self._gz_files):
            fh.close()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Staging:
    """A release being written: add files, then :meth:`commit`. Nothing is visible before."""

    def __init__(self, releases_dir: Path, release_id: str) -> None:
        self.releases_dir = releases_dir
        self.id = release_id
        self.path = releases_dir / f"{STAGING_PREFIX}{release_id}-{os.getpid()}"
        self.path.mkdir(parents=True)
        self.files: dict[str, dict[str, Any]] = {}

    def add(self, name: str, data: bytes, media_type: str, *, gzip_copy: bool = False) -> None:
        """Write one file (and its deterministic .gz copy); its digest goes to the manifest."""
        with self.open([(name, media_type)], gzip_copy=gzip_copy) as sink:
            sink.write(data)

    @contextmanager
    def open(self, names: list[tuple[str, str]], *, gzip_copy: bool = False) -> Iterator[Sink]:
        """Files written as a stream: every (name, media type) gets the bytes written to the sink.

        With ``gzip_copy`` each also gets a deterministic ``.gz`` copy, compressed once for all.
        Entries reach the manifest only when the block ends without error.
        """
        for name, _ in names:
            if "/" in name or name.startswith(".") or name == MANIFEST:
                raise ValueError(f"invalid release file name {name!r}")
        sink = Sink(
            [self.path / name for name, _ in names],
            [self.path / f"{name}.gz" for name, _ in names] if gzip_copy else [],
        )
        try:
            yield sink
            plain, packed = sink.finish()
        except BaseException:
            sink.close()
            raise
        for name, media_type in names:
            self.files[name] = {"bytes": plain[0], "sha256": plain[1], "media_type": media_type}
            if packed is not None:
                self.files[f"{name}.gz"] = {
                    "bytes": packed[0],
                    "sha256": packed[1],
                    "media_type": "application/gzip",
                    "compressed_media_type": media_type,
                }

    def commit(self, manifest: dict[str, Any], *, switch: bool = True) -> Release:
        """Write the manifest, move the folder into place, and switch ``current`` to it."""
        full = {**manifest, "id": self.id, "files": dict(sorted(self.files.items()))}
        data = (json.dumps(full, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode()
        with open(self.path / MANIFEST, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        _fsync_dir(self.path)
        final = self.releases_dir / self.id
        if final.exists():  # same id twice (same second, same data): keep the first, identical
            shutil.rmtree(self.path)
        else:
            os.rename(self.path, final)
        _fsync_dir(self.releases_dir)
        if switch:
            switch_current(self.releases_dir, self.id)
        return open_release(final)

    def abort(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


@contextmanager
def staging(releases_dir: Path, release_id: str) -> Iterator[Staging]:
    """A staging folder removed if anything fails before :meth:`Staging.commit`."""
    releases_dir.mkdir(parents=True, exist_ok=True)
    stage = Staging(releases_dir, release_id)
    try:
        yield stage
    except BaseException:
        stage.abort()
        raise


def switch_current(releases_dir: Path, release_id: str) -> None:
    """Point ``current`` at a complete release with one atomic rename."""
    open_release(releases_dir / release_id)  # refuse to switch to anything incomplete
    tmp = releases_dir / f".{CURRENT}-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(release_id, tmp)
    os.replace(tmp, releases_dir / CURRENT)
    _fsync_dir(releases_dir)


def open_release(path: Path, *, verify: bool = False) -> Release:
    """A release folder checked for completeness (and digests when ``verify``)."""
    manifest_path = path / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReleaseError(f"{path}: no {MANIFEST} (incomplete release)") from None
    except (OSError, ValueError) as err:
        raise ReleaseError(f"{manifest_path}: unreadable manifest: {err}") from None
    files = manifest.get("files")
    if not isinstance(files, dict) or "id" not in manifest:
        raise ReleaseError(f"{manifest_path}: manifest lacks id or files")
    for name, entry in files.items():
        target = path / name
        try:
            size = target.stat().st_size
        except OSError:
            raise ReleaseError(f"{path}: {name} is missing") from None
        if size != entry.get("bytes"):
            raise ReleaseError(
                f"{path}: {name} has {size} bytes, manifest says {entry.get('bytes')}"
            )
        if verify and hashlib.sha256(target.read_bytes()).hexdigest() != entry.get("sha256"):
            raise ReleaseError(f"{path}: {name} does not match its sha256")
    return Release(path, manifest)


def current(releases_dir: Path) -> Release | None:
    """The release ``current`` points to, or None when there is none yet."""
    link = releases_dir / CURRENT
    if not link.exists():
        return None
    return open_release(link.resolve())


def list_releases(releases_dir: Path) -> list[Release]:
    """Complete releases, oldest first (ids start with their UTC build time)."""
    found = []
    if releases_dir.is_dir():
        for child in sorted(releases_dir.iterdir()):
            if child.name.startswith(".") or child.name == CURRENT or not child.is_dir():
                continue
            try:
                found.append(open_release(child))
            except ReleaseError:
                continue
    return found


def clean_staging(releases_dir: Path) -> list[Path]:
    """Remove folders left by builds that were killed; returns what was removed."""
    removed = []
    if releases_dir.is_dir():
        for child in releases_dir.iterdir():
            if child.name.startswith(STAGING_PREFIX) and child.is_dir():
                pid = child.name.rsplit("-", 1)[-1]
                if pid.isdigit() and _alive(int(pid)):
                    continue
                shutil.rmtree(child, ignore_errors=True)
                removed.append(child)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
