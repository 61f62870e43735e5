"""Per-client rate limiting of the SPARQL endpoint: a token bucket per client address.

Queries are the only expensive requests; one client looping over them would take every query
worker from everyone else. Each client address gets ``rate_burst`` tokens refilled at
``rate_limit`` per second; a request without a token gets 429 with ``Retry-After``. A token bucket
(rather than the fixed or moving windows of rate-limit libraries) is what the two settings mean
exactly, fractional rates included. IPv6 clients are keyed by their /64, since one host usually
owns a whole /64. Memory is bounded: the least recently seen clients are forgotten first.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from .http import error

#: Paths limited: the endpoint (with and without its trailing slash).
LIMITED_PATHS = frozenset({"/sparql", "/sparql/"})


def client_key(host: str | None) -> str:
    """The address a bucket belongs to: IPv4 as is, IPv6 by its /64 prefix."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class TokenBuckets:
    """One token bucket per key; :meth:`take` says how long to wait when a key has none left."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_clients: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str) -> float:
        """0 if ``key`` may proceed (one token spent), else seconds until it has a token."""
        now = self.clock()
        tokens, last = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            wait = 0.0
        else:
            self._buckets[key] = (tokens, now)
            wait = (1.0 - tokens) / self.rate
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait

    def __len__(self) -> int:
        return len(self._buckets)


class RateLimit:
    """ASGI middleware answering 429 (with Retry-After) to clients over their SPARQL budget."""

    def __init__(
        self, app: ASGIApp, rate: float, burst: int, on_limited: Callable[[], None] | None = None
    ) -> None:
        self.app = app
        self.buckets = TokenBuckets(rate, burst) if rate > 0 else None
        self.on_limited = on_limited

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.buckets is None
            or scope["type"] != "http"
            or scope.get("path") not in LIMITED_PATHS
            or scope.get("method") == "OPTIONS"
        ):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        wait = self.buckets.take(client_key(client[0] if client else None))
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        if self.on_limited is not None:
            self.on_limited()
        retry = max(1, math.ceil(wait))
        await error(
            429,
            f"too many queries from your address: this endpoint allows "
            f"{self.buckets.rate:g} per second (bursts of {self.buckets.burst}); retry "
            f"in {retry} s, or download the dumps for heavy use",
            {"Retry-After": str(retry)},
        )(scope, receive, send)
