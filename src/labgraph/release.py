"""Releases: immutable folders of dumps, switched into service atomically.

``releases/<id>/`` is written under a temporary name, flushed to disk, renamed, and only then is
``releases/current`` (a symlink) replaced by a rename, so a crash or a ``kill -9`` at any point
leaves the previous ``current`` intact and usable. A release is complete when its
``manifest.json`` exists and every file it lists has the announced size (and, on demand, digest).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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


def _gzip(data: bytes) -> bytes:
    """Deterministic gzip (no timestamp), so identical dumps have identical .gz copies."""
    return gzip.compress(data, compresslevel=6, mtime=0)


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
        if "/" in name or name.startswith(".") or name == MANIFEST:
            raise ValueError(f"invalid release file name {name!r}")
        self._write(name, data, media_type)
        if gzip_copy:
            self._write(name + ".gz", _gzip(data), "application/gzip", encoding_of=media_type)

    def add_all(self, files: list[tuple[str, bytes, str]], *, gzip_copy: bool = False) -> None:
        """Write several files; their .gz copies are compressed on every core at once."""
        for name, data, media_type in files:
            self.add(name, data, media_type)
        if gzip_copy:
            workers = min(len(files), os.cpu_count() or 1) or 1
            with ThreadPoolExecutor(max_workers=workers) as pool:  # zlib releases the GIL
                packed = list(pool.map(_gzip, (data for _, data, _ in files)))
            for (name, _, media_type), data in zip(files, packed, strict=True):
                self._write(name + ".gz", data, "application/gzip", encoding_of=media_type)

    def _write(
        self, name: str, data: bytes, media_type: str, encoding_of: str | None = None
    ) -> None:
        target = self.path / name
        with open(target, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        entry: dict[str, Any] = {
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "media_type": media_type,
        }
        if encoding_of:
            entry["compressed_media_type"] = encoding_of
        self.files[name] = entry

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
