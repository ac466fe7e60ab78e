"""``tidings hook list|show|create|delete|regen|enable`` run as real processes on a throwaway
SQLite database: ``--json`` parses, and bad input exits non-zero with a one-line error."""

import asyncio
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tidings.config import Settings
from tidings.services import teams as team_service
from tidings.services import users as user_service
from tidings.services.runtime import Runtime
from tidings.store import hooks as hook_store
from tidings.store.database import Database, normalise_url
from tidings.store.migration import upgrade

pytestmark = pytest.mark.db

TIDINGS = Path(sys.executable).parent / "tidings"
URL = "http://127.0.0.1:9/hook"


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh SQLite file with an admin, a team "crew" and a public channel "builds"."""
    url = normalise_url(f"sqlite:///{tmp_path_factory.mktemp('cli')}/cli.db")
    upgrade(url)

    async def prepare() -> None:
        rt = Runtime(settings=Settings(database_url=url), db=Database.from_url(url))
        try:
            boss = await user_service.create_user(
                rt,
                None,
                user_service.NewUser("boss", "boss@example.test", "long-password-1"),
                make_admin=True,
                trusted=True,
            )
            team = await team_service.create_team(rt, boss, "crew", "Crew")
            await team_service.create_channel(rt, boss, team.id, "builds", "Builds")
        finally:
            await rt.db.dispose()

    asyncio.run(prepare())
    return url


def tidings(database: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TIDINGS_DATABASE_URL": database, "NO_COLOR": "1"}
    return subprocess.run(
        [str(TIDINGS), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def ok_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def refused(result: subprocess.CompletedProcess[str], error_id: str) -> None:
    """Exit 1 with exactly one line on stderr naming the error id, nothing on stdout."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert f"({error_id})" in lines[0]


def test_hook_commands_round_trip(database: str) -> None:
    """create → list/show → regen → (disabled) enable → delete, all parseable with --json."""
    created = ok_json(
        tidings(
            database,
            "hook",
            "create",
            "--team",
            "crew",
            "--channel",
            "builds",
            "--trigger",
            "#build",
            "--trigger",
            "#deploy",
            "--url",
            URL,
            "--display-name",
            "Builds",
            "--json",
        )
    )
    assert created["trigger_words"] == ["#build", "#deploy"]
    assert created["callback_urls"] == [URL]
    assert created["content_type"] == "application/x-www-form-urlencoded"
    assert len(created["token"]) == 26
    assert created["signing_secret"].startswith("whsec_")
    hook_id = created["id"]

    with ThreadPoolExecutor(2) as pool:
        listed, shown = pool.map(
            lambda args: tidings(database, *args),
            [("hook", "list", "--team", "crew", "--json"), ("hook", "show", hook_id, "--json")],
        )
    assert ok_json(listed) == [created]
    assert ok_json(shown) == created

    regenerated = ok_json(tidings(database, "hook", "regen", hook_id, "--json"))
    assert regenerated["token"] != created["token"]
    assert regenerated["signing_secret"] != created["signing_secret"]
    assert regenerated["id"] == hook_id

    async def disable() -> None:
        db = Database.from_url(database)
        try:
            assert await db.write(lambda conn: hook_store.disable_hook(conn, hook_id, "testing", 1))
        finally:
            await db.dispose()

    asyncio.run(disable())
    enabled = ok_json(tidings(database, "hook", "enable", hook_id, "--json"))
    assert enabled["enabled"] is True
    assert enabled["disabled_reason"] == ""

    deleted = tidings(database, "hook", "delete", hook_id)
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.strip() == f"deleted hook {hook_id}"
    refused(tidings(database, "hook", "show", hook_id), "app.webhooks.get_outgoing.app_error")


def test_hook_timeout_is_set_and_shown(database: str) -> None:
    """``create --timeout`` stores the hook's own timeout and ``show`` prints it; 301 is refused
    with the model's error, and leaving it out means 0 (the server's timeout)."""
    args = ("hook", "create", "--team", "crew", "--trigger", "#slow", "--json")
    timed = ok_json(tidings(database, *args, "--url", URL + "/timed", "--timeout", "45"))
    default = ok_json(tidings(database, *args, "--url", URL + "/default"))
    assert (timed["timeout_seconds"], default["timeout_seconds"]) == (45, 0)
    shown = tidings(database, "hook", "show", timed["id"])
    assert shown.returncode == 0, shown.stderr
    assert "timeout_seconds: 45" in shown.stdout.splitlines()
    refused(
        tidings(database, *args, "--url", URL + "/long", "--timeout", "301"),
        "model.outgoing_hook.is_valid.timeout_seconds.app_error",
    )
    assert tidings(database, *args, "--url", URL + "/neg", "--timeout", "-1").returncode == 2


BAD_INPUT = [
    (
        ("hook", "create", "--team", "crew", "--trigger", "x", "--url", "nowhere.com/"),
        "model.outgoing_hook.is_valid.url.app_error",
    ),
    (
        ("hook", "create", "--team", "nosuch", "--trigger", "x", "--url", URL),
        "app.team.get.find.app_error",
    ),
    (("hook", "regen", "junk"), "api.context.invalid_url_param.app_error"),
]


def test_bad_input_is_one_clear_line(database: str) -> None:
    """Refused requests exit 1 with one "error: … (id)" line; usage mistakes exit 2."""
    with ThreadPoolExecutor(2) as pool:
        usage = pool.submit(tidings, database, "hook", "create", "--team", "crew", "--trigger", "x")
        results = list(pool.map(lambda case: tidings(database, *case[0]), BAD_INPUT))
    for (args, error_id), result in zip(BAD_INPUT, results, strict=True):
        try:
            refused(result, error_id)
        except AssertionError as exc:
            raise AssertionError(f"{args}: {exc}") from exc
    assert usage.result().returncode == 2
    assert "Missing option '--url'" in usage.result().stderr


def test_hook_create_resolves_a_private_channel_of_the_acting_user(database: str) -> None:
    """``--channel`` names a private channel the acting user belongs to: refused while the
    switch is off (as before), made once it is on; one they are not in is not found."""

    async def prepare() -> None:
        rt = Runtime(settings=Settings(database_url=database), db=Database.from_url(database))
        try:
            boss = await user_service.get_user_by_username(rt, "boss")
            other = await user_service.create_user(
                rt,
                None,
                user_service.NewUser("vaultless", "vaultless@example.test", "long-password-1"),
                make_admin=False,
                trusted=True,
            )
            team = await team_service.get_team_by_name(rt, boss, "crew")
            await team_service.add_team_member_unchecked(rt, team.id, other.id)
            await team_service.create_channel(rt, boss, team.id, "vault", "Vault", "P")
        finally:
            await rt.db.dispose()

    asyncio.run(prepare())
    create = ("hook", "create", "--team", "crew", "--channel", "vault", "--url", URL, "--json")
    refused(tidings(database, *create), "api.outgoing_webhook.disabled.app_error")
    switch = "ServiceSettings.EnableOutgoingWebhooksInPrivateChannels"
    assert tidings(database, "config", "set", switch, "true").returncode == 0
    try:
        created = ok_json(tidings(database, *create))
        refused(
            tidings(database, *create[:-1], "--as", "vaultless"),
            "app.channel.get.existing.app_error",
        )
    finally:
        assert tidings(database, "config", "set", switch, "false").returncode == 0
    assert (created["channel_id"] != "", created["stopped_reason"]) == (True, "")
    assert tidings(database, "hook", "delete", created["id"]).returncode == 0
