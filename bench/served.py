"""Shared pieces of the benchmarks that drive a served Tidings through its HTTP API only.

``tidings serve`` runs as a child process on SQLite in a temporary data directory, from this
checkout or from another one's ``src`` (``--source DIR``), so these benchmarks import nothing of
Tidings themselves and can measure an older commit with the same client code. Everything is set
up through the API as a user would: the first user (a system admin), a team, channels, System
Console settings, hooks. The counting receiver is ``bench/recv_count.py``.

Unlike ``harness.py`` this module does not import ``tidings``: a checkout whose code does not
import yet can still be measured against another's server.
"""

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from posts_per_second import PASSWORD, free_port, stop

FLOOR = Path(
    os.environ.get(
        "TIDINGS_BENCH_FLOOR", Path(__file__).resolve().parents[2] / "shared" / "bench-floor"
    )
)
PY = sys.executable

LOOPBACK_HOOKS: dict[str, Any] = {
    "EnableOutgoingWebhooks": True,  # the default, made explicit
    # The SSRF guard refuses loopback unless it is allowed.
    "AllowedUntrustedInternalConnections": "127.0.0.1",
    # One receiver and one owner get the worker's whole concurrency (as harness.World does):
    # by default a destination may hold 8 senders and an owner a quarter of them.
    "OutgoingWebhookMaxConcurrencyPerDestination": 64,
    "OutgoingWebhookMaxConcurrencyPerOwner": 64,
}


def source_path(checkout: Path | None) -> Path | None:
    """``--source DIR``: the ``src`` of another checkout (or ``DIR`` itself if it is a ``src``)."""
    if checkout is None:
        return None
    checkout = checkout.resolve()
    return checkout / "src" if (checkout / "src" / "tidings").is_dir() else checkout


def pinned(cpu: int | None, argv: list[str]) -> list[str]:
    """Pin a process to one core when asked, taskset exists and there are several cores."""
    taskset = shutil.which("taskset")
    if cpu is not None and taskset and (os.cpu_count() or 1) > 1:
        return [taskset, "-c", str(cpu), *argv]
    return argv


def pin_to_core(cpu: int) -> None:
    """Keep this process on one core when there are several."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {cpu})


@contextmanager
def tidings_server(
    source: Path | None = None,
    env: Mapping[str, str] | None = None,
    cpu: int | None = None,
) -> Iterator[str]:
    """``tidings serve`` on a fresh SQLite data directory and a free port; yields its base URL.

    ``source`` is put on the server's ``PYTHONPATH``; ``env`` adds ``TIDINGS_*`` settings (the
    caller's own are dropped); ``cpu`` pins the server to one core. The server's output goes to
    a log whose tail is printed if it does not come up or the block fails.
    """
    with tempfile.TemporaryDirectory(prefix="tidings-bench-") as folder:
        port = free_port()
        server_env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
        server_env |= {"TIDINGS_DATA_DIR": folder, "TIDINGS_LISTEN": f"127.0.0.1:{port}"}
        server_env |= dict(env or {})
        if source is not None:
            server_env["PYTHONPATH"] = str(source)
        log_path = Path(folder) / "serve.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                pinned(cpu, [PY, "-m", "tidings", "serve"]),
                env=server_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_pinged(base, process)
            yield base
        except BaseException:
            tail = log_path.read_text(errors="replace")[-3000:]
            print(f"the benchmark failed; tidings serve's log ends:\n{tail}", file=sys.stderr)
            raise
        finally:
            stop(process)


def wait_until_pinged(base: str, process: subprocess.Popen[bytes], within: float = 60) -> None:
    """Wait until ``GET /api/v4/system/ping`` answers 200 (migrations run first)."""
    deadline = time.monotonic() + within
    while True:
        try:
            with urllib.request.urlopen(f"{base}/api/v4/system/ping", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("tidings serve did not start")
        time.sleep(0.1)


@contextmanager
def counting_receiver(cpu: int | None = None, reply_text: bool = False) -> Iterator[str]:
    """``bench/recv_count.py`` on a free port; yields its base URL."""
    port = free_port()
    argv = [PY, str(Path(__file__).with_name("recv_count.py")), str(port)]
    if reply_text:
        argv.append("--reply-text")
    process = subprocess.Popen(pinned(cpu, argv))
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


async def receiver_counts(base: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"{base}/counts") as response:
        return dict(await response.json())


async def receiver_deliveries(base: str) -> dict[str, tuple[str, str, int]]:
    """Every delivery id the receiver saw: (post_id, path, requests)."""
    async with aiohttp.ClientSession() as session, session.get(f"{base}/deliveries") as response:
        return {
            k: (str(p), str(path), int(n)) for k, (p, path, n) in (await response.json()).items()
        }


async def forget_counts(base: str) -> None:
    async with aiohttp.ClientSession() as session, session.delete(f"{base}/counts") as response:
        assert response.status == 204


async def wait_for_deliveries(receiver: str, expected: int, within: float) -> dict[str, Any]:
    """Poll the receiver until it has ``expected`` distinct deliveries or ``within`` s pass."""
    deadline = time.monotonic() + within
    while True:
        counts = await receiver_counts(receiver)
        if counts["deliveries"] >= expected or time.monotonic() > deadline:
            return counts
        await asyncio.sleep(0.05)


@dataclass(frozen=True)
class Admin:
    """The first user of a fresh server (so a system admin), its token and its team."""

    base: str
    token: str
    user_id: str
    team_id: str

    def session(self, connections: int = 1, timeout: float = 60) -> aiohttp.ClientSession:
        """A client session as this user, with at most ``connections`` connections."""
        return aiohttp.ClientSession(
            base_url=self.base,
            connector=aiohttp.TCPConnector(limit=connections),
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=aiohttp.ClientTimeout(total=timeout),
        )


async def expect(response: aiohttp.ClientResponse, status: int) -> dict[str, Any]:
    body = await response.text()
    if response.status != status:
        raise RuntimeError(f"{response.method} {response.url}: {response.status} {body[:500]}")
    return dict(await response.json()) if body else {}


async def first_admin(base: str, team: str = "bench") -> Admin:
    """Create the first user (a system admin), log in, create a team."""
    async with aiohttp.ClientSession(base_url=base) as session:
        user = {"username": "bench", "email": "bench@example.test", "password": PASSWORD}
        async with session.post("/api/v4/users", json=user) as response:
            user_id = (await expect(response, 201))["id"]
        login = {"login_id": "bench", "password": PASSWORD}
        async with session.post("/api/v4/users/login", json=login) as response:
            await expect(response, 200)
            token = response.headers["Token"]
        headers = {"Authorization": f"Bearer {token}"}
        body = {"name": team, "display_name": team.title(), "type": "O"}
        async with session.post("/api/v4/teams", json=body, headers=headers) as response:
            team_id = (await expect(response, 201))["id"]
    return Admin(base, token, str(user_id), str(team_id))


async def patch_service_settings(admin: Admin, settings: Mapping[str, Any]) -> None:
    async with (
        admin.session() as session,
        session.put("/api/v4/config/patch", json={"ServiceSettings": dict(settings)}) as response,
    ):
        await expect(response, 200)


async def create_channels(admin: Admin, names: Sequence[str]) -> list[str]:
    """Public channels in the admin's team (the admin is a member of each); their ids."""
    ids = []
    async with admin.session() as session:
        for name in names:
            body = {"team_id": admin.team_id, "name": name, "display_name": name, "type": "O"}
            async with session.post("/api/v4/channels", json=body) as response:
                ids.append(str((await expect(response, 201))["id"]))
    return ids


def hook_body(
    admin: Admin,
    channel_id: str,
    callback_url: str,
    trigger_words: Sequence[str] = (),
    name: str = "bench",
) -> dict[str, Any]:
    """An outgoing hook of the admin's team, channel-scoped, sending JSON."""
    return {
        "team_id": admin.team_id,
        "channel_id": channel_id,
        "trigger_words": list(trigger_words),
        "callback_urls": [callback_url],
        "content_type": "application/json",
        "display_name": name[:64],
    }


async def create_hook(session: aiohttp.ClientSession, body: Mapping[str, Any]) -> dict[str, Any]:
    async with session.post("/api/v4/hooks/outgoing", json=dict(body)) as response:
        return await expect(response, 201)
