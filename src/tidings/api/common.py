"""What every handler shares: the runtime, the caller's session, paging, and JSON bodies.

Bodies are parsed as JSON whatever their Content-Type (some clients send none, some send
``text/plain``), then validated by a pydantic model; anything malformed is a 400 with
Mattermost's ``api.context.invalid_body_param.app_error``.
"""

import json
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError
from starlette.responses import JSONResponse

from tidings.errors import Unauthorized, invalid_body_param
from tidings.services import users as user_service
from tidings.services.runtime import Runtime
from tidings.services.users import LoginLimiter, Session

AUTH_COOKIE = "MMAUTHTOKEN"
CSRF_COOKIE = "MMCSRF"
USER_COOKIE = "MMUSERID"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

ModelT = TypeVar("ModelT", bound=BaseModel)


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def login_limiter(request: Request) -> LoginLimiter:
    limiter: LoginLimiter = request.app.state.login_limiter
    return limiter


def token_from(request: Request) -> tuple[str, bool]:
    """(token, came from the cookie). Header first: API clients never need CSRF tokens."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("bearer", "token") and value.strip():
        return value.strip(), False
    query = request.query_params.get("access_token", "")
    if query:
        return query, False
    cookie = request.cookies.get(AUTH_COOKIE, "")
    return cookie, bool(cookie)


async def current_session(request: Request) -> Session:
    token, via_cookie = token_from(request)
    if not token:
        raise Unauthorized(
            "api.context.session_expired.app_error",
            "Invalid or expired session, please login again.",
        )
    session = await user_service.authenticate(runtime(request), token)
    csrf_ok = request.headers.get("x-csrf-token", "") == session.csrf_token
    if via_cookie and request.method not in SAFE_METHODS and not csrf_ok:
        raise Unauthorized(
            "api.context.session_expired.app_error",
            "Invalid or expired session, please login again.",
            "CSRF token missing or wrong",
        )
    return session


async def optional_session(request: Request) -> Session | None:
    token, _ = token_from(request)
    if not token:
        return None
    return await current_session(request)


SessionDep = Annotated[Session, Depends(current_session)]
OptionalSessionDep = Annotated[Session | None, Depends(optional_session)]
RuntimeDep = Annotated[Runtime, Depends(runtime)]


@dataclass(frozen=True, slots=True)
class Paging:
    page: int
    per_page: int


def paging(request: Request) -> Paging:
    """Mattermost's rules: page from 0; per_page 60 by default, 200 at most; junk → defaults."""
    raw_page = request.query_params.get("page", "0")
    raw_per_page = request.query_params.get("per_page", "60")
    page = int(raw_page) if raw_page.isdigit() else 0
    per_page = int(raw_per_page) if raw_per_page.isdigit() else 60
    return Paging(page=page, per_page=min(per_page, 200))


PagingDep = Annotated[Paging, Depends(paging)]


async def read_json(request: Request, name: str) -> Any:
    """The body as JSON, whatever the Content-Type says."""
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid_body_param(name, str(exc)) from exc


async def parse_body(request: Request, model: type[ModelT], name: str) -> ModelT:
    data = await read_json(request, name)
    if not isinstance(data, dict):
        raise invalid_body_param(name, "expected a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or name
        raise invalid_body_param(field, first["msg"]) from exc


def body_doc(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` that documents a body we parse ourselves."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": model.model_json_schema(ref_template="#/components/schemas/{model}")
                }
            },
        }
    }


def ok(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


STATUS_OK = {"status": "OK"}
