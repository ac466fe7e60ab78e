"""``tidings serve --processes N``: N real server processes behind one port, seen from outside.

Which process served a request is read from the operating system (psutil): the server end of
the client's TCP connection belongs to exactly one child. Nothing in the server tells.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from operations_support import Served, serving, stop
from sqlalchemy import select

from support import (
    Api,
    Receiver,
    free_port,
    fresh_database,
    seed_channel_hook,
    start_server,
    wait_until,
)
from tidings.store.database import create_engine
from tidings.store.schema import deliveries


def _postgres_only() -> None:
    if not os.environ.get("TIDINGS_TEST_DATABASE_URL"):
        pytest.skip(
            "several server processes need PostgreSQL (set TIDINGS_TEST_DATABASE_URL); "
            "on SQLite --processes > 1 is refused, see test_sqlite_refuses_several_processes"
        )


def _start(served: Served, processes: int) -> dict[int, psutil.Process]:
    """Wait until ``processes`` children listen and each has answered a request (a child
    listens from birth, on the inherited socket, but answers only once its app is up)."""

    def listening() -> dict[int, psutil.Process] | None:
        assert served.process.poll() is None, served.log_text()
        servers = served.servers()
        return servers if len(servers) == processes else None

    servers: dict[int, psutil.Process] = wait_until(listening, timeout=60, interval=0.2)
    answered: set[int] = set()
    deadline = time.monotonic() + 60
    while answered != set(servers):
        assert time.monotonic() < deadline, (answered, servers, served.log_text())
        answered.add(served.serving_pid())
    return servers


@pytest.mark.db
def test_two_processes_answer_on_one_port_and_stop_together(tmp_path: Path) -> None:
    """Requests on the one port are served by both children; SIGTERM stops the supervisor with
    exit 0 and leaves no process behind."""
    _postgres_only()
    with fresh_database() as url, serving(url, tmp_path / "serve.log", 2) as served:
        servers = _start(served, 2)  # each of the two has answered on the port
        assert len(servers) == 2
        assert served.process.pid not in servers
        assert stop(served) == 0, served.log_text()
        assert "Traceback" not in served.log_text()


@pytest.mark.db
def test_a_child_that_dies_is_replaced(tmp_path: Path) -> None:
    """SIGKILL one child: the supervisor starts another, the port keeps answering, and the
    set still stops cleanly."""
    _postgres_only()
    with fresh_database() as url, serving(url, tmp_path / "serve.log", 2) as served:
        servers = _start(served, 2)
        victim, survivor = sorted(servers)
        servers[victim].kill()

        def replaced() -> set[int] | None:
            now = set(served.servers())
            return now if len(now) == 2 and victim not in now else None

        now = wait_until(replaced, timeout=60, interval=0.2)
        assert survivor in now
        assert _start(served, 2).keys() == now
        assert f"Child process [{victim}] died" in served.log_text()
        assert stop(served) == 0, served.log_text()


@pytest.mark.db
def test_children_stop_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    """SIGKILL to the supervisor (the OOM killer, say): its children stop by themselves, and
    the port is free for the next ``serve``."""
    _postgres_only()
    with fresh_database() as url, serving(url, tmp_path / "serve.log", 2) as served:
        _start(served, 2)
        assert stop(served, signal.SIGKILL) == -signal.SIGKILL
        with socket.socket() as s:
            s.bind(("127.0.0.1", served.port))


@pytest.mark.db
def test_every_child_finishes_its_deliveries_when_stopped(tmp_path: Path) -> None:
    """Each child runs the app's lifespan shutdown on SIGTERM: with deliveries in flight in
    both children's webhook workers, every one is finished and recorded, and none sent twice,
    before the set exits (a child killed outright would leave its own in_flight until their
    lease ran out, then send them again)."""
    _postgres_only()
    receiver = Receiver()
    receiver.delay_seconds = 4  # well inside the worker's 10 s grace for requests under way
    try:
        with fresh_database() as url:
            # Set up before serving: a config change made through one child reaches the other
            # only after its config cache (1 s) expires.
            seeder = start_server(url, run_worker=False)
            try:
                # No per-destination cap to queue behind: every post's delivery is in flight.
                uncapped = {"OutgoingWebhookMaxConcurrencyPerDestination": 256}
                seeded = seeder.run(
                    seed_channel_hook(
                        seeder.runtime, "boss", receiver.url, service_settings=uncapped
                    )
                )
            finally:
                seeder.stop()
            with serving(url, tmp_path / "serve.log", 2) as served:
                servers = _start(served, 2)
                poster = Api(served.url).login("boss")

                def senders() -> set[int]:
                    """The children with a request open to the receiver right now."""
                    return {
                        pid
                        for pid, child in servers.items()
                        if any(
                            c.raddr and c.raddr.port == receiver.port
                            for c in child.net_connections("tcp")
                        )
                    }

                posts = 0
                while True:
                    assert posts < 40, ("every delivery went to one child", served.log_text())
                    poster.post("/posts", {"channel_id": seeded.channel.id, "message": "build"})
                    posts += 1
                    receiver.wait_for(posts, timeout=20)
                    if senders() == set(servers):
                        break
                assert stop(served) == 0, served.log_text()
            engine = create_engine(url)
            try:
                with engine.connect() as conn:
                    statuses = list(conn.execute(select(deliveries.c.status)).scalars())
            finally:
                engine.dispose()
        assert statuses == ["succeeded"] * posts
        assert len(receiver.requests) == posts
    finally:
        receiver.close()


def test_sqlite_refuses_several_processes(tmp_path: Path) -> None:
    """On SQLite ``--processes 2`` exits 2 at once, saying why, before touching the database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    env["TIDINGS_DATA_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "tidings", "serve", "--processes", "2"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: --processes 2 needs PostgreSQL: SQLite lets one ")
    assert "single write lock" in result.stderr
    assert not (tmp_path / "tidings.db").exists()


CANNOT_START = """
import sys
from tidings import serving
from tidings.cli import uvicorn_config
from tidings.config import Settings

# A URL whose port is no number: each child fails to build its app (the parent never does).
settings = Settings(database_url="postgresql://nobody@localhost:port/none", listen=sys.argv[1])
config = uvicorn_config(settings, serving.app_factory(settings, 2), 2)
sys.exit(0 if serving.run(config) else 3)
"""


def test_children_that_cannot_start_stop_the_set(tmp_path: Path) -> None:
    """A child that fails while building its app ends the whole set with the start-up failure
    (what ``serve`` turns into exit code 3), instead of being restarted for ever."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    result = subprocess.run(
        [sys.executable, "-c", CANNOT_START, f"127.0.0.1:{free_port()}"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 3, result.stderr
    assert "could not build the application" in result.stderr
    assert "failed to start, stopping the parent process" in result.stderr
