"""Receivers that misbehave on purpose, for the hostile-receiver suite: a raw TCP server on
127.0.0.1 (in a child process) whose every connection is handed to one scenario coroutine, a ping poller that measures
the server's API latency while a scenario runs, and read-only views of the delivery log."""

import asyncio
import contextlib
import multiprocessing
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from typing import Any

import httpx

from hooks.hooks_support import delivery_rows
from support import ServerThread, wait_until

Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

# No scenario may hold a connection longer than this, whatever the client does.
SCENARIO_LIMIT_SECONDS = 8.0


class HostileServer:
    """A TCP server in a child process (its own interpreter, so its CPU does not compete with the
    server under test for the GIL, as a real receiver would not); each connection runs
    ``behaviour``. The child is forked, so behaviours may be closures."""

    def __init__(self, behaviour: Behaviour) -> None:
        context = multiprocessing.get_context("fork")
        self._counter = context.Value("i", 0)
        parent, child = context.Pipe()
        self._process = context.Process(
            target=_serve_forever, args=(behaviour, child, self._counter), daemon=True
        )
        self._process.start()
        if not parent.poll(10):
            self._process.kill()
            raise RuntimeError("hostile server did not start")
        self.port: int = parent.recv()

    @property
    def connections(self) -> int:
        return int(self._counter.value)

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}/hook"

    def close(self) -> None:
        """Stop the child and every scenario still running in it (endless senders, sleepers)."""
        self._process.kill()
        self._process.join(5)


def _serve_forever(behaviour: Behaviour, conn: Connection, counter: Any) -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with counter.get_lock():
            counter.value += 1
        try:
            await asyncio.wait_for(behaviour(reader, writer), SCENARIO_LIMIT_SECONDS)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass  # the client went away or the scenario ran out of time: both are expected
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                writer.close()

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(asyncio.start_server(serve, "127.0.0.1", 0, limit=1 << 20))
    conn.send(server.sockets[0].getsockname()[1])
    loop.run_forever()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """Read one request (head and Content-Length body) so replies never race unread input."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + await reader.readexactly(length)


def response(
    body: bytes,
    *,
    status: str = "200 OK",
    headers: str = "Content-Type: application/json\r\n",
    length: int | None = None,
) -> bytes:
    declared = len(body) if length is None else length
    head = f"HTTP/1.1 {status}\r\n{headers}Content-Length: {declared}\r\nConnection: close\r\n\r\n"
    return head.encode("utf-8", "surrogateescape") + body


def replying(data: bytes) -> Behaviour:
    """Read the request, send ``data``, close."""

    async def behave(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(data)
        await writer.drain()

    return behave


def reset(writer: asyncio.StreamWriter) -> None:
    """Drop the connection with a TCP RST instead of a FIN."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class PingPoller:
    """Polls ``GET /api/v4/system/ping`` from a child process for as long as it runs and keeps
    every latency. A separate process, like a real client: in a thread of the test process the
    poller would also measure its own waits for the GIL."""

    def __init__(self, base_url: str) -> None:
        context = multiprocessing.get_context("fork")
        self._base_url = base_url
        self._stop = context.Event()
        self._ready = context.Event()
        self._results, child = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_poll, args=(base_url, self._stop, self._ready, child), daemon=True
        )
        self.latencies: list[float] = []
        self.failures: list[str] = []

    def __enter__(self) -> "PingPoller":
        self._process.start()
        if not self._ready.wait(10):
            self._process.kill()
            raise RuntimeError("ping poller did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._results.poll(10):
            self.latencies, self.failures = self._results.recv()
        self._process.join(5)
        if self._process.is_alive():
            self._process.kill()

    @property
    def worst(self) -> float:
        return max(self.latencies, default=0.0)


def _poll(base_url: str, stop: Any, ready: Any, results: Connection) -> None:
    latencies: list[float] = []
    failures: list[str] = []
    with httpx.Client(base_url=base_url, timeout=5.0) as client:
        client.get("/api/v4/system/ping")  # open the connection outside the measurement
        ready.set()
        while not stop.is_set():
            started = time.monotonic()
            try:
                answer = client.get("/api/v4/system/ping")
                if answer.status_code != 200:
                    failures.append(f"HTTP {answer.status_code}")
            except httpx.HTTPError as exc:
                failures.append(repr(exc))
            latencies.append(time.monotonic() - started)
            stop.wait(0.02)
    results.send((latencies, failures))


def finished_delivery(server: ServerThread, hook_id: str, timeout: float) -> dict[str, Any]:
    """The hook's one delivery once it is succeeded or failed."""

    def check() -> dict[str, Any] | None:
        rows = list(delivery_rows(server, hook_id=hook_id))
        done = [r for r in rows if r["status"] in ("succeeded", "failed")]
        return done[0] if done else None

    result: dict[str, Any] = wait_until(check, timeout=timeout, interval=0.05)
    return result
