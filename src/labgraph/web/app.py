"""The application factory: routers, middleware, the release runtime, and how uvicorn runs it.

Middleware order (outermost first): observability (request id, access log, metrics: it sees every
answer, refusals included), the replay of stored whole answers (:mod:`.replay`, which asks the
rate limit again for each), request limits (414/413 before anything is read, chunked bodies
included), CORS, the per-client SPARQL rate limit (429), gzip, and the hot routes
(:data:`HOT_PATHS`) called directly (:mod:`.fastpath`). The runtime is started in the
lifespan and watched for new releases, so ``labgraph build`` switching ``current`` (or a SIGHUP)
is picked up without a restart.

:func:`uvicorn_options` holds what a public server needs from uvicorn: a slow-client guard
(:class:`~.protocol.GuardedHttpToolsProtocol`: a whole request must arrive within
``client_timeout``, and one address may hold only so many connections), keep-alive and
concurrency bounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import signal
import warnings
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import PlainTextResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..settings import Settings
from . import pages, resources, sparql
from .fastpath import FastPaths
from .http import ByteCache, error
from .observability import Metrics, Observability, configure_access_log, flush_access_log
from .protocol import MAX_HEAD_BYTES, REQUEST_LINE_SLACK, GuardedHttpToolsProtocol
from .ratelimit import LIMITED_PATHS, ClientQuota, RateLimit
from .replay import ResponseCache
from .runtime import Runtime

log = logging.getLogger("labgraph.server")
STATIC = Path(__file__).parent / "static"
#: Routes clients hit in loops, dispatched by :class:`FastPaths` without FastAPI's machinery.
HOT_PATHS = frozenset({"/sparql", "/sparql/", "/id/{type_}/{id_}", "/doc/{type_}/{name}"})
#: The answer caches: serialised documents, query results, whole answers (:mod:`.replay`).
CACHES = ("documents", "results", "answers")
#: Answers about the server itself, never replayed (they say no-store anyway).
_NEVER_REPLAYED = frozenset({"/healthz", "/metrics"})


class BodyTooLarge(Exception):
    """The request body grew past the limit while it was being read (chunked uploads)."""


class RequestLimits:
    """Refuse over-long URLs (414) and over-large bodies (413) before any handler runs.

    A body announced by Content-Length is judged at once; a chunked one is counted as it is read
    and refused as soon as it passes the limit, so an endless upload cannot fill memory.
    """

    def __init__(self, app: ASGIApp, max_url: int, max_body: int) -> None:
        self.app = app
        self.max_url = max_url
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        url_length = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        if url_length > self.max_url:
            await error(
                414, f"request URL longer than {self.max_url} bytes; send the query with POST"
            )(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_body
                except ValueError:
                    await error(400, "malformed Content-Length")(scope, receive, send)
                    return
                if too_big:
                    await error(413, f"request body larger than {self.max_body} bytes")(
                        scope, receive, send
                    )
                    return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge()
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if not started:
                await error(
                    413, f"request body larger than {self.max_body} bytes", {"Connection": "close"}
                )(scope, receive, send)


class Compression:
    """gzip for clients that accept it (Starlette's GZipMiddleware); for the others, only
    ``Vary: Accept-Encoding`` is added, without the per-request buffering Starlette does."""

    def __init__(self, app: ASGIApp, minimum_size: int) -> None:
        self.app = app
        self.gzip = GZipMiddleware(
            app,
            minimum_size=minimum_size,
            compresslevel=6,
            exclude_content_types=("application/gzip", "application/x-gzip"),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"accept-encoding" and b"gzip" in value:
                await self.gzip(scope, receive, send)
                return

        async def vary_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _vary(list(message.get("headers", [])), b"Accept-Encoding")
            await send(message)

        await self.app(scope, receive, vary_send)


def _vary(headers: list[tuple[bytes, bytes]], name: bytes) -> list[tuple[bytes, bytes]]:
    """``headers`` with ``name`` added to their Vary header (created if absent)."""
    for i, (key, value) in enumerate(headers):
        if key.lower() == b"vary":
            if name.lower() not in value.lower():
                headers[i] = (key, value + b", " + name)
            return headers
    headers.append((b"vary", name))
    return headers


def create_app(settings: Settings, *, dataset: Path | None = None) -> FastAPI:
    """A FastAPI app serving ``releases/current`` (or one dataset file)."""
    runtime = Runtime(settings, dataset)
    # A third each for documents, query results and whole answers (replay.py); each entry at
    # most 1/16 of its third.
    caches = {name: ByteCache(settings.cache_bytes // 3) for name in CACHES}
    metrics = Metrics(runtime, caches)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_access_log(settings.access_log)
        await runtime.start()
        watcher = asyncio.create_task(_watch(runtime, settings.reload_interval))
        hangups: set[asyncio.Task[bool]] = set()

        def on_sighup() -> None:
            log.info("SIGHUP: checking for a new release")
            task = asyncio.ensure_future(runtime.reload(force=True))
            hangups.add(task)
            task.add_done_callback(_logged_done(hangups))

        loop = asyncio.get_running_loop()
        handled = False
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, on_sighup)
            handled = True
        try:
            yield
        finally:
            if handled:
                loop.remove_signal_handler(signal.SIGHUP)
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await runtime.close()
            await asyncio.to_thread(flush_access_log, 2.0)

    app = FastAPI(
        title="labgraph",
        version=__version__,
        summary="France's network of public innovation labs as linked open data",
        description="A read-only SPARQL 1.1 endpoint, Cool URIs with content negotiation, "
        "dumps and a DCAT-AP catalogue of the lab network.",
        lifespan=lifespan,
        # Operators get Prometheus metrics and JSON access logs (observability.py); FastAPI's
        # native OpenTelemetry would look up its providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        docs_url="/api",
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.metrics = metrics
    app.state.documents = caches["documents"]
    app.state.results = caches["results"]
    app.state.answers = caches["answers"]
    quota = ClientQuota(settings.rate_limit, settings.rate_burst)
    app.include_router(sparql.router)
    app.include_router(resources.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.api_route(
        "/healthz",
        methods=["GET", "HEAD"],
        summary="Ready when it answers 200",
        response_class=PlainTextResponse,
        responses={
            200: {"description": "ok and the release served", "content": {"text/plain": {}}},
            503: {"description": "starting", "content": {"text/plain": {}}},
        },
    )
    async def healthz(request: Request) -> Response:
        current = runtime.current
        if current is None:
            return error(503, "starting")
        return PlainTextResponse(f"ok {current.id}\n", headers={"Cache-Control": "no-store"})

    if settings.metrics:

        @app.get(
            "/metrics",
            summary="Prometheus metrics",
            response_class=Response,
            responses={
                200: {
                    "description": "Prometheus text exposition format",
                    "content": {"text/plain": {}},
                }
            },
        )
        async def metrics_endpoint() -> Response:
            body, content_type = metrics.exposition()
            return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})

    app.openapi = functools.partial(_openapi, app)  # type: ignore[method-assign]
    app.add_middleware(
        FastPaths,
        routes=[
            r
            for r in (*sparql.router.routes, *resources.router.routes)
            if isinstance(r, APIRoute) and r.path in HOT_PATHS
        ],
    )
    app.add_middleware(Compression, minimum_size=1024)
    app.add_middleware(RateLimit, quota=quota, on_limited=metrics.rate_limited.inc)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "HEAD", "POST"],
        allow_headers=[
            "Accept",
            "Content-Type",
            "If-None-Match",
            "If-Modified-Since",
            "X-Request-Id",
        ],
        expose_headers=[
            "ETag",
            "Link",
            "Content-Location",
            "Location",
            "X-Labgraph-Release",
            "Retry-After",
            "X-Request-Id",
        ],
        max_age=86400,
    )
    app.add_middleware(
        RequestLimits, max_url=settings.max_url_bytes, max_body=settings.max_query_bytes
    )
    app.add_middleware(
        ResponseCache,
        cache=app.state.answers,
        release=lambda: runtime.current.id if runtime.current is not None else None,
        cacheable=lambda path: path not in _NEVER_REPLAYED,
        admit=quota.admits,
    )
    app.add_middleware(Observability, metrics=metrics, max_body=settings.max_query_bytes)
    return app


#: Answers the middleware may give on any operation, and on the SPARQL endpoint.
_MIDDLEWARE_RESPONSES = {
    "413": {
        "description": "Request body larger than max_query_bytes",
        "content": {"text/plain": {}},
    },
    "414": {"description": "Request URL longer than max_url_bytes", "content": {"text/plain": {}}},
}
_RATE_LIMITED = {
    "429": {
        "description": "Too many queries from this address (rate_limit, "
        "rate_burst); Retry-After says when to retry",
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
        "content": {"text/plain": {}},
    }
}


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with one operationId per method and the middleware's answers.

    FastAPI gives a GET+HEAD route the same operationId twice (invalid OpenAPI); the answers of
    the middleware (413, 414, 429) are not declared by any route.
    """
    if app.openapi_schema is not None:
        return app.openapi_schema
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Duplicate Operation ID")
        spec = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
        )
    for path, operations in spec.get("paths", {}).items():
        for method, operation in operations.items():
            operation["operationId"] = re.sub(r"\W+", "_", f"{method}{path}").strip("_")
            responses = operation.setdefault("responses", {})
            extra = dict(_MIDDLEWARE_RESPONSES)
            if path in LIMITED_PATHS:
                extra.update(_RATE_LIMITED)
            for status, declared in extra.items():
                responses.setdefault(status, declared)
    app.openapi_schema = spec
    return spec


def _logged_done(tasks: set[asyncio.Task[bool]]) -> Callable[[asyncio.Task[bool]], None]:
    """A done-callback that forgets a SIGHUP reload task and logs its failure, if any."""

    def done(task: asyncio.Task[bool]) -> None:
        tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "reload failed; still serving the previous release", exc_info=task.exception()
            )

    return done


async def _watch(runtime: Runtime, interval: float) -> None:
    """Pick up a new ``current`` release on its own (``labgraph build`` switched it)."""
    if interval <= 0:
        return  # SIGHUP only
    while True:
        await asyncio.sleep(interval)
        try:
            await runtime.reload()
        except Exception:  # a failed reload must never stop the watcher
            log.exception("reload failed; still serving the previous release")


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run``/``uvicorn.Config`` to serve ``settings`` publicly.

    The protocol is a ``functools.partial`` of a module-level class, so it pickles: uvicorn's
    ``workers`` > 1 passes its config to each worker process.
    """
    trusted = frozenset(ip.strip() for ip in settings.forwarded_allow_ips.split(",") if ip.strip())
    max_head = max(MAX_HEAD_BYTES, settings.max_url_bytes + 8 * 1024)
    protocol = functools.partial(
        GuardedHttpToolsProtocol,
        client_timeout=settings.client_timeout,
        per_client=settings.max_connections_per_client,
        max_line=settings.max_url_bytes + REQUEST_LINE_SLACK,
        max_head=max_head,
        trusted=trusted,
    )
    return {
        "host": settings.host,
        "port": settings.port,
        "http": protocol,
        "log_level": "info",
        "access_log": False,  # ours is structured (labgraph.access)
        "server_header": False,
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": ",".join(sorted(trusted)) or None,
        "timeout_keep_alive": settings.keep_alive_timeout,
        "timeout_graceful_shutdown": 10,
        "limit_concurrency": settings.max_connections,
        "backlog": 2048,
    }
