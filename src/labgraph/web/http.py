"""HTTP details shared by every route: validators, caching headers, plain errors.

ETags come from the release id (a release never changes), so a client or a CDN revalidates for
free and every replica serving the same release answers with the same ETag.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections import OrderedDict
from collections.abc import Hashable
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from fastapi import Request
from fastapi.responses import PlainTextResponse, Response

from ..formats import Format
from .runtime import Published

CACHE_CONTROL = "public, max-age=300, stale-while-revalidate=60"


class ByteCache:
    """A least-recently-used cache of serialised bodies (or anything whose size in bytes is
    given), bounded in bytes.

    A release never changes, so a document or a query result keyed by the release id stays
    true for as long as that release is served; a new release simply uses new keys.
    """

    def __init__(self, max_bytes: int, *, max_item: int | None = None) -> None:
        self.max_bytes = max_bytes
        self.max_item = max_item if max_item is not None else max_bytes // 16
        self.size = 0
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def get(self, key: Hashable) -> Any:
        found = self._items.get(key)
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        self._items.move_to_end(key)
        return found[0]

    def put(self, key: Hashable, value: Any, size: int | None = None) -> None:
        """Keep ``value`` (``size`` bytes; a bytes value counts its length)."""
        size = len(value) if size is None else size
        if size > self.max_item or key in self._items:
            return
        self._items[key] = (value, size)
        self.size += size
        while self.size > self.max_bytes and self._items:
            _, (_, dropped) = self._items.popitem(last=False)
            self.size -= dropped

    def clear(self) -> None:
        self._items.clear()
        self.size = 0


def etag_for(published: Published, *parts: str) -> str:
    """A strong validator for one representation of one resource in one release."""
    digest = hashlib.sha256("\x1f".join((published.id, *parts)).encode()).hexdigest()[:20]
    return f'"{digest}"'


def validators(published: Published, etag: str) -> dict[str, str]:
    return {
        "ETag": etag,
        "Last-Modified": _http_date(published.modified),
        "Cache-Control": CACHE_CONTROL,
        "X-Labgraph-Release": published.id,
    }


@functools.lru_cache(maxsize=64)
def _http_date(when: dt.datetime) -> str:
    return format_datetime(when, usegmt=True)


def not_modified(request: Request, etag: str, modified: dt.datetime) -> bool:
    """True when the client's copy is current (If-None-Match wins over If-Modified-Since)."""
    inm = request.headers.get("if-none-match")
    if inm is not None:
        tags = [t.strip() for t in inm.split(",")]
        weak = [t[2:] if t.startswith("W/") else t for t in tags]
        return "*" in tags or etag in weak
    ims = request.headers.get("if-modified-since")
    if ims:
        try:
            since = parsedate_to_datetime(ims)
        except (TypeError, ValueError, IndexError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=dt.UTC)
        return modified <= since
    return False


def represent(
    request: Request,
    published: Published,
    body: bytes,
    fmt: Format,
    *,
    etag_parts: tuple[str, ...],
    extra: dict[str, str] | None = None,
    vary: bool = True,
) -> Response:
    """A cacheable response (or 304) for one negotiated representation."""
    etag = etag_for(published, *etag_parts, fmt.name)
    headers = validators(published, etag)
    if vary:
        headers["Vary"] = "Accept"
    headers.update(extra or {})
    if not_modified(request, etag, published.modified):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=fmt.content_type, headers=headers)


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """A plain-text error that says what went wrong, for any client."""
    return PlainTextResponse(message.rstrip() + "\n", status_code=status, headers=headers)


def link_header(links: list[tuple[str, str, str | None]]) -> str:
    """``Link`` header value from (url, rel, media type) triples."""
    parts = []
    for url, rel, media_type in links:
        part = f'<{url}>; rel="{rel}"'
        if media_type:
            part += f'; type="{media_type}"'
        parts.append(part)
    return ", ".join(parts)
