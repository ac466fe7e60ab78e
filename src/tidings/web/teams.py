"""Choosing, joining and creating teams; creating, browsing and joining channels; invite links.

Must not import ``tidings.api`` or ``tidings.store``.
"""

import re

from fastapi import APIRouter, Request
from starlette.responses import Response

from tidings.domain.teams import TeamType
from tidings.errors import AppError
from tidings.services import teams as team_service
from tidings.services import users as user_service
from tidings.services.users import Session
from tidings.web.navigation import build_sidebar, my_team
from tidings.web.responses import PageRoute, page, redirect
from tidings.web.sessions import require_session, runtime, session_form

router = APIRouter(route_class=PageRoute, include_in_schema=False)

_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slug(display_name: str) -> str:
    """A URL name suggested by a display name: ``Build Team`` → ``build-team``."""
    return _NOT_SLUG.sub("-", display_name.lower()).strip("-")[:64]


@router.get("/select_team")
async def select_team(request: Request) -> Response:
    session = await require_session(request)
    rt = runtime(request)
    mine = await team_service.list_my_teams(rt, session.user)
    mine_ids = {t.id for t in mine}
    others = [
        t
        for t in await team_service.list_teams(rt, session.user, 0, 200)
        if t.id not in mine_ids and t.type == TeamType.OPEN
    ]
    return await page(request, "select_team.html", session=session, mine=mine, others=others)


@router.post("/select_team/join")
async def join_team(request: Request) -> Response:
    session = await require_session(request)
    form = await session_form(request, session)
    rt = runtime(request)
    team = await team_service.get_team(rt, session.user, form.text("team_id"))
    await team_service.add_team_member(rt, session.user, team.id, session.user.id)
    return redirect(f"/{team.name}/channels/town-square")


async def _create_team_page(
    request: Request,
    session: Session,
    *,
    error: str = "",
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    return await page(
        request,
        "create_team.html",
        session=session,
        status=status,
        error=error,
        values=values or {"type": "O"},
    )


@router.get("/create_team")
async def create_team_form(request: Request) -> Response:
    return await _create_team_page(request, await require_session(request))


@router.post("/create_team")
async def create_team(request: Request) -> Response:
    session = await require_session(request)
    form = await session_form(request, session)
    values = {k: form.text(k).strip() for k in ("display_name", "name", "type")}
    name = values["name"] or slug(values["display_name"])
    try:
        team = await team_service.create_team(
            runtime(request), session.user, name, values["display_name"], values["type"] or "O"
        )
    except AppError as error:
        return await _create_team_page(
            request, session, error=error.message, values=values, status=error.status
        )
    return redirect(f"/{team.name}/channels/town-square")


async def _create_channel_page(
    request: Request,
    session: Session,
    team_name: str,
    *,
    error: str = "",
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    rt = runtime(request)
    team = await my_team(rt, session.user, team_name)
    sidebar = await build_sidebar(rt, session.user, team, "")
    return await page(
        request,
        "create_channel.html",
        session=session,
        status=status,
        sidebar=sidebar,
        error=error,
        values=values or {"type": "O"},
    )


@router.get("/{team_name}/create_channel")
async def create_channel_form(request: Request, team_name: str) -> Response:
    return await _create_channel_page(request, await require_session(request), team_name)


@router.post("/{team_name}/create_channel")
async def create_channel(request: Request, team_name: str) -> Response:
    session = await require_session(request)
    form = await session_form(request, session)
    rt = runtime(request)
    team = await my_team(rt, session.user, team_name)
    values = {k: form.text(k).strip() for k in ("display_name", "name", "type", "purpose")}
    name = values["name"] or slug(values["display_name"])
    try:
        channel = await team_service.create_channel(
            rt,
            session.user,
            team.id,
            name,
            values["display_name"],
            values["type"] or "O",
            purpose=values["purpose"],
        )
    except AppError as error:
        return await _create_channel_page(
            request, session, team_name, error=error.message, values=values, status=error.status
        )
    return redirect(f"/{team.name}/channels/{channel.name}")


@router.get("/{team_name}/browse_channels")
async def browse_channels(request: Request, team_name: str) -> Response:
    session = await require_session(request)
    rt = runtime(request)
    team = await my_team(rt, session.user, team_name)
    channels = await team_service.list_public_channels(rt, session.user, team.id, 0, 200)
    joined = {c.id for c in await team_service.list_my_channels(rt, session.user, team.id)}
    sidebar = await build_sidebar(rt, session.user, team, "")
    return await page(
        request,
        "browse_channels.html",
        session=session,
        sidebar=sidebar,
        channels=channels,
        joined=joined,
    )


@router.post("/{team_name}/browse_channels/join")
async def join_channel(request: Request, team_name: str) -> Response:
    session = await require_session(request)
    form = await session_form(request, session)
    rt = runtime(request)
    team = await my_team(rt, session.user, team_name)
    channel = await team_service.get_channel(rt, session.user, form.text("channel_id"))
    await team_service.add_channel_member(rt, session.user, channel.id, session.user.id)
    return redirect(f"/{team.name}/channels/{channel.name}")


@router.get("/{team_name}/direct_messages")
async def direct_messages(request: Request, team_name: str) -> Response:
    session = await require_session(request)
    rt = runtime(request)
    team = await my_team(rt, session.user, team_name)
    people = [u for u in await user_service.list_users(rt, 0, 200) if u.is_active and not u.is_bot]
    sidebar = await build_sidebar(rt, session.user, team, "")
    return await page(
        request, "direct_messages.html", session=session, sidebar=sidebar, people=people
    )


@router.get("/{team_name}/invite")
async def invite(request: Request, team_name: str) -> Response:
    session = await require_session(request)
    rt = runtime(request)
    team = await my_team(rt, session.user, team_name)
    invite_id = await team_service.get_team_invite_id(rt, session.user, team.id)
    sidebar = await build_sidebar(rt, session.user, team, "")
    link = f"{request.base_url}signup_user_complete?id={invite_id}"
    return await page(request, "invite.html", session=session, sidebar=sidebar, link=link)
