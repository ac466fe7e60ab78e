"""Shared pieces of the benchmarks: the floor scripts of ../shared/bench-floor, a receiver
process pinned to one core, and a Tidings database with a team, channel and hooks ready.

Benchmarks print numbers; they are not tests. Every figure is reported as a ratio to a floor
measured in the same run, because absolute numbers drift 20–60% between minutes on shared VMs.
"""

import asyncio
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from tidings.config import Settings
from tidings.domain.hooks import OutgoingHook
from tidings.domain.teams import Channel, Team
from tidings.domain.users import User
from tidings.ids import new_id
from tidings.services import hooks as hook_service
from tidings.services import settings as settings_service
from tidings.services import teams as team_service
from tidings.services import users as user_service
from tidings.services.hooks import HookInput
from tidings.services.runtime import Runtime
from tidings.store import hooks as hook_store
from tidings.store import teams as team_store
from tidings.store.database import Connection, Database
from tidings.store.migration import upgrade

FLOOR = Path(
    os.environ.get(
        "TIDINGS_BENCH_FLOOR", Path(__file__).resolve().parents[2] / "shared" / "bench-floor"
    )
)
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(cpu: int, argv: list[str]) -> list[str]:
    """Pin a process to one core when taskset exists (receiver and sender must not fight)."""
    taskset = shutil.which("taskset")
    if taskset and (os.cpu_count() or 1) > 1:
        return [taskset, "-c", str(cpu), *argv]
    return argv


@contextmanager
def receiver(cpu: int = 1) -> Iterator[str]:
    """The floor's aiohttp receiver on a free port; yields its URL."""
    port = free_port()
    with serving(pinned(cpu, [PY, str(FLOOR / "recv_aiohttp.py"), str(port)]), port):
        yield f"http://127.0.0.1:{port}/hook"


@contextmanager
def timestamp_receiver(cpu: int = 1, hang_seconds: float = 0.0) -> Iterator[str]:
    """bench/recv_timestamps.py on a free port; yields its base URL (hooks go to ``/hook``)."""
    port = free_port()
    argv = [PY, str(Path(__file__).with_name("recv_timestamps.py")), str(port)]
    if hang_seconds:
        argv += ["--hang", str(hang_seconds)]
    with serving(pinned(cpu, argv), port):
        yield f"http://127.0.0.1:{port}"


def fetch_arrivals(base_url: str) -> list[tuple[str, str, float]]:
    """What a timestamp receiver has seen: (post_id, webhook-id, unix seconds) per request."""
    with urllib.request.urlopen(f"{base_url}/arrivals", timeout=10) as response:
        return [(str(p), str(w), float(t)) for p, w, t in json.load(response)]


def forget_arrivals(base_url: str) -> None:
    request = urllib.request.Request(f"{base_url}/arrivals", method="DELETE")
    urllib.request.urlopen(request, timeout=10).close()


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0–100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def pin_to_core(cpu: int) -> None:
    """Keep this process on one core (the receiver gets the other) when there are several."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {cpu})


@contextmanager
def serving(argv: list[str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server process until the block ends, once it accepts connections on ``port``."""
    process = subprocess.Popen(argv)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.05)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def client_floor(
    url: str, concurrency: int = 16, duration: float = 5, cpu: int = 0
) -> dict[str, float]:
    """The bare aiohttp client loop against ``url`` (P1's denominator)."""
    out = subprocess.run(
        pinned(
            cpu,
            [
                PY,
                str(FLOOR / "sender.py"),
                url,
                "--client",
                "aiohttp",
                "--concurrency",
                str(concurrency),
                "--duration",
                str(duration),
            ],
        ),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def summary(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


class World:
    """A migrated database with an admin, a team, a public channel and a runtime to drive it."""

    def __init__(self, database_url: str | None = None, **settings: object) -> None:
        self.tmp = tempfile.mkdtemp(prefix="tidings-bench-")
        url = database_url or f"sqlite:///{self.tmp}/bench.db"
        upgrade(url)
        self.settings = Settings(database_url=url, data_dir=Path(self.tmp), **settings)  # type: ignore[arg-type]
        self.rt = Runtime(settings=self.settings, db=Database.from_url(url))
        self.admin: User
        self.team: Team
        self.channel: Channel

    async def setup(self, allow: str = "127.0.0.1") -> None:
        self.admin = await user_service.create_user(
            self.rt,
            None,
            user_service.NewUser("bench", "bench@example.test", "benchmark-pw-9"),
            trusted=True,
        )
        self.team = await team_service.create_team(self.rt, self.admin, "bench", "Bench")
        self.channel = await team_service.create_channel(
            self.rt, self.admin, self.team.id, "load", "Load"
        )
        await settings_service.patch_config(
            self.rt,
            None,
            {
                "ServiceSettings": {
                    "AllowedUntrustedInternalConnections": allow,
                    # The benchmarks measure one owner's hooks at the worker's whole concurrency
                    # (a default server, 64 senders, gives one owner 16: the floor's concurrency).
                    "OutgoingWebhookMaxConcurrencyPerDestination": 64,
                    "OutgoingWebhookMaxConcurrencyPerOwner": 64,
                }
            },
        )

    async def hook(self, url: str, **fields: Any) -> OutgoingHook:
        return await hook_service.create_hook(
            self.rt,
            self.admin,
            HookInput(
                team_id=self.team.id, channel_id=self.channel.id, callback_urls=(url,), **fields
            ),
        )

    async def bulk_hooks(self, count: int, url: str) -> None:
        """Insert many trigger-word hooks directly (the API would validate each, slowly)."""
        now = int(time.time() * 1000)
        template = OutgoingHook(
            id="",
            token=new_id(),
            create_at=now,
            update_at=now,
            delete_at=0,
            creator_id=self.admin.id,
            channel_id="",
            team_id=self.team.id,
            trigger_words=(),
            trigger_when=0,
            callback_urls=(url,),
        )
        hooks = [replace(template, id=new_id(), trigger_words=(f"word{i}",)) for i in range(count)]
        team_id = self.team.id

        def work(conn: Connection) -> None:
            hook_store.insert_hooks(conn, hooks)
            team_store.bump_hooks_version(conn, team_id)

        await self.rt.db.write(work, background=True)  # thousands of rows: off the loop

    async def close(self) -> None:
        await self.rt.db.dispose()


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]
