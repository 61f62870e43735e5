"""Per-client rate limiting of the SPARQL endpoint: a token bucket per client address.

Queries are the only expensive requests; one client looping over them would take every query
worker from everyone else. Each client address gets ``rate_burst`` tokens refilled at
``rate_limit`` per second; a request without a token gets 429 with ``Retry-After``. A token bucket
(rather than the fixed or moving windows of rate-limit libraries) is what the two settings mean
exactly, fractional rates included. IPv6 clients are keyed by their /64, since one host usually
owns a whole /64. Memory is bounded: the least recently seen clients are forgotten first.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from .http import error

#: Paths limited: the endpoint (with and without its trailing slash).
LIMITED_PATHS = frozenset({"/sparql", "/sparql/"})


@functools.lru_cache(maxsize=16384)
def client_key(host: str | None) -> str:
    """The address a bucket belongs to: IPv4 as is, IPv6 by its /64 prefix (memoised: parsing
    an address costs more than the rest of a replayed answer)."""
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


class ClientQuota:
    """The SPARQL budget of each client, shared by every layer that may answer a query (the
    rate-limit middleware, and the replay of stored answers, :mod:`.replay`)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.buckets = TokenBuckets(rate, burst) if rate > 0 else None

    def wait(self, scope: Scope) -> float:
        """0 if the request may go on (a token spent, or not limited), else seconds to wait."""
        if (
            self.buckets is None
            or scope.get("path") not in LIMITED_PATHS
            or scope.get("method") == "OPTIONS"
        ):
            return 0.0
        client = scope.get("client")
        return self.buckets.take(client_key(client[0] if client else None))

    def admits(self, scope: Scope) -> bool:
        return self.wait(scope) <= 0


class RateLimit:
    """ASGI middleware answering 429 (with Retry-After) to clients over their SPARQL budget."""

    def __init__(
        self, app: ASGIApp, quota: ClientQuota, on_limited: Callable[[], None] | None = None
    ) -> None:
        self.app = app
        self.quota = quota
        self.on_limited = on_limited

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        wait = self.quota.wait(scope) if scope["type"] == "http" else 0.0
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        if self.on_limited is not None:
            self.on_limited()
        retry = max(1, math.ceil(wait))
        buckets = self.quota.buckets
        assert buckets is not None
        await error(
            429,
            f"too many queries from your address: this endpoint allows "
            f"{buckets.rate:g} per second (bursts of {buckets.burst}); retry "
            f"in {retry} s, or download the dumps for heavy use",
            {"Retry-After": str(retry)},
        )(scope, receive, send)
