"""Teams and channels: ``/api/v4/teams…`` and ``/api/v4/channels…``."""

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import JSONResponse

from tidings.api.common import (
    STATUS_OK,
    ApiRoute,
    PagingDep,
    RuntimeDep,
    SessionDep,
    body_doc,
    ok,
    parse_body,
    read_json,
    teams_ok,
)
from tidings.domain.wire import channel_json, channel_member_json, team_member_json
from tidings.errors import invalid_body_param
from tidings.services import teams as service

router = APIRouter(prefix="/api/v4", route_class=ApiRoute, tags=["teams and channels"])


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class TeamCreate(Strict):
    name: str
    display_name: str
    type: str = "O"


class ChannelCreate(Strict):
    team_id: str
    name: str
    display_name: str
    type: str = "O"
    purpose: str = ""
    header: str = ""


class MemberAdd(Strict):
    user_id: str
    team_id: str = ""


@router.post("/teams", status_code=201, openapi_extra=body_doc(TeamCreate))
async def create_team(request: Request, rt: RuntimeDep, session: SessionDep) -> JSONResponse:
    body = await parse_body(request, TeamCreate, "team")
    team = await service.create_team(rt, session.user, body.name, body.display_name, body.type)
    return teams_ok(team, 201)


@router.get("/teams")
async def list_teams(rt: RuntimeDep, session: SessionDep, paging: PagingDep) -> JSONResponse:
    return teams_ok(await service.list_teams(rt, session.user, paging.page, paging.per_page))


@router.get("/teams/name/{name}")
async def team_by_name(name: str, rt: RuntimeDep, session: SessionDep) -> JSONResponse:
    return teams_ok(await service.get_team_by_name(rt, session.user, name))


@router.get("/teams/name/{team_name}/channels/name/{channel_name}")
async def channel_by_team_name(
    team_name: str, channel_name: str, rt: RuntimeDep, session: SessionDep
) -> JSONResponse:
    team = await service.get_team_by_name(rt, session.user, team_name)
    return ok(
        channel_json(await service.get_channel_by_name(rt, session.user, team.id, channel_name))
    )


@router.get("/teams/{team_id}")
async def get_team(team_id: str, rt: RuntimeDep, session: SessionDep) -> JSONResponse:
    return teams_ok(await service.get_team(rt, session.user, team_id))


@router.get("/teams/{team_id}/members")
async def team_members(
    team_id: str, rt: RuntimeDep, session: SessionDep, paging: PagingDep
) -> JSONResponse:
    members = await service.list_team_members(
        rt, session.user, team_id, paging.page, paging.per_page
    )
    return ok([team_member_json(m) for m in members])


@router.post("/teams/{team_id}/members", status_code=201, openapi_extra=body_doc(MemberAdd))
async def add_team_member(
    team_id: str, request: Request, rt: RuntimeDep, session: SessionDep
) -> JSONResponse:
    body = await parse_body(request, MemberAdd, "team_member")
    member = await service.add_team_member(rt, session.user, team_id, body.user_id)
    return ok(team_member_json(member), 201)


@router.get("/teams/{team_id}/members/{user_id}")
async def team_member(
    team_id: str, user_id: str, rt: RuntimeDep, session: SessionDep
) -> JSONResponse:
    target = session.user.id if user_id == "me" else user_id
    return ok(team_member_json(await service.get_team_member(rt, session.user, team_id, target)))


@router.get("/teams/{team_id}/channels")
async def team_channels(
    team_id: str, rt: RuntimeDep, session: SessionDep, paging: PagingDep
) -> JSONResponse:
    channels = await service.list_public_channels(
        rt, session.user, team_id, paging.page, paging.per_page
    )
    return ok([channel_json(c) for c in channels])


@router.get("/teams/{team_id}/channels/name/{channel_name}")
async def channel_by_name(
    team_id: str, channel_name: str, rt: RuntimeDep, session: SessionDep
) -> JSONResponse:
    return ok(
        channel_json(await service.get_channel_by_name(rt, session.user, team_id, channel_name))
    )


@router.post("/channels", status_code=201, openapi_extra=body_doc(ChannelCreate))
async def create_channel(request: Request, rt: RuntimeDep, session: SessionDep) -> JSONResponse:
    body = await parse_body(request, ChannelCreate, "channel")
    channel = await service.create_channel(
        rt,
        session.user,
        body.team_id,
        body.name,
        body.display_name,
        body.type,
        body.purpose,
        body.header,
    )
    return ok(channel_json(channel), 201)


@router.post("/channels/direct", status_code=201)
async def create_direct(request: Request, rt: RuntimeDep, session: SessionDep) -> JSONResponse:
    ids = await read_json(request, "user_ids")
    if not isinstance(ids, list) or len(ids) != 2 or not all(isinstance(i, str) for i in ids):
        raise invalid_body_param("user_ids", "expected two user ids")
    channel = await service.get_or_create_direct(rt, session.user, ids[0], ids[1])
    return ok(channel_json(channel), 201)


@router.get("/channels/{channel_id}")
async def get_channel(channel_id: str, rt: RuntimeDep, session: SessionDep) -> JSONResponse:
    return ok(channel_json(await service.get_channel(rt, session.user, channel_id)))


@router.get("/channels/{channel_id}/members")
async def channel_members(
    channel_id: str, rt: RuntimeDep, session: SessionDep, paging: PagingDep
) -> JSONResponse:
    members = await service.list_channel_members(
        rt, session.user, channel_id, paging.page, paging.per_page
    )
    return ok([channel_member_json(m) for m in members])


@router.post("/channels/{channel_id}/members", status_code=201, openapi_extra=body_doc(MemberAdd))
async def add_channel_member(
    channel_id: str, request: Request, rt: RuntimeDep, session: SessionDep
) -> JSONResponse:
    body = await parse_body(request, MemberAdd, "channel_member")
    member = await service.add_channel_member(rt, session.user, channel_id, body.user_id)
    return ok(channel_member_json(member), 201)


@router.delete("/channels/{channel_id}/members/{user_id}")
async def remove_channel_member(
    channel_id: str, user_id: str, rt: RuntimeDep, session: SessionDep
) -> JSONResponse:
    target = session.user.id if user_id == "me" else user_id
    await service.remove_channel_member(rt, session.user, channel_id, target)
    return ok(STATUS_OK)


@router.post("/channels/members/{user_id}/view")
async def view_channel(
    user_id: str, request: Request, rt: RuntimeDep, session: SessionDep
) -> JSONResponse:
    body = await read_json(request, "channel_view")
    if body is not None and not isinstance(body, dict):
        raise invalid_body_param("channel_view", "expected a JSON object")
    channel_id = (body or {}).get("channel_id")
    if channel_id is None:  # absent or null: no channel, as in Mattermost
        channel_id = ""
    if not isinstance(channel_id, str):
        raise invalid_body_param("channel_id")
    if channel_id:
        await service.view_channel(rt, session.user, channel_id)
    return ok({"status": "OK", "last_viewed_at_times": {}})
