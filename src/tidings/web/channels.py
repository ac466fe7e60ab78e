"""The channel view — sidebar, messages with paging back in time, composer, thread panel — and
the fragments our JavaScript fetches to show new posts live, rendered by the same template.

Posting from the page works without JavaScript (a form post, CSRF-checked, then a redirect);
with it, the composer posts through the API and the websocket brings the post back.

Must not import ``tidings.api`` or ``tidings.store``.
"""

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response

from tidings.domain.teams import Channel, Team
from tidings.domain.users import User
from tidings.errors import AppError
from tidings.services import hooks as hook_service
from tidings.services import posts as post_service
from tidings.services import teams as team_service
from tidings.services import users as user_service
from tidings.services.users import Session
from tidings.web.navigation import build_sidebar, my_team
from tidings.web.rendering import (
    Author,
    PostView,
    page_views,
    post_view,
    post_views,
    render_markdown,
)
from tidings.web.responses import PageRoute, fragment, page, redirect
from tidings.web.sessions import find_session, require_session, runtime, session_form

router = APIRouter(route_class=PageRoute, include_in_schema=False)

PAGE_SIZE = 30

T = TypeVar("T")


async def render_posts(request: Request, work: Callable[[], T]) -> T:
    """Run ``work`` (turning posts into HTML) off the event loop, at most
    ``TIDINGS_RENDER_CONCURRENCY`` at once.

    Rendering is CPU work in pure Python (up to ~1 s for a page of hostile posts, bounded by
    the page's Markdown budget). A worker thread keeps it off the loop, but it still holds the
    GIL, so many renders at once would starve the loop; the semaphore makes the rest queue.
    """
    slots: asyncio.Semaphore = request.app.state.render_slots
    async with slots:
        return await run_in_threadpool(work)


async def authors_of(request: Request, posts: Mapping[str, Any]) -> dict[str, Author]:
    """The accounts behind a PostList's posts, in one query."""
    ids = sorted({p["user_id"] for p in posts.values() if isinstance(p, dict) and p.get("user_id")})
    if not ids:
        return {}
    users = await user_service.list_users(runtime(request), 0, len(ids), ids)
    return {u.id: Author(u.username, u.is_bot) for u in users}


async def _thread(request: Request, me: User, post_id: str) -> list[PostView]:
    """The root first, then its replies oldest first."""
    thread = await post_service.get_thread(runtime(request), me, post_id)
    authors = await authors_of(request, thread["posts"])
    posts = [thread["posts"][i] for i in thread["order"]]
    return await render_posts(request, lambda: page_views(posts, authors))


async def _channel_page(
    request: Request,
    session: Session,
    team: Team,
    channel: Channel,
    title: str,
    *,
    error: str = "",
    draft: str = "",
    status: int = 200,
) -> Response:
    rt = runtime(request)
    me = session.user
    # A public channel the visitor has not joined is a preview: reading is allowed, joining
    # is the "Join channel" button's POST (a GET changes nothing).
    member = channel.id in {c.id for c in await team_service.list_my_channels(rt, me, team.id)}
    before = request.query_params.get("before", "")
    listing = await post_service.list_channel_posts(rt, me, channel.id, 0, PAGE_SIZE, before=before)
    authors = await authors_of(request, listing["posts"])
    posts = await render_posts(
        request, lambda: post_views(listing["posts"], listing["order"], authors)
    )
    thread: list[PostView] = []
    thread_id = request.query_params.get("thread", "")
    if thread_id:
        thread = await _thread(request, me, thread_id)
        if not thread or thread[0].channel_id != channel.id:
            thread = []
    watchers = hook_service.Watchers((), False)
    if member:
        await team_service.view_channel(rt, me, channel.id)
        watchers = await hook_service.list_watching_hooks(rt, me, channel.id)
    sidebar = await build_sidebar(rt, me, team, channel.id)
    return await page(
        request,
        "channel.html",
        session=session,
        status=status,
        sidebar=sidebar,
        channel=channel,
        title=title,
        header_html=render_markdown(channel.header or channel.purpose),
        posts=posts,
        has_more=len(listing["order"]) == PAGE_SIZE,
        paged=bool(before),
        thread=thread,
        error=error,
        draft=draft,
        member=member,
        watchers=watchers,
    )


async def _named_channel(
    request: Request, me: User, team_name: str, name: str
) -> tuple[Team, Channel]:
    rt = runtime(request)
    team = await my_team(rt, me, team_name)
    return team, await team_service.get_channel_by_name(rt, me, team.id, name)


async def _direct_channel(
    request: Request, me: User, team_name: str, username: str
) -> tuple[Team, Channel]:
    rt = runtime(request)
    team = await my_team(rt, me, team_name)
    partner = await user_service.get_user_by_username(rt, username)
    return team, await team_service.get_or_create_direct(rt, me, me.id, partner.id)


@router.get("/{team_name}/channels/{channel_name}")
async def channel_view(request: Request, team_name: str, channel_name: str) -> Response:
    session = await require_session(request)
    team, channel = await _named_channel(request, session.user, team_name, channel_name)
    return await _channel_page(request, session, team, channel, channel.display_name)


@router.post("/{team_name}/channels/{channel_name}/join")
async def channel_join(request: Request, team_name: str, channel_name: str) -> Response:
    """The preview's "Join channel" button."""
    session = await require_session(request)
    await session_form(request, session)
    team, channel = await _named_channel(request, session.user, team_name, channel_name)
    await team_service.add_channel_member(
        runtime(request), session.user, channel.id, session.user.id
    )
    return redirect(f"/{team.name}/channels/{channel.name}")


@router.get("/{team_name}/messages/@{username}")
async def direct_view(request: Request, team_name: str, username: str) -> Response:
    """The DM with ``username``; with none yet, a page whose button creates it (by POST)."""
    session = await require_session(request)
    rt = runtime(request)
    team = await my_team(rt, session.user, team_name)
    partner = await user_service.get_user_by_username(rt, username)
    channel = await team_service.find_direct(rt, session.user, session.user.id, partner.id)
    if channel is None:
        sidebar = await build_sidebar(rt, session.user, team, "")
        return await page(
            request, "direct_start.html", session=session, sidebar=sidebar, partner=partner
        )
    return await _channel_page(request, session, team, channel, f"@{username}")


@router.post("/{team_name}/messages/@{username}/open")
async def direct_open(request: Request, team_name: str, username: str) -> Response:
    """Create (or find) the DM, then show it."""
    session = await require_session(request)
    await session_form(request, session)
    team, _ = await _direct_channel(request, session.user, team_name, username)
    return redirect(f"/{team.name}/messages/@{username}")


async def _post_from_form(
    request: Request, session: Session, team: Team, channel: Channel, title: str
) -> Response:
    form = await session_form(request, session)
    message = form.text("message")
    root_id = form.text("root_id")
    if not message.strip():
        return await _channel_page(
            request, session, team, channel, title, error="Write a message first.", status=400
        )
    try:
        await post_service.create_post(
            runtime(request), session.user, channel.id, message, root_id=root_id
        )
    except AppError as error:
        return await _channel_page(
            request,
            session,
            team,
            channel,
            title,
            error=error.message,
            draft=message,
            status=error.status,
        )
    return redirect(request.url.path + (f"?thread={root_id}" if root_id else ""))


@router.post("/{team_name}/channels/{channel_name}")
async def channel_post(request: Request, team_name: str, channel_name: str) -> Response:
    session = await require_session(request)
    team, channel = await _named_channel(request, session.user, team_name, channel_name)
    return await _post_from_form(request, session, team, channel, channel.display_name)


@router.post("/{team_name}/messages/@{username}")
async def direct_post(request: Request, team_name: str, username: str) -> Response:
    session = await require_session(request)
    team, channel = await _direct_channel(request, session.user, team_name, username)
    return await _post_from_form(request, session, team, channel, f"@{username}")


# --- fragments for the live client -----------------------------------------------------------


def _signed_out() -> HTMLResponse:
    return HTMLResponse("<p>Your session has ended. Reload the page to sign in.</p>", 401)


@router.get("/web/posts/{post_id}")
async def post_fragment(request: Request, post_id: str) -> Response:
    """One post, as the channel list (or, with ``?view=thread``, the thread panel) shows it."""
    session = await find_session(request)
    if session is None:
        return _signed_out()
    # The thread call reads the post with its reply count, and checks the caller may see it.
    thread = await post_service.get_thread(runtime(request), session.user, post_id)
    found = {post_id: thread["posts"][post_id]}
    authors = await authors_of(request, found)
    view = await render_posts(request, lambda: post_view(found[post_id], authors))
    in_thread = request.query_params.get("view") == "thread"
    return fragment("_post_fragment.html", post=view, in_thread=in_thread)


@router.get("/web/channels/{channel_id}/posts")
async def posts_fragment(request: Request, channel_id: str) -> Response:
    """Older posts (``?before=<post id>``) or newer ones (``?after=``), oldest first."""
    session = await find_session(request)
    if session is None:
        return _signed_out()
    query = request.query_params
    listing = await post_service.list_channel_posts(
        runtime(request),
        session.user,
        channel_id,
        0,
        PAGE_SIZE,
        before=query.get("before", ""),
        after=query.get("after", ""),
    )
    authors = await authors_of(request, listing["posts"])
    views = await render_posts(
        request, lambda: post_views(listing["posts"], listing["order"], authors)
    )
    response = fragment("_posts_fragment.html", posts=views)
    response.headers["X-Tidings-Has-More"] = (
        "true" if len(listing["order"]) == PAGE_SIZE else "false"
    )
    return response


@router.get("/web/posts/{post_id}/thread")
async def thread_fragment(request: Request, post_id: str) -> Response:
    session = await find_session(request)
    if session is None:
        return _signed_out()
    thread = await _thread(request, session.user, post_id)
    return fragment("_thread.html", thread=thread, csrf=session.csrf_token)


@router.get("/web/teams/{team_id}/sidebar")
async def sidebar_fragment(request: Request, team_id: str) -> Response:
    session = await find_session(request)
    if session is None:
        return _signed_out()
    rt = runtime(request)
    team = await team_service.get_team(rt, session.user, team_id)
    team = await my_team(rt, session.user, team.name)
    sidebar = await build_sidebar(
        rt, session.user, team, request.query_params.get("channel_id", "")
    )
    return fragment(
        "_sidebar_fragment.html", sidebar=sidebar, me=session.user, csrf=session.csrf_token
    )


@router.get("/{team_name}")
async def team_home(team_name: str) -> Response:
    return redirect(f"/{team_name}/channels/town-square")
