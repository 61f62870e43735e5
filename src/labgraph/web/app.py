"""The application factory: routers, middleware and the release runtime.

Middleware order (outermost first): request limits (414/413 before anything is read), CORS,
gzip. The runtime is started in the lifespan and watched for new releases, so ``labgraph build``
switching ``current`` (or a SIGHUP) is picked up without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import __version__
from ..settings import Settings
from . import pages, resources, sparql
from .http import error
from .runtime import Runtime

log = logging.getLogger("labgraph.server")
STATIC = Path(__file__).parent / "static"
RELOAD_POLL_SECONDS = 2.0


class RequestLimits:
    """Refuse over-long URLs (414) and over-large bodies (413) before any handler runs."""

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
            await error(414, f"request URL longer than {self.max_url} bytes; send the query "
                        "with POST")(scope, receive, send)
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
                        scope, receive, send)
                    return
        await self.app(scope, receive, send)


def create_app(settings: Settings, *, dataset: Path | None = None) -> FastAPI:
    """A FastAPI app serving ``releases/current`` (or one dataset file)."""
    runtime = Runtime(settings, dataset)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        watcher = asyncio.create_task(_watch(runtime))
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP,
                                    lambda: asyncio.ensure_future(runtime.reload()))
        try:
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await runtime.close()

    app = FastAPI(
        title="labgraph",
        version=__version__,
        summary="France's network of public innovation labs as linked open data",
        description="A read-only SPARQL 1.1 endpoint, Cool URIs with content negotiation, "
        "dumps and a DCAT-AP catalogue of the lab network.",
        lifespan=lifespan,
        docs_url="/api",
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.documents = resources.DocumentCache()
    app.include_router(sparql.router)
    app.include_router(resources.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.api_route("/healthz", methods=["GET", "HEAD"], summary="Ready when it answers 200",
                   response_class=PlainTextResponse)
    async def healthz(request: Request) -> Response:
        current = runtime.current
        if current is None:
            return error(503, "starting")
        return PlainTextResponse(f"ok {current.id}\n", headers={"Cache-Control": "no-store"})

    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=6)
    app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET", "HEAD", "POST"],
                       allow_headers=["Accept", "Content-Type", "If-None-Match",
                                      "If-Modified-Since"],
                       expose_headers=["ETag", "Link", "Content-Location", "Location",
                                       "X-Labgraph-Release", "Retry-After"],
                       max_age=86400)
    app.add_middleware(RequestLimits, max_url=settings.max_url_bytes,
                       max_body=settings.max_query_bytes)
    return app


async def _watch(runtime: Runtime) -> None:
    """Pick up a new ``current`` release on its own (``labgraph build`` switched it)."""
    while True:
        await asyncio.sleep(RELOAD_POLL_SECONDS)
        try:
            await runtime.reload()
        except Exception:  # a failed reload must never stop the watcher
            log.exception("reload failed; still serving the previous release")
