"""How pages answer: Jinja2 templates, security headers, redirects, and errors as pages.

Every page route uses :class:`PageRoute`, which turns whatever a service raises into a page a
person can read: a missing session sends the visitor to sign in (and back afterwards), an
``AppError`` shows its message with its status, and anything unexpected is logged and shown as
a plain 500 page — nothing user-controlled crashes a page or leaks a traceback.

Pages allow scripts from this site only (a Content-Security-Policy without ``unsafe-inline``
for scripts), so even markup that slipped past the sanitiser could not run.

Must not import ``tidings.api`` or ``tidings.store``.
"""

import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse, Response

from tidings import __version__
from tidings.errors import AppError, Unauthorized
from tidings.services.users import Session
from tidings.web.sessions import LoginRequired, runtime

logger = logging.getLogger(__name__)


def _ms_time(ms: int) -> str:
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


templates = Environment(
    loader=PackageLoader("tidings.web", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters["ms_time"] = _ms_time
templates.globals["version"] = __version__


def security_headers(request: Request, response: Response) -> None:
    host = request.headers.get("host", "")
    connect = f"'self' ws://{host} wss://{host}" if host else "'self'"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        f"img-src 'self' http: https: data:; connect-src {connect}; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"


async def page(
    request: Request,
    template: str,
    *,
    session: Session | None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render a template with what every page shows: the signed-in user and the CSRF token."""
    config = await runtime(request).config()
    body = templates.get_template(template).render(
        me=session.user if session else None,
        csrf=session.csrf_token if session else "",
        site_name=str(config["TeamSettings"]["SiteName"]),
        path=request.url.path,
        **context,
    )
    return HTMLResponse(body, status_code=status)


def fragment(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A piece of a page for our JavaScript to insert (a post, a page of older posts)."""
    return HTMLResponse(templates.get_template(template).render(**context), status_code=status)


def redirect(url: str) -> RedirectResponse:
    """After a form post, a 303 so a reload does not post again."""
    return RedirectResponse(url, status_code=303)


def local_path(candidate: str, default: str) -> str:
    """Only paths on this site may be redirect targets (no ``//host`` or ``https://…``).

    Browsers drop tabs and newlines from URLs and read ``\\`` as ``/``, so ``/\t/evil`` or
    ``/\\evil`` would leave the site: any of those characters disqualifies the path.
    """
    unsafe = any(c.isspace() or ord(c) < 32 or c == "\\" for c in candidate)
    if candidate.startswith("/") and not candidate.startswith("//") and not unsafe:
        return candidate
    return default


def error_page(request: Request, error: AppError) -> HTMLResponse:
    body = templates.get_template("error.html").render(
        me=None,
        csrf="",
        site_name="Tidings",
        path=request.url.path,
        status=error.status,
        message=error.message,
    )
    return HTMLResponse(body, status_code=error.status)


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?redirect_to={quote(target, safe='')}", status_code=303)


class PageRoute(APIRoute):
    """A page route: service errors become pages, and every answer gets the security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                response = await handler(request)
            except (LoginRequired, Unauthorized):
                response = login_redirect(request)
            except AppError as error:
                response = error_page(request, error)
            except Exception:
                logger.exception("page failed", extra={"path": request.url.path})
                response = error_page(
                    request,
                    AppError(
                        "web.unexpected.app_error",
                        "Something went wrong on our side. Please try again.",
                    ),
                )
            security_headers(request, response)
            return response

        return guarded
