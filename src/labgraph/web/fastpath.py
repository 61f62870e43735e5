"""The hot routes, called without FastAPI's per-request machinery.

For every request FastAPI solves the endpoint's dependencies, validates its parameters and runs
it inside its exception and exit-stack layers: about 120 µs here, more than answering a cached
document or query costs. The routes clients hit in loops (``/sparql``, ``/id/…``, ``/doc/…``)
take nothing but the request and string path parameters, so this innermost middleware matches
them with their own Starlette patterns and calls their endpoints directly. They stay declared on
the FastAPI app (the OpenAPI document, and a method they do not accept falls through to FastAPI's
405); every other request goes to FastAPI untouched.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable

from fastapi.routing import APIRoute
from starlette.convertors import StringConvertor
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send


class FastPaths:
    """Innermost middleware: dispatch ``routes`` straight to their endpoints."""

    def __init__(self, app: ASGIApp, routes: Iterable[APIRoute]) -> None:
        self.app = app
        self.routes = [route for route in routes if _direct(route)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Served under a path prefix (root_path), FastAPI's own matching applies.
        if scope["type"] == "http" and not scope.get("root_path"):
            method = scope["method"]
            path = scope["path"]
            for route in self.routes:
                if method not in route.methods:
                    continue
                match = route.path_regex.match(path)
                if match is not None:
                    await self._call(route, match.groupdict(), scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _call(
        self, route: APIRoute, params: dict[str, str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        # Errors propagate as from any route: RequestLimits answers a body grown too large,
        # FastAPI's outermost error middleware logs anything else and answers 500.
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope["path_params"] = params
        response = await route.endpoint(Request(scope, receive, send), **params)
        await response(scope, receive, send)


def _direct(route: APIRoute) -> bool:
    """Whether ``route`` can be called directly: an async endpoint taking the request and
    plain-string path parameters only (anything else needs FastAPI to resolve it)."""
    if not inspect.iscoroutinefunction(route.endpoint):
        return False
    if any(not isinstance(c, StringConvertor) for c in route.param_convertors.values()):
        return False
    parameters = list(inspect.signature(route.endpoint).parameters.values())
    if not parameters or parameters[0].name != "request":
        return False
    return {p.name for p in parameters[1:]} == set(route.param_convertors)
