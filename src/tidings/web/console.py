"""The System Console: Service Settings (the webhook switches and limits), users and teams.

System admins only; every change goes through the same services as the API
(``patch_config``, ``create_user``, ``set_roles``, ``set_active``, ``change_password``).

Must not import ``tidings.api`` or ``tidings.store``.
"""

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from tidings.domain.permissions import MANAGE_SYSTEM, can_manage_system
from tidings.errors import AppError, BadRequest, permission_error
from tidings.services import settings as settings_service
from tidings.services import teams as team_service
from tidings.services import users as user_service
from tidings.services.users import NewUser, Session
from tidings.web.responses import PageRoute, page, redirect
from tidings.web.sessions import Form, require_session, runtime, session_form

router = APIRouter(route_class=PageRoute, include_in_schema=False)

USERS_PER_PAGE = 50


@dataclass(frozen=True, slots=True)
class Setting:
    """One System Console field: where it lives in the config document and how to explain it."""

    section: str
    key: str
    label: str
    help: str
    kind: str  # "bool", "int", "text" or "seconds_list"

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}"


SETTINGS = (
    Setting(
        "ServiceSettings",
        "EnableOutgoingWebhooks",
        "Enable outgoing webhooks",
        "When on, posts that match a hook are sent to its callback URLs. When off, no hook "
        "fires and the Outgoing Webhooks pages and API answer that the feature is disabled.",
        "bool",
    ),
    Setting(
        "ServiceSettings",
        "EnablePostUsernameOverride",
        "Enable integrations to override usernames",
        "When on, a webhook reply may post under the name it gives in username (always shown "
        "with a BOT tag). When off, replies show the hook's username setting or the creator.",
        "bool",
    ),
    Setting(
        "ServiceSettings",
        "EnablePostIconOverride",
        "Enable integrations to override profile picture icons",
        "When on, a webhook reply may choose its picture with icon_url or icon_emoji.",
        "bool",
    ),
    Setting(
        "ServiceSettings",
        "OutgoingIntegrationRequestsTimeout",
        "Outgoing integration requests timeout (seconds)",
        "How long to wait for a callback URL to answer before the attempt counts as failed "
        "(and is retried). A hook may set its own timeout.",
        "int",
    ),
    Setting(
        "ServiceSettings",
        "AllowedUntrustedInternalConnections",
        "Allow untrusted internal connections to",
        "Callback URLs may not reach loopback, private or link-local addresses, or this "
        "server, unless listed here. Separate entries with spaces or commas: host names "
        "(matched exactly as written in the URL), IP addresses or CIDR ranges, for example "
        "127.0.0.1 10.0.0.0/8 ci.internal. List only hosts you trust.",
        "text",
    ),
    Setting(
        "ServiceSettings",
        "EnableMemberOutgoingWebhooks",
        "Let team members manage their own outgoing webhooks",
        "When off, only team admins and system admins may create and edit outgoing webhooks.",
        "bool",
    ),
    Setting(
        "ServiceSettings",
        "EnableOutgoingWebhooksInPrivateChannels",
        "Let outgoing webhooks watch private channels",
        "When on, a hook may watch a private channel its creator belongs to; it fires only "
        "while the creator is a member. When off, hooks watch public channels only.",
        "bool",
    ),
    Setting(
        "ServiceSettings",
        "OutgoingWebhookResponseUrlMinutes",
        "Deferred replies accepted for (minutes)",
        "How long a delivery's response_url (sent to hooks with the extended payload) takes "
        "replies; each works at most 5 times (1–1440).",
        "int",
    ),
    Setting(
        "ServiceSettings",
        "OutgoingWebhookMaxChainDepth",
        "Longest chain of bots",
        "A hook that fires on bot posts fires for a webhook reply only while fewer than this "
        "many replies led to it, so bots answering each other stop (0–10).",
        "int",
    ),
    Setting(
        "ServiceSettings",
        "OutgoingWebhookRetryScheduleSeconds",
        "Retry schedule (seconds)",
        "The waits before each retry of a failed delivery, separated by commas. Leave empty "
        "to never retry.",
        "seconds_list",
    ),
    Setting(
        "ServiceSettings",
        "OutgoingWebhookMaxConcurrencyPerDestination",
        "Concurrent requests per destination",
        "At most this many requests run at once to one scheme, host and port, so one slow "
        "receiver cannot hold up the others (1–256).",
        "int",
    ),
    Setting(
        "ServiceSettings",
        "OutgoingWebhookMaxConcurrencyPerOwner",
        "Concurrent requests per hook owner",
        "At most this many requests run at once for the hooks of one user, so one user's slow "
        "receivers cannot hold every sender. 0: a quarter of the worker's senders.",
        "int",
    ),
    Setting(
        "ServiceSettings",
        "OutgoingWebhookMaxConcurrencyPerTeam",
        "Concurrent requests per team",
        "At most this many requests run at once for the hooks of one team, so one team's many "
        "users cannot hold every sender. 0: no team cap (right for a server with one team).",
        "int",
    ),
    Setting(
        "ServiceSettings",
        "OutgoingWebhookDeliveryRetentionDays",
        "Keep the delivery log for (days)",
        "Deliveries and their attempts older than this are removed.",
        "int",
    ),
    Setting(
        "ServiceSettings",
        "OutgoingWebhookAutoDisableHours",
        "Disable a failing hook after (hours)",
        "A hook whose every delivery failed for this long is disabled and its owner told.",
        "int",
    ),
    Setting(
        "ServiceSettings",
        "OutgoingWebhookAutoDisableMinFailures",
        "…and at least this many failed deliveries",
        "A hook is only disabled for sustained failure after this many failed deliveries.",
        "int",
    ),
    Setting(
        "TeamSettings",
        "SiteName",
        "Site name",
        "Shown in page titles and on the sign-in page.",
        "text",
    ),
    Setting(
        "TeamSettings",
        "EnableOpenServer",
        "Enable open server",
        "When on, anyone may sign up without an invite link. When off, accounts are created "
        "by admins or through a team's invite link.",
        "bool",
    ),
    Setting(
        "TeamSettings",
        "EnableTeamCreation",
        "Enable team creation",
        "When on, any user may create a team (and becomes its admin). When off, only system "
        "admins create teams.",
        "bool",
    ),
    Setting(
        "PasswordSettings",
        "MinimumLength",
        "Minimum password length",
        "New passwords (sign-up, change, admin reset) need at least this many characters (8–72).",
        "int",
    ),
    Setting(
        "PasswordSettings",
        "Lowercase",
        "Require a lowercase letter",
        "New passwords must contain at least one of a–z.",
        "bool",
    ),
    Setting(
        "PasswordSettings",
        "Uppercase",
        "Require an uppercase letter",
        "New passwords must contain at least one of A–Z.",
        "bool",
    ),
    Setting(
        "PasswordSettings",
        "Number",
        "Require a number",
        "New passwords must contain at least one of 0–9.",
        "bool",
    ),
    Setting(
        "PasswordSettings",
        "Symbol",
        "Require a symbol",
        "New passwords must contain at least one symbol, such as ! # $ % & * - _ or a space.",
        "bool",
    ),
)


def _require_admin(session: Session) -> None:
    if not can_manage_system(session.user):
        raise permission_error(session.user.id, MANAGE_SYSTEM)


def _parse(setting: Setting, form: Form) -> Any:
    raw = form.text(setting.name).strip()
    if setting.kind == "bool":
        return form.checked(setting.name)
    if setting.kind == "int":
        if not raw.isdigit():
            raise BadRequest(
                "web.config.integer.app_error", f"{setting.label} must be a whole number."
            )
        return int(raw)
    if setting.kind == "seconds_list":
        values: list[int | float] = []
        for part in raw.replace(" ", "").split(","):
            if not part:
                continue
            try:
                number = float(part)
            except ValueError:
                number = -1.0
            if not 0 <= number < float("inf"):
                raise BadRequest(
                    "web.config.seconds.app_error",
                    f"{setting.label} must be numbers of seconds separated by commas.",
                )
            values.append(int(number) if number.is_integer() else number)
        return values
    return form.text(setting.name).strip()


def _shown(setting: Setting, config: dict[str, dict[str, Any]]) -> Any:
    value = config[setting.section][setting.key]
    if setting.kind == "seconds_list":
        return ", ".join(str(v) for v in value)
    return value


@router.get("/admin_console")
async def console(request: Request) -> Response:
    return redirect("/admin_console/service_settings")


async def _settings_page(
    request: Request, session: Session, *, error: str = "", status: int = 200
) -> Response:
    config = await settings_service.get_config(runtime(request), session.user)
    return await page(
        request,
        "console_settings.html",
        session=session,
        status=status,
        settings=[(s, _shown(s, config)) for s in SETTINGS],
        error=error,
        saved=request.query_params.get("saved") == "1",
    )


@router.get("/admin_console/service_settings")
async def service_settings(request: Request) -> Response:
    session = await require_session(request)
    return await _settings_page(request, session)


@router.post("/admin_console/service_settings")
async def save_service_settings(request: Request) -> Response:
    session = await require_session(request)
    form = await session_form(request, session)
    _require_admin(session)
    patch: dict[str, dict[str, Any]] = {}
    try:
        for setting in SETTINGS:
            patch.setdefault(setting.section, {})[setting.key] = _parse(setting, form)
        await settings_service.patch_config(runtime(request), session.user, patch)
    except AppError as error:
        return await _settings_page(request, session, error=error.message, status=error.status)
    return redirect("/admin_console/service_settings?saved=1")


async def _users_page(
    request: Request,
    session: Session,
    *,
    error: str = "",
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    _require_admin(session)
    raw_page = request.query_params.get("page", "0")
    number = int(raw_page) if raw_page.isdigit() and len(raw_page) < 6 else 0
    users = await user_service.list_users(runtime(request), number, USERS_PER_PAGE)
    return await page(
        request,
        "console_users.html",
        session=session,
        status=status,
        users=users,
        page_number=number,
        has_next=len(users) == USERS_PER_PAGE,
        error=error,
        values=values or {},
        notice=request.query_params.get("notice", "") == "saved",
    )


@router.get("/admin_console/users")
async def users(request: Request) -> Response:
    return await _users_page(request, await require_session(request))


@router.post("/admin_console/users/create")
async def create_user(request: Request) -> Response:
    session = await require_session(request)
    form = await session_form(request, session)
    values = {k: form.text(k).strip() for k in ("username", "email")}
    new = NewUser(
        username=values["username"], email=values["email"], password=form.text("password")
    )
    try:
        await user_service.create_user(
            runtime(request), session.user, new, make_admin=form.checked("make_admin")
        )
    except AppError as error:
        return await _users_page(
            request, session, error=error.message, values=values, status=error.status
        )
    return redirect("/admin_console/users?notice=saved")


async def _user_change(request: Request, change: str) -> Response:
    session = await require_session(request)
    form = await session_form(request, session)
    rt = runtime(request)
    user_id = form.text("user_id")
    try:
        if change == "roles":
            roles = "system_admin system_user" if form.checked("admin") else "system_user"
            await user_service.set_roles(rt, session.user, user_id, roles)
        elif change == "active":
            await user_service.set_active(rt, session.user, user_id, form.checked("active"))
        else:
            await user_service.change_password(
                rt, session.user, user_id, "", form.text("new_password")
            )
    except AppError as error:
        return await _users_page(request, session, error=error.message, status=error.status)
    return redirect("/admin_console/users?notice=saved")


@router.post("/admin_console/users/roles")
async def set_roles(request: Request) -> Response:
    return await _user_change(request, "roles")


@router.post("/admin_console/users/active")
async def set_active(request: Request) -> Response:
    return await _user_change(request, "active")


@router.post("/admin_console/users/password")
async def reset_password(request: Request) -> Response:
    return await _user_change(request, "password")


@router.get("/admin_console/teams")
async def teams(request: Request) -> Response:
    session = await require_session(request)
    _require_admin(session)
    found = await team_service.list_teams(runtime(request), session.user, 0, 200)
    return await page(
        request, "console_teams.html", session=session, teams=found, base=str(request.base_url)
    )
