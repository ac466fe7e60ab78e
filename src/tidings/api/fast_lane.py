"""The fast lane: the API's hottest requests served past FastAPI's routing and middleware.

``POST /api/v4/posts``, ``GET /api/v4/users/me`` and ``GET /api/v4/system/ping`` are static
paths whose handlers take only the request (:meth:`~tidings.api.common.ApiRoute.direct_handler`).
Between ``RequestContextMiddleware`` and such a handler FastAPI adds its exception middleware,
an exit stack, the router's matching and its request wrapper: each a coroutine and a wrapped
``send`` per request, about 27 µs of a post's 150 µs in-process (docs/performance.md). The lane
sits just inside ``RequestContextMiddleware`` (request id, body limit, cluster wait — all kept)
and calls the handler itself; a refusal (``AppError``) is answered here exactly as the
application's error handler answers it, and anything else propagates to the same outermost
handler as before (500 in Mattermost's shape).

FastAPI still owns these routes for everything else: OpenAPI, the permission matrix, and every
method or path not in the lane's table. The table is built from the app's own routes, in their
order, so a path an earlier route would have matched is left to the router.
"""

from collections.abc import Iterable, Mapping

from starlette.requests import Request
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from tidings.api.common import ApiRoute, DirectHandler
from tidings.api.errors import answer_app_error
from tidings.errors import AppError


def direct_routes(routes: Iterable[BaseRoute]) -> dict[tuple[str, str], DirectHandler]:
    """(method, path) → handler for every static-path API route with a direct handler, unless a
    route before it would match the same request."""
    table: dict[tuple[str, str], DirectHandler] = {}
    earlier: list[BaseRoute] = []
    for route in routes:
        handler = route.direct_handler() if isinstance(route, ApiRoute) else None
        if isinstance(route, ApiRoute) and handler is not None and not route.param_convertors:
            for method in sorted(route.methods or ()):
                probe = {"type": "http", "method": method, "path": route.path, "root_path": ""}
                if not any(r.matches(probe)[0] is Match.FULL for r in earlier):
                    table.setdefault((method, route.path), handler)
        earlier.append(route)
    return table


class FastLane:
    """Pure ASGI: a request whose method and path are in ``routes`` goes to its handler."""

    def __init__(self, app: ASGIApp, routes: Mapping[tuple[str, str], DirectHandler]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = (
            self.routes.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        )
        if handler is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await handler(request)
        except AppError as error:
            response = answer_app_error(request, error)
        await response(scope, receive, send)
