"""Users and sessions: ``/api/v4/users…``."""

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import JSONResponse

from tidings.api.common import (
    AUTH_COOKIE,
    CSRF_COOKIE,
    STATUS_OK,
    USER_COOKIE,
    ApiRoute,
    OptionalSessionDep,
    PagingDep,
    RuntimeDep,
    SessionDep,
    body_doc,
    caller,
    client_address,
    ok,
    parse_body,
    read_json,
    teams_ok,
)
from tidings.domain import server_config
from tidings.domain.wire import channel_json, channel_member_json, user_json
from tidings.errors import invalid_body_param
from tidings.services import teams as team_service
from tidings.services import users as service
from tidings.services.runtime import Runtime

router = APIRouter(prefix="/api/v4", route_class=ApiRoute, tags=["users"])


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class UserCreate(Strict):
    username: str
    email: str
    password: str
    nickname: str = ""
    first_name: str = ""
    last_name: str = ""


class LoginBody(Strict):
    login_id: str
    password: str


class UserPatch(Strict):
    nickname: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    position: str | None = None
    email: str | None = None


class PasswordBody(Strict):
    current_password: str = ""
    new_password: str


class RolesBody(Strict):
    roles: str


class ActiveBody(Strict):
    active: bool


def _me(user_id: str, session_user_id: str) -> str:
    return session_user_id if user_id == "me" else user_id


@router.post("/users", status_code=201, openapi_extra=body_doc(UserCreate))
async def create_user(
    request: Request, rt: RuntimeDep, session: OptionalSessionDep
) -> JSONResponse:
    body = await parse_body(request, UserCreate, "user")
    new = service.NewUser(**body.model_dump())
    user = await service.create_user(
        rt, session.user if session else None, new, invite_id=request.query_params.get("iid", "")
    )
    return ok(user_json(user), 201)


async def _require_json(request: Request, rt: Runtime, name: str) -> None:
    """Refuse a login body a cross-site page could have sent.

    A cross-site form or ``fetch`` can send ``text/plain`` or a form encoding without a CORS
    preflight, but never ``application/json``. Some real clients (the ``mattermost`` package)
    send their JSON with no ``Content-Type`` at all; so can a cross-site ``fetch`` of a typeless
    blob, but a browser then always sends ``Origin``. So an undeclared body is read as JSON only
    when no other site's page sent it: no ``Origin``, or our own (or an ``AllowCorsFrom``) one.
    """
    declared = request.headers.get("content-type")
    media_type = (declared or "").split(";", 1)[0].strip().lower()
    if media_type == "application/json":
        return
    if declared is None:
        origin = request.headers.get("origin")
        if origin is None or server_config.origin_allowed(
            await rt.config(), origin, request.headers.get("host", "")
        ):
            return
    raise invalid_body_param(name, "the body must be sent as application/json")


@router.post("/users/login", openapi_extra=body_doc(LoginBody))
async def login(request: Request, rt: RuntimeDep) -> JSONResponse:
    await request.body()  # read (and size-capped, 413) first, as every other body is
    await _require_json(request, rt, "login_id")
    body = await parse_body(request, LoginBody, "login_id")
    user, token, csrf = await service.login(
        rt,
        body.login_id,
        body.password,
        address=client_address(request),
    )
    response = ok(user_json(user), secret=True)
    response.headers["Token"] = token
    secure = request.url.scheme == "https"
    max_age = rt.settings.session_lifetime_seconds
    response.set_cookie(
        AUTH_COOKIE, token, max_age=max_age, httponly=True, samesite="lax", secure=secure
    )
    response.set_cookie(USER_COOKIE, user.id, max_age=max_age, samesite="lax", secure=secure)
    response.set_cookie(CSRF_COOKIE, csrf, max_age=max_age, samesite="lax", secure=secure)
    return response


@router.post("/users/logout")
async def logout(rt: RuntimeDep, session: SessionDep) -> JSONResponse:
    await service.logout(rt, session)
    response = ok(STATUS_OK)
    for cookie in (AUTH_COOKIE, USER_COOKIE, CSRF_COOKIE):
        response.delete_cookie(cookie)
    return response


@router.get("/users")
async def list_users(rt: RuntimeDep, session: SessionDep, paging: PagingDep) -> JSONResponse:
    users = await service.list_users(rt, paging.page, paging.per_page)
    return ok(
        [
            user_json(u, include_email=session.user.is_system_admin or u.id == session.user.id)
            for u in users
        ]
    )


@router.post("/users/ids")
async def users_by_ids(request: Request, rt: RuntimeDep, session: SessionDep) -> JSONResponse:
    ids = await read_json(request, "user_ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise invalid_body_param("user_ids")
    users = await service.list_users(rt, 0, 200, ids[:200])
    return ok([user_json(u, include_email=session.user.is_system_admin) for u in users])


@router.get("/users/me")
async def get_me(request: Request) -> JSONResponse:
    _, session = await caller(request)
    return ok(user_json(session.user))


@router.get("/users/username/{username}")
async def get_by_username(username: str, rt: RuntimeDep, session: SessionDep) -> JSONResponse:
    user = await service.get_user_by_username(rt, username)
    return ok(
        user_json(user, include_email=session.user.is_system_admin or user.id == session.user.id)
    )


@router.get("/users/{user_id}")
async def get_user(user_id: str, rt: RuntimeDep, session: SessionDep) -> JSONResponse:
    user = await service.get_user(rt, _me(user_id, session.user.id))
    return ok(
        user_json(user, include_email=session.user.is_system_admin or user.id == session.user.id)
    )


@router.put("/users/{user_id}/patch", openapi_extra=body_doc(UserPatch))
async def patch_user(
    user_id: str, request: Request, rt: RuntimeDep, session: SessionDep
) -> JSONResponse:
    body = await parse_body(request, UserPatch, "user")
    changes = {k: v for k, v in body.model_dump().items() if v is not None}
    user = await service.patch_user(rt, session.user, _me(user_id, session.user.id), changes)
    return ok(user_json(user))


@router.put("/users/{user_id}/password", openapi_extra=body_doc(PasswordBody))
async def change_password(
    user_id: str, request: Request, rt: RuntimeDep, session: SessionDep
) -> JSONResponse:
    body = await parse_body(request, PasswordBody, "password")
    await service.change_password(
        rt,
        session.user,
        _me(user_id, session.user.id),
        body.current_password,
        body.new_password,
        keep_session=session.token_hash,
    )
    return ok(STATUS_OK)


@router.put("/users/{user_id}/roles", openapi_extra=body_doc(RolesBody))
async def set_roles(
    user_id: str, request: Request, rt: RuntimeDep, session: SessionDep
) -> JSONResponse:
    body = await parse_body(request, RolesBody, "roles")
    await service.set_roles(rt, session.user, user_id, body.roles)
    return ok(STATUS_OK)


@router.put("/users/{user_id}/active", openapi_extra=body_doc(ActiveBody))
async def set_active(
    user_id: str, request: Request, rt: RuntimeDep, session: SessionDep
) -> JSONResponse:
    body = await parse_body(request, ActiveBody, "active")
    await service.set_active(rt, session.user, user_id, body.active)
    return ok(STATUS_OK)


@router.get("/users/{user_id}/teams")
async def user_teams(user_id: str, rt: RuntimeDep, session: SessionDep) -> JSONResponse:
    teams = await team_service.list_user_teams(rt, session.user, _me(user_id, session.user.id))
    return teams_ok(teams)


@router.get("/users/{user_id}/teams/{team_id}/channels")
async def user_channels(
    user_id: str, team_id: str, rt: RuntimeDep, session: SessionDep
) -> JSONResponse:
    target = _me(user_id, session.user.id)
    channels = await team_service.list_user_channels(rt, session.user, target, team_id)
    return ok([channel_json(c) for c in channels])


@router.get("/users/{user_id}/teams/{team_id}/channels/members")
async def user_channel_members(
    user_id: str, team_id: str, rt: RuntimeDep, session: SessionDep
) -> JSONResponse:
    target = _me(user_id, session.user.id)
    members = await team_service.list_user_channel_members(rt, session.user, target, team_id)
    return ok([channel_member_json(m) for m in members])
