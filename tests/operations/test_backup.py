"""Backups that restore: ``tidings backup`` of a SQLite database while a real server writes to
it, and the ``pg_dump``/``pg_restore`` procedure for PostgreSQL, each brought back up as a
server that finds the data."""

import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from operations_support import serving, stop
from sqlalchemy.engine import make_url

from support import (
    PASSWORD,
    Api,
    Factory,
    first_admin,
    fresh_database,
    start_server,
    wait_until,
)
from tidings.store.database import normalise_url


def _tidings(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    return subprocess.run(
        [sys.executable, "-m", "tidings", *args],
        env=base | env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class Poster(threading.Thread):
    """Posts into one channel as fast as the server takes them; ``ids`` in the order the server
    confirmed them."""

    def __init__(self, api: Api, channel_id: str) -> None:
        super().__init__(daemon=True)
        self.api = api
        self.channel_id = channel_id
        self.ids: list[str] = []
        self.done = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.done.is_set():
            post = self.api.post("/posts", {"channel_id": self.channel_id, "message": f"m{n}"})
            self.ids.append(post["id"])
            n += 1

    def finish(self) -> None:
        self.done.set()
        self.join(30)


def test_a_backup_taken_while_the_server_writes_restores_every_earlier_post(
    tmp_path: Path,
) -> None:
    """SQLite: ``tidings backup`` beside a running ``tidings serve`` that is taking posts. The
    copy passes ``PRAGMA integrity_check``, and a server started on it has every post confirmed
    before the backup began; what it holds is exactly the first k posts (a snapshot, not a
    mixture), and the live database is untouched."""
    data = tmp_path / "data"
    url = normalise_url(f"sqlite:///{data / 'tidings.db'}")
    copy = tmp_path / "backup.db"
    data.mkdir()
    with serving(url, tmp_path / "serve.log") as served:
        wait_until(served.answers, timeout=60, interval=0.2)
        admin = Api(served.url)
        admin.post(
            "/users",
            {"username": "boss", "email": "boss@example.test", "password": PASSWORD},
            expect=201,
        )
        admin = admin.login("boss")
        factory = Factory(admin)
        channel = factory.channel(factory.team())
        poster = Poster(admin, channel["id"])
        poster.start()
        try:
            wait_until(lambda: len(poster.ids) >= 50, timeout=60)
            before = list(poster.ids)
            result = _tidings("backup", str(copy), TIDINGS_DATA_DIR=str(data))
            written_during = len(poster.ids) - len(before)
            wait_until(lambda: len(poster.ids) >= len(before) + written_during + 20, timeout=60)
        finally:
            poster.finish()
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"backed up {data / 'tidings.db'} to {copy}"
        assert written_during > 0  # the server kept writing while the backup ran
        assert stop(served) in (0, -15), served.log_text()
    assert list(tmp_path.glob(".backup.db.partial-*")) == []

    with sqlite3.connect(copy) as check:
        assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert check.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    restored = start_server(normalise_url(f"sqlite:///{copy}"), run_worker=False)
    try:
        reader = Api(restored.url).login("boss")
        kept: list[str] = []
        page = 0
        while True:
            got = reader.get(f"/channels/{channel['id']}/posts?page={page}&per_page=200")
            if not got["order"]:
                break
            kept.extend(got["order"])
            page += 1
    finally:
        restored.stop()
    assert set(before) <= set(kept)
    assert set(kept) == set(poster.ids[: len(kept)])


def test_backup_refuses_a_missing_database_and_an_existing_file(tmp_path: Path) -> None:
    """Nothing to copy, or a file in the way: exit 1 with one line, nothing written or
    replaced; ``--force`` replaces the file."""
    data = str(tmp_path / "data")
    target = tmp_path / "backup.db"
    missing = _tidings("backup", str(target), TIDINGS_DATA_DIR=data)
    assert missing.returncode == 1
    assert (
        missing.stderr.strip()
        == f"error: there is no database at {tmp_path / 'data' / 'tidings.db'}"
    )
    assert not target.exists()

    assert _tidings("migrate", TIDINGS_DATA_DIR=data).returncode == 0
    target.write_text("keep me")
    refused = _tidings("backup", str(target), TIDINGS_DATA_DIR=data)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"error: {target} exists: choose another path, or pass --force to replace it"
    )
    assert target.read_text() == "keep me"

    forced = _tidings("backup", str(target), "--force", TIDINGS_DATA_DIR=data)
    assert forced.returncode == 0, forced.stderr
    with sqlite3.connect(target) as check:
        assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert check.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)


def test_backup_on_postgresql_says_how_to_use_pg_dump() -> None:
    """PostgreSQL: exit 2, and the exact pg_dump command, in libpq's URL form without the
    password (which pg_dump takes from PGPASSWORD or ~/.pgpass)."""
    result = _tidings(
        "backup",
        "/var/backups/tidings.dump",
        TIDINGS_DATABASE_URL="postgresql+psycopg://chat:s3cret@db.example:5432/tidings",
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: tidings backup copies SQLite databases; back PostgreSQL up with pg_dump:",
        "  pg_dump --format=custom --file=/var/backups/tidings.dump "
        "postgresql://chat@db.example:5432/tidings",
    ]
    assert "s3cret" not in result.stderr


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.mark.db
def test_pg_dump_and_pg_restore_bring_the_server_back(tmp_path: Path) -> None:
    """PostgreSQL: the pg_dump command ``tidings backup`` prints, then ``pg_restore`` into a new
    empty database: ``tidings migrate`` finds it at head and a server on it has the data."""
    if not os.environ.get("TIDINGS_TEST_DATABASE_URL"):
        pytest.skip("the pg_dump procedure needs PostgreSQL (set TIDINGS_TEST_DATABASE_URL)")
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        pytest.skip("pg_dump and pg_restore are not installed (Debian: postgresql-client)")
    dump = tmp_path / "tidings.dump"
    with fresh_database() as url, fresh_database(migrated=False) as empty:
        server = start_server(url, run_worker=False)
        try:
            admin = first_admin(server)
            factory = Factory(admin)
            channel = factory.channel(factory.team())
            post = admin.post("/posts", {"channel_id": channel["id"], "message": "kept"})
        finally:
            server.stop()

        advice = _tidings("backup", str(dump), TIDINGS_DATABASE_URL=url)
        assert advice.returncode == 2
        command = shlex.split(advice.stderr.splitlines()[1])
        dumped = subprocess.run(command, capture_output=True, text=True, check=False)
        assert dumped.returncode == 0, dumped.stderr
        restore = ["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={_libpq(empty)}"]
        restored = subprocess.run(
            [*restore, str(dump)], capture_output=True, text=True, check=False
        )
        assert restored.returncode == 0, restored.stderr

        migrated = _tidings("migrate", TIDINGS_DATABASE_URL=empty)
        assert migrated.returncode == 0, migrated.stderr
        back = start_server(empty, run_worker=False)
        try:
            again = Api(back.url).login("boss")
            assert again.get(f"/posts/{post['id']}")["message"] == "kept"
            assert again.get(f"/channels/{channel['id']}")["name"] == channel["name"]
        finally:
            back.stop()
