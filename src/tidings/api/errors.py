"""The one place errors become HTTP: Mattermost's error JSON, request ids, body limits.

Every response carries ``X-Request-ID``; every error body is
``{"id","message","detailed_error","request_id","status_code"}``. ``detailed_error`` is blank
unless ``ServiceSettings.EnableDeveloper`` is on, so internals do not leak by default.
"""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidings.api.json_codec import JsonResponse
from tidings.errors import AppError, PayloadTooLarge
from tidings.ids import new_id
from tidings.services.cluster import Cluster

logger = logging.getLogger(__name__)

_STATUS_IDS = {
    401: (
        "api.context.session_expired.app_error",
        "Invalid or expired session, please login again.",
    ),
    404: ("api.context.404.app_error", "Sorry, we could not find the page."),
    405: ("api.context.405.app_error", "Method not allowed."),
}


def request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def error_response(
    request: Request, error: AppError, headers: dict[str, str] | None = None
) -> JSONResponse:
    developer = bool(request.scope.get("state", {}).get("developer_errors", False))
    return JsonResponse(
        {
            "id": error.id,
            "message": error.message,
            "detailed_error": error.detailed_error if developer else "",
            "request_id": request_id(request),
            "status_code": error.status,
        },
        status_code=error.status,
        headers=headers,
    )


def answer_app_error(request: Request, error: AppError) -> JSONResponse:
    """A service's refusal as the client hears it; one at 5xx is ours, so it is logged."""
    if error.status >= 500:
        logger.warning("request failed: %s", error.id, extra={"request_id": request_id(request)})
    return error_response(request, error)


def _not_found() -> AppError:
    error_id, message = _STATUS_IDS[404]
    return AppError(error_id, message, status=404)


def install_error_handlers(app: FastAPI) -> None:
    """Map every failure to the Mattermost shape, including the framework's own 404/405/422."""

    async def app_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, AppError)
        return answer_app_error(request, exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        error_id, message = _STATUS_IDS.get(
            exc.status_code, ("api.context.http_error", str(exc.detail))
        )
        # Keep the framework's headers: a 405 must say which methods are allowed.
        return error_response(
            request,
            AppError(error_id, message, str(exc.detail), status=exc.status_code),
            dict(exc.headers or {}),
        )

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        name = ".".join(str(part) for part in first.get("loc", ())[1:]) or "parameter"
        return error_response(
            request,
            AppError(
                "api.context.invalid_param.app_error",
                f"Invalid {name} parameter.",
                str(first.get("msg", "")),
                status=400,
            ),
        )

    async def unexpected(request: Request, exc: Exception) -> Response:
        logger.exception("unhandled error", extra={"request_id": request_id(request)})
        # Starlette answers this from its outermost middleware, outside RequestContextMiddleware,
        # so the request id header is added here.
        return error_response(
            request,
            AppError(
                "api.context.unexpected.app_error",
                "An unexpected error occurred.",
                type(exc).__name__,
            ),
            {"X-Request-ID": request_id(request)},
        )

    app.add_exception_handler(AppError, app_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected)


class RequestContextMiddleware:
    """Pure ASGI: request id on every response, and 413 for bodies over the configured maximum.

    The limit is read per request from a callable so a System Console change applies at once.
    Bodies are counted as they stream, so a lying or missing Content-Length cannot get past it.
    A request that published events or session changes has its response wait until the
    cluster's log holds them (``services.cluster``): its client's next request may reach another
    process. One that published nothing does not wait.
    """

    def __init__(self, app: ASGIApp, limits: Any, cluster: Cluster) -> None:
        self.app = app
        self.limits = limits
        self.cluster = cluster

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = new_id()
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        max_bytes, developer = await self.limits()
        state["developer_errors"] = developer
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return

        published = self.cluster.watch_request()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                if published.upto:
                    await self.cluster.sent(published)
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                message["headers"] = headers
            await send(message)

        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            await self._refuse(
                PayloadTooLarge(
                    "api.context.request_body_too_large.app_error",
                    "The request body is too large.",
                ),
                scope,
                receive,
                send_with_id,
            )
            return
        path = str(scope.get("path", ""))
        # No route has a NUL in it (and PostgreSQL text cannot hold one), and no API route ends
        # in a slash: Mattermost answers 404 where Starlette would redirect, without JSON.
        if "\x00" in path or (path.startswith("/api/") and path.endswith("/")):
            await self._refuse(_not_found(), scope, receive, send_with_id)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise PayloadTooLarge(
                        "api.context.request_body_too_large.app_error",
                        "The request body is too large.",
                    )
            return message

        await self.app(scope, counting_receive, send_with_id)

    async def _refuse(self, error: AppError, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(Request(scope, receive), error)
        await response(scope, receive, send)
