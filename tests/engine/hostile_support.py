"""Receivers that misbehave on purpose, for the hostile-receiver suite: a raw TCP server on
127.0.0.1 whose every connection is handed to one scenario coroutine, a ping poller that measures
the server's API latency while a scenario runs, and read-only views of the delivery log."""

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from sqlalchemy import select

from support import ServerThread, wait_until
from tidings.store.schema import deliveries, delivery_attempts

Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

# No scenario may hold a connection longer than this, whatever the client does.
SCENARIO_LIMIT_SECONDS = 8.0


class HostileServer:
    """A TCP server in its own thread and event loop; each connection runs ``behaviour``."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("hostile server did not start")
        assert self._server is not None
        self.port: int = self._server.sockets[0].getsockname()[1]

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}/hook"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await asyncio.wait_for(self.behaviour(reader, writer), SCENARIO_LIMIT_SECONDS)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass  # the client went away or the scenario ran out of time: both are expected
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                writer.close()

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0, limit=1 << 20)
        )
        ready.set()
        self._loop.run_forever()

    def close(self) -> None:
        if self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


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
    """Polls ``GET /api/v4/system/ping`` in a thread for as long as it runs; keeps the worst time."""

    def __init__(self, base_url: str) -> None:
        self._client = httpx.Client(base_url=base_url, timeout=5.0)
        self._stop = threading.Event()
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "PingPoller":
        self._client.get("/api/v4/system/ping")  # open the connection outside the measurement
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self._client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                answer = self._client.get("/api/v4/system/ping")
                if answer.status_code != 200:
                    self.failures.append(f"HTTP {answer.status_code}")
            except httpx.HTTPError as exc:
                self.failures.append(repr(exc))
            self.latencies.append(time.monotonic() - started)
            self._stop.wait(0.02)

    @property
    def worst(self) -> float:
        return max(self.latencies, default=0.0)


def delivery_rows(server: ServerThread, **where: str) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        query = select(deliveries).order_by(deliveries.c.create_at, deliveries.c.id)
        for column, value in where.items():
            query = query.where(deliveries.c[column] == value)
        async with server.runtime.db.transaction() as conn:
            return [dict(row._mapping) for row in (await conn.execute(query)).all()]

    return server.run(read())


def attempt_rows(server: ServerThread, delivery_id: str) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        query = (
            select(delivery_attempts)
            .where(delivery_attempts.c.delivery_id == delivery_id)
            .order_by(delivery_attempts.c.number)
        )
        async with server.runtime.db.transaction() as conn:
            return [dict(row._mapping) for row in (await conn.execute(query)).all()]

    return server.run(read())


def finished_delivery(server: ServerThread, hook_id: str, timeout: float) -> dict[str, Any]:
    """The hook's one delivery once it is succeeded or failed."""

    def check() -> dict[str, Any] | None:
        rows = list(delivery_rows(server, hook_id=hook_id))
        done = [r for r in rows if r["status"] in ("succeeded", "failed")]
        return done[0] if done else None

    result: dict[str, Any] = wait_until(check, timeout=timeout, interval=0.05)
    return result
