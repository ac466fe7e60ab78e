"""The ``tidings`` command: thin wrappers that parse arguments, call one service, print.

Errors print one line to stderr and exit non-zero: 1 for a refused request (the AppError's id
says why), 2 for bad usage (Typer's own). ``--json`` prints machine-readable output.
Commands run on this machine against the configured database, acting as ``--as`` (default: the
first system admin), the way an operator with shell access would.
"""

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import uvicorn
from starlette.types import ASGIApp

from tidings import __version__, process
from tidings.clock import SystemClock
from tidings.config import Settings
from tidings.domain import server_config
from tidings.domain.deliveries import since_ms
from tidings.domain.users import User
from tidings.domain.wire import hook_json
from tidings.errors import AppError
from tidings.services import deliveries as delivery_service
from tidings.services import hooks as hook_service
from tidings.services import settings as settings_service
from tidings.services import teams as team_service
from tidings.services import users as user_service
from tidings.services.chains import reply_chain
from tidings.services.hooks import HookInput
from tidings.services.notices import hook_owner_notifier
from tidings.services.runtime import Runtime
from tidings.store.backup import BackupRefused, backup_sqlite, dump_command
from tidings.store.database import Database, is_sqlite
from tidings.store.migration import SchemaAhead, upgrade

app = typer.Typer(
    help="Tidings: a team chat server with Slack-compatible outgoing webhooks.",
    no_args_is_help=True,
)
user_app = typer.Typer(help="Manage users.", no_args_is_help=True)
team_app = typer.Typer(help="Manage teams.", no_args_is_help=True)
channel_app = typer.Typer(help="Manage channels.", no_args_is_help=True)
config_app = typer.Typer(
    help="Read and change the System Console configuration.", no_args_is_help=True
)
hook_app = typer.Typer(help="Manage outgoing webhooks.", no_args_is_help=True)
for sub, name in (
    (user_app, "user"),
    (team_app, "team"),
    (channel_app, "channel"),
    (config_app, "config"),
    (hook_app, "hook"),
):
    app.add_typer(sub, name=name)

T = TypeVar("T")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
AsOpt = Annotated[
    str, typer.Option("--as", help="Act as this username (default: the first system admin).")
]


def _settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        typer.echo(f"error: invalid settings: {exc}", err=True)
        raise typer.Exit(2) from exc


def _prepare(settings: Settings) -> None:
    if not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        upgrade(settings.effective_database_url)
    except SchemaAhead as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


def _run(work: Callable[[Runtime], Awaitable[T]]) -> T:
    """Migrate, then run one service call with a fresh runtime; AppErrors become exit code 1."""
    settings = _settings()
    _prepare(settings)

    async def go() -> T:
        rt = Runtime(settings=settings, db=Database.from_url(settings.effective_database_url))
        # What the command changes (a session, a user) reaches running servers at once.
        await rt.cluster.start(listen=False)
        try:
            return await work(rt)
        finally:
            await rt.cluster.stop()
            await rt.db.dispose()

    try:
        return asyncio.run(go())
    except AppError as error:
        typer.echo(f"error: {error.message} ({error.id})", err=True)
        raise typer.Exit(1) from error


async def _actor(rt: Runtime, username: str) -> User:
    if username:
        return await user_service.get_user_by_username(rt, username)
    admins = [
        u for u in await user_service.list_users(rt, 0, 200) if u.is_system_admin and u.is_active
    ]
    if not admins:
        raise AppError(
            "cli.no_admin",
            "No system admin exists yet: create one with `tidings user create --system-admin`.",
            status=400,
        )
    return admins[0]


def _print(data: Any, as_json: bool, text: str) -> None:
    typer.echo(json.dumps(data, indent=2) if as_json else text)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema."""
    settings = _settings()
    _prepare(settings)
    typer.echo(f"database is up to date: {settings.masked_database_url}")


@app.command()
def backup(
    path: Annotated[Path, typer.Argument(help="Where to write the copy (a new file).")],
    force: Annotated[bool, typer.Option("--force", help="Replace PATH if it exists.")] = False,
) -> None:
    """Copy the SQLite database to PATH, safely while the server runs (PostgreSQL: pg_dump)."""
    settings = _settings()
    url = settings.effective_database_url
    if not is_sqlite(url):
        typer.echo(
            "error: tidings backup copies SQLite databases; back PostgreSQL up with pg_dump:\n"
            f"  {dump_command(url, path)}",
            err=True,
        )
        raise typer.Exit(2)
    try:
        source = backup_sqlite(url, path, replace=force)
    except BackupRefused as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"backed up {source} to {path}")


def uvicorn_config(
    settings: Settings, app: Callable[[], ASGIApp], processes: int = 1
) -> uvicorn.Config:
    """How ``serve`` runs uvicorn: ``app`` builds the application in the serving process (each
    of ``processes``, see ``tidings.serving``).

    Proxy headers are believed from ``TIDINGS_FORWARDED_ALLOW_IPS`` only (default: this host,
    uvicorn's own default): behind a local reverse proxy the client address (the login
    limiter's key) is the one the proxy puts in ``X-Forwarded-For`` and the scheme is its
    ``X-Forwarded-Proto``, so sessions behind TLS get Secure cookies. Set it empty to believe
    no one.
    """
    return uvicorn.Config(
        app,
        factory=True,
        workers=processes,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        # Access lines are INFO, below that level, so none is written either way; on, uvicorn
        # still works out each response's client address and path to hand the logger (1–2% of
        # a post's CPU under py-spy).
        access_log=False,
        proxy_headers=bool(settings.forwarded_allow_ips.strip()),
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


ONE_WRITER = (
    "SQLite lets one process write at a time (a single write lock), so more server processes "
    "would only queue behind each other; serve SQLite with one process, or move to PostgreSQL "
    "(TIDINGS_DATABASE_URL=postgresql://...) to use several"
)


@app.command()
def serve(
    processes: Annotated[
        int,
        typer.Option(
            "--processes",
            min=1,
            help="Server processes sharing the one listening port (PostgreSQL only).",
        ),
    ] = 1,
) -> None:
    """Run the server (API, websocket, pages) with the webhook worker inside it."""
    settings = _settings()
    if processes > 1 and is_sqlite(settings.effective_database_url):
        typer.echo(f"error: --processes {processes} needs PostgreSQL: {ONE_WRITER}.", err=True)
        raise typer.Exit(2)
    _prepare(settings)
    process.log_to_stderr()
    url = f"http://{settings.listen}"
    typer.echo(f"Tidings {__version__} listening on {url}")
    typer.echo(f"Database: {settings.masked_database_url}")
    typer.echo(f"Open {url}/ — the first account created (POST {url}/api/v4/users, or")
    typer.echo("`tidings user create --system-admin`) becomes the system admin.")
    from tidings import serving

    config = uvicorn_config(settings, serving.app_factory(settings, processes), processes)
    if not serving.run(config):
        raise typer.Exit(3)  # as uvicorn.run does: it could not bind or start up


@app.command()
def worker() -> None:
    """Run only the webhook delivery worker (more of them share the load on PostgreSQL)."""
    settings = _settings()
    _prepare(settings)
    process.log_to_stderr()
    from tidings.webhooks.worker import Worker

    async def run() -> None:
        import signal

        rt = Runtime(settings=settings, db=Database.from_url(settings.effective_database_url))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        # Reply posts' events reach every server's websockets through the cluster log.
        await rt.cluster.start(listen=False)
        w = Worker.from_runtime(rt, hook_owner_notifier(rt), reply_chain(rt))
        await w.start()
        typer.echo("worker running; Ctrl-C stops it")
        await stop.wait()
        await w.stop()
        await rt.cluster.stop()
        await rt.db.dispose()

    process.tune(settings)
    process.run(run())


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Option(help="3–22 characters: a-z, 0-9, . _ -")],
    email: Annotated[str, typer.Option()],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    system_admin: Annotated[
        bool, typer.Option("--system-admin", help="Make the user a system admin.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a user account."""
    from tidings.domain.wire import user_json

    user = _run(
        lambda rt: user_service.create_user(
            rt,
            None,
            user_service.NewUser(username, email, password),
            make_admin=system_admin,
            trusted=True,
        )
    )
    _print(
        user_json(user), as_json, f"created user {user.username} ({user.id}) roles: {user.roles}"
    )


@team_app.command("create")
def team_create(
    name: Annotated[str, typer.Option(help="URL name, e.g. engineering")],
    display_name: Annotated[str, typer.Option()],
    private: Annotated[bool, typer.Option("--private", help="Invite only.")] = False,
    as_user: AsOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Create a team (the acting user becomes its admin)."""
    from tidings.domain.wire import team_json

    async def work(rt: Runtime) -> Any:
        return await team_service.create_team(
            rt, await _actor(rt, as_user), name, display_name, "I" if private else "O"
        )

    team = _run(work)
    _print(team_json(team), as_json, f"created team {team.name} ({team.id})")


@channel_app.command("create")
def channel_create(
    team: Annotated[str, typer.Option(help="Team name")],
    name: Annotated[str, typer.Option()],
    display_name: Annotated[str, typer.Option()],
    private: Annotated[bool, typer.Option("--private")] = False,
    as_user: AsOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Create a channel in a team."""
    from tidings.domain.wire import channel_json

    async def work(rt: Runtime) -> Any:
        actor = await _actor(rt, as_user)
        found = await team_service.get_team_by_name(rt, actor, team)
        return await team_service.create_channel(
            rt, actor, found.id, name, display_name, "P" if private else "O"
        )

    channel = _run(work)
    _print(channel_json(channel), as_json, f"created channel {channel.name} ({channel.id})")


def _parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


@config_app.command("get")
def config_get(
    key: Annotated[
        str,
        typer.Argument(
            help="Section.Setting, e.g. ServiceSettings.EnableOutgoingWebhooks; omit for all"
        ),
    ] = "",
) -> None:
    """Print a setting (or the whole configuration) as JSON."""
    document = _run(lambda rt: rt.config())
    if not key:
        typer.echo(json.dumps(document, indent=2))
        return
    section, _, name = key.partition(".")
    if section not in document or name not in document[section]:
        typer.echo(f"error: unknown setting {key}", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(document[section][name]))


@config_app.command("set")
def config_set(
    key: Annotated[str, typer.Argument(help="Section.Setting")],
    value: Annotated[str, typer.Argument(help='A JSON value (true, 30, "text") or plain text')],
) -> None:
    """Change one setting."""
    section, _, name = key.partition(".")
    if section not in server_config.DEFAULTS or name not in server_config.DEFAULTS[section]:
        typer.echo(f"error: unknown setting {key}", err=True)
        raise typer.Exit(1)
    document = _run(
        lambda rt: settings_service.patch_config(rt, None, {section: {name: _parse_value(value)}})
    )
    typer.echo(f"{key} = {json.dumps(document[section][name])}")


def _hook_line(data: dict[str, Any]) -> str:
    words = ",".join(data["trigger_words"]) or "-"
    state = "enabled" if data["enabled"] else f"disabled ({data['disabled_reason']})"
    if data["enabled"] and data["stopped_reason"]:
        state = f"stopped ({data['stopped_reason']})"
    return f"{data['id']}  team={data['team_id']} channel={data['channel_id'] or '-'} words={words} urls={' '.join(data['callback_urls'])} {state}"


@hook_app.command("list")
def hook_list(
    team: Annotated[str, typer.Option(help="Team name")],
    as_user: AsOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """List a team's outgoing hooks."""

    async def work(rt: Runtime) -> list[dict[str, Any]]:
        actor = await _actor(rt, as_user)
        found = await team_service.get_team_by_name(rt, actor, team)
        return [
            hook_json(h, show_secrets=True)
            for h in await hook_service.list_hooks(rt, actor, team_id=found.id, per_page=200)
        ]

    hooks = _run(work)
    _print(hooks, as_json, "\n".join(_hook_line(h) for h in hooks) or "no hooks")


@hook_app.command("show")
def hook_show(hook_id: str, as_user: AsOpt = "", as_json: JsonOpt = False) -> None:
    """Show one hook, token included."""

    async def work(rt: Runtime) -> dict[str, Any]:
        return hook_json(
            await hook_service.get_hook(rt, await _actor(rt, as_user), hook_id), show_secrets=True
        )

    data = _run(work)
    _print(data, as_json, "\n".join(f"{k}: {v}" for k, v in data.items()))


@hook_app.command("create")
def hook_create(
    team: Annotated[str, typer.Option(help="Team name")],
    url: Annotated[list[str], typer.Option("--url", help="Callback URL (repeat for several)")],
    channel: Annotated[
        str,
        typer.Option(
            help="Channel name: public, or private if you belong to it (with "
            "EnableOutgoingWebhooksInPrivateChannels on)"
        ),
    ] = "",
    trigger: Annotated[
        list[str] | None, typer.Option("--trigger", help="Trigger word (repeat)")
    ] = None,
    starts_with: Annotated[
        bool,
        typer.Option("--starts-with", help="Fire when the first word starts with a trigger word"),
    ] = False,
    json_body: Annotated[
        bool, typer.Option("--json-body", help="Send application/json instead of a form")
    ] = False,
    display_name: Annotated[str, typer.Option()] = "",
    username: Annotated[str, typer.Option()] = "",
    icon_url: Annotated[str, typer.Option()] = "",
    timeout: Annotated[
        int,
        typer.Option(help="Seconds per attempt, 1–300; 0: the server's default", min=0),
    ] = 0,
    extended_payload: Annotated[
        bool,
        typer.Option(
            "--extended-payload",
            help="Also send root_id, channel_type, from_bot and response_url",
        ),
    ] = False,
    trigger_on_bot_posts: Annotated[
        bool,
        typer.Option(
            "--trigger-on-bot-posts", help="Fire on webhook replies too (up to the chain limit)"
        ),
    ] = False,
    as_user: AsOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Create an outgoing hook."""

    async def work(rt: Runtime) -> dict[str, Any]:
        actor = await _actor(rt, as_user)
        found = await team_service.get_team_by_name(rt, actor, team)
        channel_id = (
            (await team_service.get_channel_by_name(rt, actor, found.id, channel)).id
            if channel
            else ""
        )
        hook = await hook_service.create_hook(
            rt,
            actor,
            HookInput(
                team_id=found.id,
                channel_id=channel_id,
                trigger_words=tuple(trigger or ()),
                trigger_when=1 if starts_with else 0,
                callback_urls=tuple(url),
                content_type="application/json"
                if json_body
                else "application/x-www-form-urlencoded",
                display_name=display_name,
                username=username,
                icon_url=icon_url,
                timeout_seconds=timeout,
                extended_payload=extended_payload,
                trigger_on_bot_posts=trigger_on_bot_posts,
            ),
        )
        return hook_json(hook, show_secrets=True)

    data = _run(work)
    _print(
        data,
        as_json,
        f"created hook {data['id']}\ntoken: {data['token']}\nsigning secret: {data['signing_secret']}",
    )


@hook_app.command("delete")
def hook_delete(hook_id: str, as_user: AsOpt = "") -> None:
    """Delete an outgoing hook."""

    async def work(rt: Runtime) -> None:
        await hook_service.delete_hook(rt, await _actor(rt, as_user), hook_id)

    _run(work)
    typer.echo(f"deleted hook {hook_id}")


@hook_app.command("regen")
def hook_regen(hook_id: str, as_user: AsOpt = "", as_json: JsonOpt = False) -> None:
    """Regenerate a hook's token and signing secret."""

    async def work(rt: Runtime) -> dict[str, Any]:
        return hook_json(
            await hook_service.regenerate_token(rt, await _actor(rt, as_user), hook_id),
            show_secrets=True,
        )

    data = _run(work)
    _print(data, as_json, f"token: {data['token']}\nsigning secret: {data['signing_secret']}")


@hook_app.command("enable")
def hook_enable(hook_id: str, as_user: AsOpt = "", as_json: JsonOpt = False) -> None:
    """Re-enable a hook the engine disabled."""

    async def work(rt: Runtime) -> dict[str, Any]:
        return hook_json(
            await hook_service.set_hook_enabled(rt, await _actor(rt, as_user), hook_id, True),
            show_secrets=True,
        )

    data = _run(work)
    _print(data, as_json, f"enabled hook {data['id']}")


@hook_app.command("redeliver")
def hook_redeliver(
    hook_id: str,
    since: Annotated[
        str,
        typer.Option(
            help="Failed deliveries created since: Unix ms, an ISO 8601 time "
            "(2026-12-02T09:00:00Z) or a span back from now (30m, 2h, 1d)"
        ),
    ],
    as_user: AsOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Send a hook's failed deliveries again (after an outage), oldest first, a bounded number."""
    try:
        start = since_ms(since, SystemClock().now_ms())
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from exc

    async def work(rt: Runtime) -> dict[str, Any]:
        done = await delivery_service.redeliver_failed(
            rt, await _actor(rt, as_user), hook_id, start
        )
        return {"count": done.count, "more": done.more}

    data = _run(work)
    more = "; more remain, run it again" if data["more"] else ""
    _print(data, as_json, f"queued {data['count']} failed deliveries again{more}")


def main() -> None:
    app(prog_name="tidings")
    sys.exit(0)
