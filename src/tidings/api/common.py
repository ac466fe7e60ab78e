"""What every handler shares: the runtime, the caller's session, paging, and JSON bodies.

Bodies are parsed as JSON whatever their Content-Type (some clients send none, some send
``text/plain``), then validated by a pydantic model; anything malformed is a 400 with
Mattermost's ``api.context.invalid_body_param.app_error``. Malformed includes what Python's
``json`` would accept but nothing downstream can store or send back: ``NaN`` and infinite
numbers, lone surrogates, NUL characters (PostgreSQL text refuses them) and absurd nesting.
"""

import inspect
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, get_args

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from starlette.responses import JSONResponse, Response

from tidings.api.json_codec import JsonResponse, decode
from tidings.domain.teams import Team
from tidings.domain.wire import team_json
from tidings.errors import Unauthorized, invalid_body_param, invalid_url_param
from tidings.ids import is_valid_id
from tidings.services import users as user_service
from tidings.services.runtime import Runtime
from tidings.services.users import Session

AUTH_COOKIE = "MMAUTHTOKEN"
CSRF_COOKIE = "MMCSRF"
USER_COOKIE = "MMUSERID"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

ModelT = TypeVar("ModelT", bound=BaseModel)
DirectHandler = Callable[[Request], Coroutine[Any, Any, Response]]


def runtime_of(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


async def runtime(request: Request) -> Runtime:
    """The dependency form of :func:`runtime_of`. Dependencies are ``async def`` on purpose:
    FastAPI runs a plain ``def`` dependency on its thread pool, a thread hop per request that
    cost GET /system/ping a third of its rate (bench/ping.py)."""
    return runtime_of(request)


def client_address(request: Request) -> str:
    """The client's address, the login limiter's key: the TCP peer's, or, when the peer is a
    proxy in ``TIDINGS_FORWARDED_ALLOW_IPS`` (this host by default), the client it names in
    ``X-Forwarded-For`` (uvicorn resolves it before the app sees the request)."""
    return request.client.host if request.client else ""


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
    session = await user_service.authenticate(runtime_of(request), token)
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


# Path parameters where Mattermost accepts ``me`` for the caller beside a real id.
ME_ALLOWED = frozenset({"user_id"})


async def check_path_ids(request: Request) -> None:
    """Every ``…_id`` in the URL path is a well-formed id (or ``me`` where Mattermost allows it).

    Mattermost answers a malformed one with 400 ``api.context.invalid_url_param.app_error``
    before looking anything up; a well-formed id that matches nothing stays a 404. Every route
    with an id in its path needs a session, and Mattermost checks the session first: so a caller
    without one hears 401, not 400 (authenticating here costs nothing on the well-formed path,
    which skips it).
    """
    for name, value in request.path_params.items():
        if not name.endswith("_id") or (value == "me" and name in ME_ALLOWED):
            continue
        if not isinstance(value, str) or not is_valid_id(value):
            await current_session(request)
            raise invalid_url_param(name)


class ApiRoute(APIRoute):
    """Every API route: its path ids are checked (:func:`check_path_ids`) before anything else,
    and a handler that takes nothing but the ``Request`` is called directly.

    Both for cost: FastAPI's dependency solving and request handling cost tens of microseconds
    per level on every request, the post path's largest cost after the database
    (bench/posts_per_second.py). A hot handler (``POST /posts``, ``GET /users/me``) takes only
    the request and resolves its caller with :func:`caller`; FastAPI documents it, and on a
    static path the fast lane (``api/fast_lane.py``) calls it before FastAPI's routing and
    middleware. Every API router is made with this class, and ``app.py`` refuses one that is
    not, so no route can forget the id check.
    """

    def get_route_handler(self) -> DirectHandler:
        handler = self.direct_handler() or super().get_route_handler()
        if not any(name.endswith("_id") for name in self.param_convertors):
            return handler

        async def checked(request: Request) -> Response:
            await check_path_ids(request)
            return await handler(request)

        return checked

    def direct_handler(self) -> DirectHandler | None:
        """The endpoint itself when it is a coroutine whose one parameter is the request (or
        that takes none, like ``ping``); None when FastAPI must solve its parameters."""
        if not inspect.iscoroutinefunction(self.endpoint):
            return None
        parameters = list(inspect.signature(self.endpoint).parameters.values())
        if not parameters:
            bare: Callable[[], Coroutine[Any, Any, Response]] = self.endpoint

            async def call(_request: Request) -> Response:
                return await bare()

            return call
        if len(parameters) == 1 and parameters[0].annotation is Request:
            endpoint: DirectHandler = self.endpoint
            return endpoint
        return None


async def caller(request: Request) -> tuple[Runtime, Session]:
    """The runtime and the caller's session, for the hot handlers that skip dependency
    injection (see :class:`ApiRoute`): the same checks as ``SessionDep``."""
    return runtime_of(request), await current_session(request)


SessionDep = Annotated[Session, Depends(current_session)]
OptionalSessionDep = Annotated[Session | None, Depends(optional_session)]
RuntimeDep = Annotated[Runtime, Depends(runtime)]


@dataclass(frozen=True, slots=True)
class Paging:
    page: int
    per_page: int


INT64_MAX = 2**63 - 1
# Any page beyond this is past the end of every list; capping it keeps the SQL offset an int64.
MAX_PAGE = 1_000_000_000


def int64_param(raw: str) -> int | None:
    """A non-negative int64 written in ASCII digits (Go's strconv rules), else None."""
    if not (raw.isascii() and raw.isdigit()):
        return None
    value = int(raw)
    return value if value <= INT64_MAX else None


async def paging(request: Request) -> Paging:
    """Mattermost's rules: page from 0; per_page 60 by default, 200 at most; junk → defaults."""
    page = int64_param(request.query_params.get("page", ""))
    per_page = int64_param(request.query_params.get("per_page", ""))
    return Paging(
        page=0 if page is None else min(page, MAX_PAGE),
        per_page=60 if per_page is None else min(per_page, 200),
    )


PagingDep = Annotated[Paging, Depends(paging)]


MAX_BODY_DEPTH = 64


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise ValueError("NUL characters are not allowed")
    text.encode("utf-8")  # raises on lone surrogates, which no database or client accepts


def _check_decoded(data: Any) -> None:
    """Walk the decoded body without recursion: depth, and every string, key or value."""
    pending = [(data, 0)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            _check_text(value)
        elif isinstance(value, dict | list):
            if depth >= MAX_BODY_DEPTH:
                raise ValueError(f"nested deeper than {MAX_BODY_DEPTH} levels")
            if isinstance(value, dict):
                for key in value:
                    _check_text(key)
            items = value.values() if isinstance(value, dict) else value
            pending.extend((item, depth + 1) for item in items)


async def read_json(request: Request, name: str) -> Any:
    """The body as strict JSON, whatever the Content-Type says."""
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        data = decode(raw)
        _check_decoded(data)
    except (ValueError, RecursionError) as exc:  # UnicodeError is a ValueError
        raise invalid_body_param(name, str(exc)[:200]) from exc
    return data


def _nullable(field: FieldInfo) -> bool:
    return field.annotation is None or type(None) in get_args(field.annotation)


def without_nulls(data: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """Drop ``null`` for every field whose model has no use for it.

    Mattermost decodes bodies into Go structs, where ``null`` leaves a field at its zero value:
    ``"root_id": null`` is no root, exactly as if the key were absent (the ``mattermost`` PyPI
    client sends that on every post). A field typed ``X | None`` keeps its ``null``, because
    its model gives ``None`` a meaning of its own.
    """
    fields = model.model_fields
    return {
        key: value
        for key, value in data.items()
        if value is not None or (key in fields and _nullable(fields[key]))
    }


async def parse_body(request: Request, model: type[ModelT], name: str) -> ModelT:
    data = await read_json(request, name)
    if not isinstance(data, dict):
        raise invalid_body_param(name, "expected a JSON object")
    try:
        return model.model_validate(without_nulls(data, model))
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


def ok(data: Any, status: int = 200, *, secret: bool = False) -> JSONResponse:
    """``secret``: the answer carries a token or signing secret, which no cache may keep."""
    headers = {"Cache-Control": "no-store"} if secret else None
    return JsonResponse(data, status_code=status, headers=headers)


def teams_ok(teams: Team | list[Team], status: int = 200) -> JSONResponse:
    """Team objects, which carry the invite id (it opens sign-up into the team) to the team's
    and the system's admins: an answer holding one is as secret as a token, so no-store."""
    many = teams if isinstance(teams, list) else [teams]
    data = [team_json(t) for t in many] if isinstance(teams, list) else team_json(teams)
    return ok(data, status, secret=any(t.invite_id for t in many))


STATUS_OK = {"status": "OK"}
