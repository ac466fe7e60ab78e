"""Helpers for the operations tests: ``tidings serve`` as a real process on a known port, and
what the operating system says about the processes it started."""

import contextlib
import http.client
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from support import Api, free_port, wait_until


@dataclass
class Served:
    """A running ``tidings serve --processes N`` and what the operating system says about it."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    # Every child ever seen: still ours to clean up if the supervisor dies first.
    seen: list[psutil.Process] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def servers(self) -> dict[int, psutil.Process]:
        """The children listening on the port (not the supervisor, not multiprocessing's
        resource tracker), by pid."""
        found = {}
        children = psutil.Process(self.process.pid).children()
        self.seen.extend(c for c in children if c not in self.seen)
        for child in children:
            try:
                listening = any(
                    c.status == psutil.CONN_LISTEN and c.laddr.port == self.port
                    for c in child.net_connections("tcp")
                )
            except psutil.NoSuchProcess:
                continue
            if listening:
                found[child.pid] = child
        return found

    def serving_pid(self) -> int:
        """Make one request on a new connection; the pid of the child that answered it."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/api/v4/system/ping")
            response = conn.getresponse()
            assert response.status == 200
            response.read()
            client_port = conn.sock.getsockname()[1]
            owners = [
                pid
                for pid, child in self.servers().items()
                if any(
                    c.laddr.port == self.port and c.raddr and c.raddr.port == client_port
                    for c in child.net_connections("tcp")
                )
            ]
        finally:
            conn.close()
        assert len(owners) == 1, owners
        return owners[0]

    def answers(self) -> bool:
        """Whether the port takes connections and answers the health check."""
        try:
            return Api(self.url).request("GET", "/system/ping").status_code == 200
        except httpx.TransportError:
            return False

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def serving(url: str, log: Path, processes: int = 1, **settings: str) -> Iterator[Served]:
    """``tidings serve --processes N`` on ``url``, output in ``log``; killed with everything it
    started if the block ends with it still running (a test that passes stops it itself)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    env |= {
        "TIDINGS_DATABASE_URL": url,
        "TIDINGS_DATA_DIR": str(log.parent),
        "TIDINGS_LISTEN": f"127.0.0.1:{port}",
        "TIDINGS_WORKER_POLL_INTERVAL_SECONDS": "0.05",
        **{f"TIDINGS_{name.upper()}": value for name, value in settings.items()},
    }
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "tidings", "serve", "--processes", str(processes)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
        )
    served = Served(process, port, log)
    try:
        yield served
    finally:
        # A test that failed before stopping it: kill what it started, children included
        # (psutil refuses a pid that has since been reused).
        if process.poll() is None:
            served.seen.extend(psutil.Process(process.pid).children(recursive=True))
            process.kill()
            process.wait(10)
        for child in served.seen:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()


def gone(p: psutil.Process) -> bool:
    try:
        return p.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def stop(served: Served, sent: signal.Signals = signal.SIGTERM) -> int:
    """``sent`` to the ``serve`` process; its exit code, once every process it started is gone."""
    family = psutil.Process(served.process.pid).children(recursive=True)
    served.process.send_signal(sent)
    code = served.process.wait(60)
    wait_until(lambda: all(gone(p) for p in family), timeout=20)
    return code
