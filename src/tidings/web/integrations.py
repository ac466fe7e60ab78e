"""Integrations → Outgoing Webhooks: list, add, edit, regenerate the token, delete, ping,
re-enable, and the delivery log with redeliver.

The form follows the seed's "Set Up an Outgoing Webhook": a channel dropdown (public channels,
and with ``EnableOutgoingWebhooksInPrivateChannels`` the private ones the visitor belongs to),
comma-separated trigger words, the trigger mode, callback URLs one per line, plus content
type, display name, description, username and icon. The service validates; its ``AppError``
messages are shown beside the field they concern. The list only ever holds hooks the viewer
may manage (their own, or every hook for team and system admins), so it shows their tokens
and signing secrets.

Must not import ``tidings.api`` or ``tidings.store``.
"""

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from tidings.domain.hooks import FORM_CONTENT_TYPE, JSON_CONTENT_TYPE, OutgoingHook
from tidings.domain.teams import Channel, ChannelType, Team
from tidings.errors import AppError, BadRequest, FeatureDisabled, NotFound
from tidings.services import deliveries as delivery_service
from tidings.services import hooks as hook_service
from tidings.services import teams as team_service
from tidings.services import users as user_service
from tidings.services.hooks import HookInput
from tidings.services.users import Session
from tidings.web.navigation import build_sidebar, my_team
from tidings.web.responses import PageRoute, page, redirect
from tidings.web.sessions import Form, require_session, runtime, session_form

router = APIRouter(route_class=PageRoute, include_in_schema=False)

BASE = "/{team_name}/integrations/outgoing_webhooks"
CONTENT_TYPES = (
    (FORM_CONTENT_TYPE, "application/x-www-form-urlencoded (form fields)"),
    (JSON_CONTENT_TYPE, "application/json"),
)
NOTICES = {
    "regenerated": "A new token and signing secret were generated. Update your receiver.",
    "deleted": "The outgoing webhook was deleted.",
    "saved": "Your changes were saved.",
    "enabled": "The outgoing webhook is enabled again.",
    "redelivered": "The delivery was queued again.",
    "pinged": "A test event was sent to every callback URL; the results are below.",
}
# The delivery log's "redeliver failed deliveries since" choices: seconds back from now.
REDELIVER_WINDOWS = ((3600, "the last hour"), (86_400, "the last day"), (604_800, "the last week"))
# Which form field an error from the service concerns, so the message shows beside it.
ERROR_FIELDS = {
    "model.outgoing_hook.is_valid.words.app_error": "trigger_words",
    "model.outgoing_hook.is_valid.trigger_words.app_error": "trigger_words",
    "api.webhook.create_outgoing.triggers.app_error": "trigger_words",
    "api.webhook.create_outgoing.intersect.app_error": "trigger_words",
    "api.webhook.update_outgoing.intersect.app_error": "trigger_words",
    "model.outgoing_hook.is_valid.callback.app_error": "callback_urls",
    "model.outgoing_hook.is_valid.url.app_error": "callback_urls",
    "model.outgoing_hook.is_valid.channel_id.app_error": "channel_id",
    "api.webhook.create_outgoing.not_open.app_error": "channel_id",
    "app.channel.get.existing.app_error": "channel_id",
    "api.webhook.create_outgoing.permissions.app_error": "channel_id",
    "model.outgoing_hook.is_valid.display_name.app_error": "display_name",
    "model.outgoing_hook.is_valid.description.app_error": "description",
    "model.outgoing_hook.is_valid.content_type.app_error": "content_type",
    "model.outgoing_hook.username.app_error": "username",
    "model.outgoing_hook.icon_url.app_error": "icon_url",
    "model.outgoing_hook.is_valid.timeout_seconds.app_error": "timeout_seconds",
}


def error_field(error: AppError) -> str:
    """The form field an error concerns, or "" for errors about the whole form."""
    # Mattermost reuses the "disabled" id, with 403, for a hook on a non-public channel.
    if error.id == "api.outgoing_webhook.disabled.app_error" and error.status == 403:
        return "channel_id"
    return ERROR_FIELDS.get(error.id, "")


FIELDS = (
    "display_name",
    "description",
    "content_type",
    "channel_id",
    "trigger_words",
    "trigger_when",
    "callback_urls",
    "username",
    "icon_url",
    "timeout_seconds",
    "extended_payload",
    "trigger_on_bot_posts",
)


@dataclass(frozen=True, slots=True)
class HookRow:
    hook: OutgoingHook
    channel: str  # "# Name", "🔒 Name", "" for a team-wide hook
    creator: str


async def _hook_channels(request: Request, session: Session, team: Team) -> list[Channel]:
    """The team's public channels, then the private ones the visitor belongs to."""
    rt = runtime(request)
    public = await team_service.list_public_channels(rt, session.user, team.id, 0, 200)
    mine = await team_service.list_my_channels(rt, session.user, team.id)
    return public + [c for c in mine if c.type == ChannelType.PRIVATE]


def _channel_label(hook: OutgoingHook, channels: dict[str, Channel]) -> str:
    if not hook.channel_id:
        return ""
    channel = channels.get(hook.channel_id)
    if channel is None:
        return "A channel you are not in"
    return ("🔒 " if channel.type == ChannelType.PRIVATE else "# ") + channel.display_name


def hook_input(form: Form, team_id: str) -> HookInput:
    """The form's fields as the service's input; all fields are sent, so all are replaced."""
    words = tuple(
        word.strip()
        for line in form.text("trigger_words").splitlines()
        for word in line.split(",")
        if word.strip()
    )
    urls = tuple(line.strip() for line in form.text("callback_urls").splitlines() if line.strip())
    when = form.text("trigger_when", "0")
    if when not in ("0", "1"):
        raise BadRequest("web.hook.trigger_when.app_error", "Choose when the trigger word matches.")
    raw_timeout = form.text("timeout_seconds").strip()
    if raw_timeout and not raw_timeout.isdigit():
        raise BadRequest(
            "model.outgoing_hook.is_valid.timeout_seconds.app_error",
            "The request timeout must be a whole number of seconds.",
        )
    return HookInput(
        team_id=team_id,
        channel_id=form.text("channel_id").strip(),
        trigger_words=words,
        trigger_when=int(when),
        callback_urls=urls,
        display_name=form.text("display_name").strip(),
        description=form.text("description").strip(),
        content_type=form.text("content_type").strip(),
        username=form.text("username").strip(),
        icon_url=form.text("icon_url").strip(),
        timeout_seconds=int(raw_timeout) if raw_timeout else 0,
        extended_payload=form.checked("extended_payload"),
        trigger_on_bot_posts=form.checked("trigger_on_bot_posts"),
    )


def form_values(hook: OutgoingHook | None) -> dict[str, str]:
    if hook is None:
        return {"content_type": FORM_CONTENT_TYPE, "trigger_when": "0"}
    return {
        "display_name": hook.display_name,
        "description": hook.description,
        "content_type": hook.content_type or FORM_CONTENT_TYPE,
        "channel_id": hook.channel_id,
        "trigger_words": ", ".join(hook.trigger_words),
        "trigger_when": str(hook.trigger_when),
        "callback_urls": "\n".join(hook.callback_urls),
        "username": hook.username,
        "icon_url": hook.icon_url,
        "timeout_seconds": str(hook.timeout_seconds),
        "extended_payload": "on" if hook.extended_payload else "",
        "trigger_on_bot_posts": "on" if hook.trigger_on_bot_posts else "",
    }


async def _frame(request: Request, session: Session, team_name: str) -> tuple[Team, Any]:
    """The team (the visitor must belong to it) and the sidebar every integrations page shows."""
    rt = runtime(request)
    team = await my_team(rt, session.user, team_name)
    return team, await build_sidebar(rt, session.user, team, "")


async def _team_hook(
    request: Request, session: Session, team_name: str, hook_id: str
) -> tuple[Team, OutgoingHook]:
    """A hook of the team named in the URL (another team's hook is not found here)."""
    rt = runtime(request)
    team = await my_team(rt, session.user, team_name)
    hook = await hook_service.get_hook(rt, session.user, hook_id)
    if hook.team_id != team.id:
        raise NotFound("app.webhooks.get_outgoing.app_error", "Unable to get the webhook.")
    return team, hook


@router.get("/{team_name}/integrations")
async def integrations(request: Request, team_name: str) -> Response:
    return redirect(f"/{team_name}/integrations/outgoing_webhooks")


@router.get(BASE)
async def hook_list(request: Request, team_name: str) -> Response:
    session = await require_session(request)
    rt = runtime(request)
    team, sidebar = await _frame(request, session, team_name)
    disabled = ""
    hooks: list[OutgoingHook] = []
    try:
        hooks = await hook_service.list_hooks(rt, session.user, team_id=team.id, per_page=200)
    except FeatureDisabled as error:
        disabled = error.message
    channels = {c.id: c for c in await _hook_channels(request, session, team)}
    creator_ids = sorted({h.creator_id for h in hooks})
    creators = {
        u.id: u.username
        for u in (
            await user_service.list_users(rt, 0, len(creator_ids), creator_ids)
            if creator_ids
            else []
        )
    }
    rows = [HookRow(h, _channel_label(h, channels), creators.get(h.creator_id, "")) for h in hooks]
    query = request.query_params
    return await page(
        request,
        "hooks.html",
        session=session,
        sidebar=sidebar,
        rows=rows,
        disabled=disabled,
        created=query.get("created", ""),
        notice=NOTICES.get(query.get("notice", ""), ""),
    )


async def _form_page(
    request: Request,
    session: Session,
    team_name: str,
    *,
    hook: OutgoingHook | None,
    values: dict[str, str],
    error: AppError | None = None,
) -> Response:
    rt = runtime(request)
    team, sidebar = await _frame(request, session, team_name)
    webhooks = await rt.webhook_settings()
    channels = await _hook_channels(request, session, team)
    if not webhooks.private_channels:
        # A hook that already watches a private channel keeps it listed, so saving the form
        # does not move it (the service refuses the save while the switch is off).
        channels = [
            c
            for c in channels
            if c.type == ChannelType.PUBLIC or (hook is not None and c.id == hook.channel_id)
        ]
    field = error_field(error) if error else ""
    default_timeout = webhooks.timeout_seconds
    return await page(
        request,
        "hook_form.html",
        session=session,
        status=error.status if error else 200,
        sidebar=sidebar,
        hook=hook,
        values=values,
        channels=channels,
        content_types=CONTENT_TYPES,
        default_timeout=default_timeout,
        private_channels=webhooks.private_channels,
        error=error.message if error else "",
        error_field=field,
    )


@router.get(BASE + "/add")
async def add_form(request: Request, team_name: str) -> Response:
    session = await require_session(request)
    return await _form_page(request, session, team_name, hook=None, values=form_values(None))


@router.post(BASE + "/add")
async def add(request: Request, team_name: str) -> Response:
    session = await require_session(request)
    form = await session_form(request, session)
    team = await my_team(runtime(request), session.user, team_name)
    values = {name: form.text(name) for name in FIELDS}
    try:
        hook = await hook_service.create_hook(
            runtime(request), session.user, hook_input(form, team.id)
        )
    except AppError as error:
        return await _form_page(request, session, team_name, hook=None, values=values, error=error)
    return redirect(f"/{team.name}/integrations/outgoing_webhooks?created={hook.id}")


@router.get(BASE + "/edit")
async def edit_form(request: Request, team_name: str) -> Response:
    session = await require_session(request)
    _, hook = await _team_hook(request, session, team_name, request.query_params.get("id", ""))
    return await _form_page(request, session, team_name, hook=hook, values=form_values(hook))


@router.post(BASE + "/edit")
async def edit(request: Request, team_name: str) -> Response:
    session = await require_session(request)
    form = await session_form(request, session)
    team, hook = await _team_hook(request, session, team_name, form.text("id"))
    values = {name: form.text(name) for name in FIELDS}
    try:
        await hook_service.update_hook(
            runtime(request), session.user, hook.id, hook_input(form, team.id)
        )
    except AppError as error:
        return await _form_page(request, session, team_name, hook=hook, values=values, error=error)
    return redirect(f"/{team.name}/integrations/outgoing_webhooks?notice=saved")


@router.post(BASE + "/regen")
async def regenerate(request: Request, team_name: str) -> Response:
    session = await require_session(request)
    form = await session_form(request, session)
    hook = await hook_service.regenerate_token(runtime(request), session.user, form.text("id"))
    return redirect(
        f"/{team_name}/integrations/outgoing_webhooks?notice=regenerated&created={hook.id}"
    )


@router.get(BASE + "/delete")
async def delete_confirm(request: Request, team_name: str) -> Response:
    session = await require_session(request)
    _, hook = await _team_hook(request, session, team_name, request.query_params.get("id", ""))
    _, sidebar = await _frame(request, session, team_name)
    return await page(request, "hook_delete.html", session=session, sidebar=sidebar, hook=hook)


@router.post(BASE + "/delete")
async def delete(request: Request, team_name: str) -> Response:
    session = await require_session(request)
    form = await session_form(request, session)
    await hook_service.delete_hook(runtime(request), session.user, form.text("id"))
    return redirect(f"/{team_name}/integrations/outgoing_webhooks?notice=deleted")


@router.post(BASE + "/enable")
async def enable(request: Request, team_name: str) -> Response:
    session = await require_session(request)
    form = await session_form(request, session)
    await hook_service.set_hook_enabled(runtime(request), session.user, form.text("id"), True)
    return redirect(f"/{team_name}/integrations/outgoing_webhooks?notice=enabled")


@router.post(BASE + "/ping")
async def ping(request: Request, team_name: str) -> Response:
    session = await require_session(request)
    form = await session_form(request, session)
    hook_id = form.text("id")
    await delivery_service.ping_and_wait(runtime(request), session.user, hook_id)
    return redirect(
        f"/{team_name}/integrations/outgoing_webhooks/deliveries?id={hook_id}&notice=pinged"
    )


@router.get(BASE + "/deliveries")
async def deliveries(request: Request, team_name: str) -> Response:
    session = await require_session(request)
    rt = runtime(request)
    query = request.query_params
    _, hook = await _team_hook(request, session, team_name, query.get("id", ""))
    _, sidebar = await _frame(request, session, team_name)
    status = query.get("status", "")
    found = await delivery_service.list_deliveries(rt, session.user, hook.id, status, 0, 50)
    detail = None
    if query.get("delivery"):
        detail = await delivery_service.get_delivery(rt, session.user, hook.id, query["delivery"])
    return await page(
        request,
        "hook_deliveries.html",
        session=session,
        sidebar=sidebar,
        hook=hook,
        deliveries=found,
        detail=detail,
        status_filter=status,
        windows=REDELIVER_WINDOWS,
        notice=_notice(query),
    )


def _notice(query: Any) -> str:
    """The fixed notices by name; a bulk redeliver's says how many (from its redirect)."""
    if query.get("notice") != "bulk":
        return NOTICES.get(query.get("notice", ""), "")
    raw = query.get("count", "")
    count = int(raw) if raw.isdigit() and len(raw) < 10 else 0
    text = f"{count} failed {'delivery was' if count == 1 else 'deliveries were'} queued again."
    if query.get("more") == "1":
        text += " More remain: send the form again once these are done."
    return text


@router.post(BASE + "/deliveries/redeliver")
async def redeliver(request: Request, team_name: str) -> Response:
    session = await require_session(request)
    form = await session_form(request, session)
    hook_id, delivery_id = form.text("id"), form.text("delivery")
    await delivery_service.redeliver(runtime(request), session.user, hook_id, delivery_id)
    return redirect(
        f"/{team_name}/integrations/outgoing_webhooks/deliveries"
        f"?id={hook_id}&delivery={delivery_id}&notice=redelivered"
    )


@router.post(BASE + "/deliveries/redeliver_failed")
async def redeliver_failed(request: Request, team_name: str) -> Response:
    session = await require_session(request)
    form = await session_form(request, session)
    rt = runtime(request)
    hook_id, window = form.text("id"), form.text("window")
    if window not in {str(seconds) for seconds, _ in REDELIVER_WINDOWS}:
        raise BadRequest("web.form.invalid.app_error", "Choose how far back to redeliver.")
    since = rt.clock.now_ms() - int(window) * 1000
    done = await delivery_service.redeliver_failed(rt, session.user, hook_id, since)
    return redirect(
        f"/{team_name}/integrations/outgoing_webhooks/deliveries?id={hook_id}&status=failed"
        f"&notice=bulk&count={done.count}&more={int(done.more)}"
    )
