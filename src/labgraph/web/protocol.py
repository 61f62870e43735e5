"""uvicorn's httptools HTTP/1.1 protocol with the guards a public server needs.

uvicorn times out idle keep-alive connections but not a request being sent: a client sending its
head a byte at a time would hold its connection (and a slot of ``limit_concurrency``) for ever,
and httptools itself bounds neither the request line nor the head. Here:

- a whole request (head and body) must arrive within ``client_timeout`` of its first byte (or of
  the connection's opening), else 408 and the connection is closed;
- one client address may hold at most ``per_client`` connections (trusted proxies excepted);
- an over-long request line gets 414 and an over-large head 431 (RFC 9110), before the parser
  buffers them.

httptools (llhttp, C) rather than h11 (pure Python): the HTTP layer was half of the time of a
cached answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections import Counter
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .ratelimit import client_key

#: Room for the method, the HTTP version and the line end around the request target.
REQUEST_LINE_SLACK = 64
#: Largest request head (request line and headers) accepted, at least.
MAX_HEAD_BYTES = 16 * 1024

_REASONS = {
    408: "Request Timeout",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """The guards of this module's docstring, around uvicorn's httptools protocol."""

    def __init__(
        self,
        *args: Any,
        client_timeout: float = 10.0,
        per_client: int = 0,
        max_line: int = 8192 + REQUEST_LINE_SLACK,
        max_head: int = MAX_HEAD_BYTES,
        trusted: frozenset[str] = frozenset(),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.client_timeout = client_timeout
        self.per_client = per_client
        self.max_line = max_line
        self.max_head = max_head
        self.trusted = trusted
        self._deadline: asyncio.TimerHandle | None = None
        self._client_key: str | None = None
        self._in_message = False  # between the parser's message begin and complete
        self._new_head()

    def _new_head(self) -> None:
        """Start counting the next request's head (its line, then up to the blank line)."""
        self._in_head = True
        self._line_open = True
        self._line_bytes = 0
        self._head_bytes = 0
        self._pending = b""

    def _counts(self) -> Counter[str]:
        counts = getattr(self.server_state, "labgraph_per_client", None)
        if counts is None:
            counts = Counter()
            self.server_state.labgraph_per_client = counts  # type: ignore[attr-defined]
        return counts

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        host = self.client[0] if self.client else None
        if self.per_client and host is not None and not _trusted(host, self.trusted):
            key = client_key(host)
            counts = self._counts()
            if counts[key] >= self.per_client:
                self._refuse(503, "too many connections from your address", {"Retry-After": "1"})
                return
            counts[key] += 1
            self._client_key = key
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._client_key is not None:
            counts = self._counts()
            counts[self._client_key] -= 1
            if counts[self._client_key] <= 0:
                del counts[self._client_key]
            self._client_key = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            if self._head_too_big(data):
                return
            if self._in_head:  # the parser gets the head whole, once it has all arrived
                self._pending += data
                self._watch()
                return
            data, self._pending = _without_upgrade(self._pending + data), b""
        super().data_received(data)
        self._watch()

    def _watch(self) -> None:
        """A request under way must finish in time; between requests, no deadline."""
        if self.transport.is_closing():
            self._disarm()
        elif self._in_message or self._head_bytes:
            if self._deadline is None:
                self._arm()
        else:
            self._disarm()

    def _head_too_big(self, data: bytes) -> bool:
        """Count ``data`` into the current head; refuse (and say so) once a limit is passed."""
        if self._line_open:
            end = data.find(b"\n")
            self._line_bytes += len(data) if end < 0 else end
            if self._line_bytes > self.max_line:
                self._refuse(414, f"request line longer than {self.max_line} bytes")
                return True
            self._line_open = end < 0
        tail = self._pending[-3:]  # an end of head may straddle two reads
        seen = tail + data
        ends = [i for i in (seen.find(b"\r\n\r\n"), seen.find(b"\n\n")) if i >= 0]
        if ends:
            self._head_bytes += min(ends) - len(tail)
            self._in_head = False
        else:
            self._head_bytes += len(data)
        if self._head_bytes > self.max_head:
            self._refuse(431, f"request head larger than {self.max_head} bytes")
            return True
        return False

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_message = True

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_message = False
        self._new_head()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Idle keep-alive connections are uvicorn's timeout_keep_alive's business; a request
        # already partly received (pipelined) keeps its deadline.
        if not self._in_message and not self._head_bytes:
            self._disarm()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.client_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        partial = self._in_message or bool(self._head_bytes)
        started = self.cycle is not None and self.cycle.response_started
        if partial and not started:
            self._refuse(408, f"the request did not arrive within {self.client_timeout:g} s")
            if self.cycle is not None:
                self.cycle.disconnected = True
                self.cycle.message_event.set()
        else:
            self.transport.close()

    def _refuse(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        """Answer with a bare response outside the parser, then close."""
        body = (message + "\n").encode("utf-8")
        lines = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
            "content-type: text/plain; charset=utf-8",
            f"content-length: {len(body)}",
            "connection: close",
            *(f"{k}: {v}" for k, v in (headers or {}).items()),
        ]
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body)
        self.transport.close()


def _without_upgrade(request: bytes) -> bytes:
    """``request`` (a whole head, then anything) without its HTTP Upgrade offer.

    This server upgrades to nothing, and RFC 9110 (7.8) lets a server ignore an offer; but
    httptools stops at the end of a head offering one (``Upgrade: h2c``, which every Java
    ``HttpClient`` sends, Jena's included) and uvicorn then drops the body (uvicorn#2722).
    """
    ends = [i for i in (request.find(b"\r\n\r\n"), request.find(b"\n\n")) if i >= 0]
    end = min(ends)
    head = request[:end]
    if b"upgrade" not in head.lower():
        return request
    lines = head.split(b"\n")
    kept = lines[:1]
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        field = name.strip().lower()
        if field in (b"upgrade", b"http2-settings"):
            continue
        if field == b"connection":
            tokens = [
                t.strip()
                for t in value.split(b",")
                if t.strip().lower() not in (b"upgrade", b"http2-settings")
            ]
            if not tokens:
                continue
            line = name + b": " + b", ".join(tokens) + (b"\r" if line.endswith(b"\r") else b"")
        kept.append(line)
    return b"\n".join(kept) + request[end:]


def _trusted(host: str, trusted: frozenset[str]) -> bool:
    """Whether ``host`` is one of the trusted proxies (addresses, networks or ``*``)."""
    if "*" in trusted or host in trusted:
        return True
    with contextlib.suppress(ValueError):
        address = ipaddress.ip_address(host)
        for entry in trusted:
            with contextlib.suppress(ValueError):
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
    return False
