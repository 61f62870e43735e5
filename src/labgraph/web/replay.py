"""Whole answers replayed: a shared cache in front of the routes, as a CDN keeps them.

A release never changes, so the complete answer to a GET or HEAD — status, headers and body,
after content negotiation, CORS and gzip — stays true for as long as that release is served.
Clients ask the same things in loops (a notebook re-running its cell, a harvester, a page's
queries), and the answer cache of :mod:`.http` only spares them the engine: negotiation, the
handler, the response objects and four middlewares still ran each time, several times the cost
of the bytes. This layer, just inside the access log and metrics, answers a request it has seen
with the stored messages.

What it stores follows RFC 9111 for a shared cache, made stricter:

- only GET and HEAD without a body, credentials, cookies or ranges;
- only answers 200, 303 and 304 that say ``Cache-Control: public`` (so never ``no-store``
  query results such as ``NOW()``'s, nor POST answers, refusals or errors) and set no cookie;
- the key holds the method, scheme, path, query string and *every* request header but a few
  that never change an answer (user agent, connection, request id…), so whatever the answer
  varies on (Accept, Accept-Encoding, Origin, If-None-Match, Host…) is in it;
- entries belong to the release served when their request arrived, and are dropped when
  another is served.

Protections stay on for replayed answers: the request limits judged the request when its
answer was stored (same URL, no body), the rate limit is asked again (``admit``), and the
access log and metrics, outside this layer, see every request. Memory is bounded in bytes,
least recently used first; 0 bytes turns the layer off.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .http import ByteCache

#: Request headers that never change an answer here: left out of the key.
IGNORED = frozenset(
    {
        b"user-agent",
        b"connection",
        b"keep-alive",
        b"x-request-id",
        b"x-forwarded-for",
        b"referer",
        b"cache-control",
        b"pragma",
        b"te",
        b"dnt",
        b"priority",
        b"upgrade-insecure-requests",
        b"sec-fetch-site",
        b"sec-fetch-mode",
        b"sec-fetch-dest",
        b"sec-fetch-user",
    }
)
#: Request headers whose presence keeps a request away from the cache.
BYPASS = frozenset(
    {
        b"authorization",
        b"cookie",
        b"range",
        b"if-range",
        b"content-length",
        b"transfer-encoding",
        b"expect",
    }
)
STORABLE_STATUS = frozenset({200, 303, 304})
_PER_ENTRY = 256  # bytes counted for an entry's key and bookkeeping


class _Answer:
    """One stored answer, with what the layers outside learnt while it was made (the route,
    what the endpoint left in ``scope["state"]``), so the access log and metrics read the same
    for a replay."""

    __slots__ = ("body", "route", "start", "state")

    def __init__(self, start: Message, body: bytes, route: Any, state: dict[str, Any]) -> None:
        self.start = start
        self.body = body
        self.route = route
        self.state = state


class ResponseCache:
    """ASGI middleware replaying stored answers to repeated GET/HEAD requests from ``cache``
    (bounded in bytes; with no room at all, the layer stands aside)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        cache: ByteCache,
        release: Callable[[], str | None],
        cacheable: Callable[[str], bool],
        admit: Callable[[Scope], bool] | None = None,
    ) -> None:
        self.app = app
        self.cache = cache
        self.release = release
        self.cacheable = cacheable
        self.admit = admit
        self._release: str | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = self._key(scope) if scope["type"] == "http" and self.cache.max_item > 0 else None
        if key is None:
            await self.app(scope, receive, send)
            return
        release = self.release()
        if release != self._release:  # another release: every stored answer is stale
            self.cache.clear()
            self._release = release
        answer: _Answer | None = None
        if release is not None:
            if key not in self.cache:
                self.cache.get(key)  # counted as a miss
            elif self.admit is None or self.admit(scope):  # over its quota: the limit answers
                answer = self.cache.get(key)
        if answer is not None:
            scope["route"] = answer.route
            if answer.state:
                scope.setdefault("state", {}).update(answer.state)
            await send(dict(answer.start))
            await send({"type": "http.response.body", "body": answer.body, "more_body": False})
            return
        await self._store(key, release, scope, receive, send)

    def _key(self, scope: Scope) -> tuple[Any, ...] | None:
        method = scope["method"]
        if method != "GET" and method != "HEAD":
            return None
        path = scope["path"]
        if not self.cacheable(path) or scope.get("root_path"):
            return None
        headers = []
        for header in scope["headers"]:
            name = header[0]
            if name in IGNORED:
                continue
            if name in BYPASS:
                return None
            headers.append(header)
        return (method, scope.get("scheme"), path, scope.get("query_string"), *headers)

    async def _store(
        self, key: Hashable, release: str | None, scope: Scope, receive: Receive, send: Send
    ) -> None:
        state = scope.setdefault("state", {})
        before = set(state)
        start: Message | None = None
        chunks: list[bytes] = []
        size = _PER_ENTRY
        storable = release is not None
        limit = self.cache.max_item

        async def keeping_send(message: Message) -> None:
            nonlocal start, size, storable
            if storable:
                if message["type"] == "http.response.start":
                    storable = _storable(message)
                    # A copy: the layers outside add their own headers (the request id).
                    headers = list(message.get("headers", ()))
                    start = {
                        "type": message["type"],
                        "status": message["status"],
                        "headers": headers,
                    }
                    size += sum(len(name) + len(value) for name, value in headers)
                elif message["type"] == "http.response.body":
                    body = message.get("body", b"")
                    size += len(body)
                    chunks.append(body)
                else:  # trailers, push…: not a plain answer
                    storable = False
                if size > limit:  # too large to keep: stop copying it
                    storable = False
                    chunks.clear()
            await send(message)

        await self.app(scope, receive, keeping_send)
        if storable and start is not None and release == self._release:
            route = scope.get("route")
            added = {k: v for k, v in state.items() if k not in before}
            self.cache.put(key, _Answer(start, b"".join(chunks), route, added), size)


def _storable(start: Message) -> bool:
    """Whether an answer may be kept for anyone (RFC 9111 §3, for a shared cache)."""
    if start["status"] not in STORABLE_STATUS or start.get("trailers"):
        return False
    public = False
    for name, value in start.get("headers", []):
        lowered = name.lower()
        if lowered == b"cache-control":
            directives = value.lower()
            if b"no-store" in directives or b"private" in directives or b"no-cache" in directives:
                return False
            public = public or b"public" in directives
        elif lowered == b"set-cookie":
            return False
    return public
