"""The browser's session: the API's cookies, found again on every page, and the CSRF checks.

Signing in sets ``MMAUTHTOKEN`` (HttpOnly), ``MMCSRF`` and ``MMUSERID`` exactly as
``POST /api/v4/users/login`` does, so pages, the API (called by our JavaScript, which sends
``X-CSRF-Token`` from ``MMCSRF``) and the websocket share one session. Every state-changing
form carries the session's CSRF token in a hidden ``csrf_token`` field and is refused without
it. The forms that come before a session exists (sign-in, sign-up) use a double-submit token
kept in a SameSite=Strict cookie instead, so another site cannot sign a visitor in.

Must not import ``tidings.api`` or ``tidings.store``.
"""

import hmac
from dataclasses import dataclass, field

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.responses import Response

from tidings.errors import AppError, BadRequest, Forbidden
from tidings.ids import new_id
from tidings.services import users as user_service
from tidings.services.runtime import Runtime
from tidings.services.users import Session

# The API's cookie names (tidings.api.common); a test keeps the two lists equal.
AUTH_COOKIE = "MMAUTHTOKEN"
CSRF_COOKIE = "MMCSRF"
USER_COOKIE = "MMUSERID"
FORM_COOKIE = "tidings_form"


class LoginRequired(Exception):
    """No valid session: the page sends the visitor to sign in, then back."""


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def client_address(request: Request) -> str:
    """The client's address, the login limiter's key: the TCP peer's, or, when the peer is a
    proxy in ``TIDINGS_FORWARDED_ALLOW_IPS`` (this host by default), the client it names in
    ``X-Forwarded-For`` (uvicorn resolves it before the app sees the request)."""
    return request.client.host if request.client else ""


async def find_session(request: Request) -> Session | None:
    """The session the cookie names, or None (expired, ended, or never signed in)."""
    token = request.cookies.get(AUTH_COOKIE, "")
    if not token:
        return None
    try:
        return await user_service.authenticate(runtime(request), token)
    except AppError:
        return None


async def require_session(request: Request) -> Session:
    session = await find_session(request)
    if session is None:
        raise LoginRequired
    return session


@dataclass(frozen=True, slots=True)
class Form:
    """A submitted form's text fields (file parts are ignored)."""

    values: dict[str, list[str]] = field(default_factory=dict)

    def text(self, name: str, default: str = "") -> str:
        found = self.values.get(name)
        return found[0] if found else default

    def all(self, name: str) -> list[str]:
        return list(self.values.get(name, []))

    def checked(self, name: str) -> bool:
        return self.text(name) in ("on", "true", "1")


async def _read_form(request: Request) -> Form:
    try:
        data = await request.form()
    except (HTTPException, ValueError, KeyError) as exc:  # Starlette: 400 on a broken multipart
        raise BadRequest("web.form.invalid.app_error", "The form could not be read.") from exc
    values: dict[str, list[str]] = {}
    for key, value in data.multi_items():
        if not isinstance(value, UploadFile):
            values.setdefault(key, []).append(value)
    return Form(values)


def _expired_form() -> Forbidden:
    return Forbidden(
        "web.csrf.app_error",
        "This form has expired or did not come from this site. Reload the page and try again.",
    )


async def session_form(request: Request, session: Session) -> Form:
    """The form, after checking its ``csrf_token`` equals the session's."""
    form = await _read_form(request)
    if not hmac.compare_digest(form.text("csrf_token").encode(), session.csrf_token.encode()):
        raise _expired_form()
    return form


async def anonymous_form(request: Request) -> Form:
    """A sign-in or sign-up form, after checking its token against the form cookie."""
    form = await _read_form(request)
    cookie = request.cookies.get(FORM_COOKIE, "")
    if not cookie or not hmac.compare_digest(form.text("csrf_token").encode(), cookie.encode()):
        raise _expired_form()
    return form


def form_token(request: Request) -> str:
    """The visitor's double-submit token: the one in the cookie, or a new one to set."""
    return request.cookies.get(FORM_COOKIE, "") or new_id()


def set_form_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        FORM_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def start_session(
    response: Response, request: Request, user_id: str, token: str, csrf: str
) -> None:
    """The three cookies of ``POST /api/v4/users/login``, with the same flags."""
    secure = request.url.scheme == "https"
    max_age = runtime(request).settings.session_lifetime_seconds
    response.set_cookie(
        AUTH_COOKIE, token, max_age=max_age, httponly=True, samesite="lax", secure=secure
    )
    response.set_cookie(USER_COOKIE, user_id, max_age=max_age, samesite="lax", secure=secure)
    response.set_cookie(CSRF_COOKIE, csrf, max_age=max_age, samesite="lax", secure=secure)
    response.delete_cookie(FORM_COOKIE)


def end_session(response: Response) -> None:
    for cookie in (AUTH_COOKIE, USER_COOKIE, CSRF_COOKIE):
        response.delete_cookie(cookie)
