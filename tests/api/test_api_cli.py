"""The ``tidings`` command, run as a real process on its own throwaway SQLite database: migrate,
users, teams, channels, config, ``--help`` everywhere, ``--json`` that parses, and clear errors
with non-zero exit codes."""

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tidings.store.migration import WAITING

pytestmark = pytest.mark.db

TIDINGS = str(Path(sys.executable).with_name("tidings"))


@dataclass
class Run:
    args: Sequence[str]
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    env["TIDINGS_DATA_DIR"] = str(data_dir)
    return env


def _run_all(data_dir: Path, *commands: Sequence[str]) -> list[Run]:
    """Run the commands concurrently (each is a fresh interpreter) and wait for all of them."""
    processes = [
        (
            args,
            subprocess.Popen(
                [TIDINGS, *args],
                env=_env(data_dir),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for args in commands
    ]
    runs = []
    for args, process in processes:
        out, err = process.communicate(timeout=60)
        runs.append(Run(args, process.returncode, out, err))
    return runs


def _run(data_dir: Path, *args: str) -> Run:
    return _run_all(data_dir, args)[0]


def _ok(run: Run) -> Run:
    assert run.code == 0, (run.args, run.out, run.err)
    return run


def _refused(run: Run, *needles: str, code: int = 1) -> None:
    """A clear one-line error on stderr, nothing on stdout, and a non-zero exit code. (The
    commands run at once, so one may first say it waits for another's migration.)"""
    assert run.code == code, (run.args, run.code, run.out, run.err)
    assert run.out == ""
    lines = [line for line in run.err.strip().splitlines() if line != WAITING]
    assert lines, run.args
    if code == 1:
        assert len(lines) == 1, run.err
        assert lines[0].startswith("error: "), run.err
        assert "Traceback" not in run.err
    for needle in needles:
        assert needle in run.err, (needle, run.err)


HELP = [
    (["migrate"], []),
    (["serve"], ["--processes"]),
    (["backup"], ["PATH", "--force"]),
    (["user", "create"], ["--username", "--email", "--password", "--system-admin", "--json"]),
    (["team", "create"], ["--name", "--display-name", "--private", "--json"]),
    (["channel", "create"], ["--team", "--name", "--display-name", "--private", "--json"]),
    (["config", "get"], ["key"]),
    (["config", "set"], ["key", "value"]),
]


def test_every_command_has_help(tmp_path: Path) -> None:
    """``--help`` works for every command, lists its options, exits 0 and touches nothing."""
    runs = _run_all(tmp_path, *[[*args, "--help"] for args, _ in HELP])
    for run, (_, words) in zip(runs, HELP, strict=True):
        _ok(run)
        assert "Usage: tidings" in run.out
        for word in words:
            assert word in run.out, (run.args, word)
    assert not (tmp_path / "tidings.db").exists()


def test_the_cli_sets_up_a_server_and_refuses_bad_input(tmp_path: Path) -> None:
    """Set-up commands work and print JSON; bad input exits non-zero with one clear line."""
    migrated, unknown_setting, usage = _run_all(
        tmp_path,
        ["migrate"],
        ["config", "set", "ServiceSettings.NoSuchThing", "1"],
        ["team", "create", "--name", "x"],
    )
    assert "up to date" in _ok(migrated).out
    assert (tmp_path / "tidings.db").exists()
    _refused(unknown_setting, "unknown setting ServiceSettings.NoSuchThing")
    _refused(usage, "Usage:", code=2)

    admin, bad_name = _run_all(
        tmp_path,
        ["user", "create", "--username", "boss", "--email", "Boss@Example.test",
         "--password", "a-long-password-9", "--system-admin", "--json"],
        ["user", "create", "--username", "9lives", "--email", "n@example.test",
         "--password", "a-long-password-9"],
    )  # fmt: skip
    created_admin = _ok(admin).json()
    assert created_admin["username"] == "boss"
    assert created_admin["email"] == "boss@example.test"
    assert created_admin["roles"] == "system_admin system_user"
    assert "password" not in created_admin
    _refused(bad_name, "model.user.is_valid.username.app_error")

    team, setting, wrong_type = _run_all(
        tmp_path,
        ["team", "create", "--name", "eng", "--display-name", "Engineering", "--json"],
        ["config", "set", "ServiceSettings.SiteURL", "https://chat.example.test"],
        ["config", "set", "ServiceSettings.EnableDeveloper", "maybe"],
    )
    assert _ok(team).json()["name"] == "eng"
    assert _ok(setting).out.strip() == 'ServiceSettings.SiteURL = "https://chat.example.test"'
    _refused(wrong_type, "ServiceSettings.EnableDeveloper")

    channel, value, ghost = _run_all(
        tmp_path,
        ["channel", "create", "--team", "eng", "--name", "builds", "--display-name", "Builds",
         "--private", "--as", "boss", "--json"],
        ["config", "get", "ServiceSettings.SiteURL"],
        ["channel", "create", "--team", "ghost", "--name", "x", "--display-name", "X"],
    )  # fmt: skip
    created = _ok(channel).json()
    assert (created["name"], created["type"]) == ("builds", "P")
    assert created["team_id"] == team.json()["id"]
    assert json.loads(_ok(value).out) == "https://chat.example.test"
    _refused(ghost, "app.team.get.find.app_error")
