"""The webhook client's HTTP/1.1 connection: what a receiver's bytes can and cannot make it do.

Most of its behaviour is tested through ``WebhookClient`` against real receivers
(``test_client.py``, the hostile-receiver suite); here are the limits that need exact bytes or a
stopwatch: the head's bounds, a head trickled a byte at a time, 1xx responses, bodies delimited by
the end of the connection, and when a connection is kept for the next request.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tidings.domain.deliveries import ErrorKind
from tidings.webhooks.client import WebhookClient
from tidings.webhooks.connection import (
    MAX_HEAD_BYTES,
    MAX_HEADERS,
    Connection,
    Response,
    ResponseFailed,
)

JSON = {"Content-Type": "application/json"}
Serve = Callable[[list[bytes]], Awaitable[str]]


class _Transport(asyncio.Transport):
    """Enough of a transport to drive a Connection by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.aborted


async def _exchange_fed(pieces: list[bytes]) -> tuple[Connection, asyncio.Task[Response]]:
    connection = Connection(1_048_576)
    connection.connection_made(_Transport())
    task: asyncio.Task[Response] = asyncio.ensure_future(
        connection.exchange(b"POST / HTTP/1.1\r\n")
    )
    await asyncio.sleep(0)
    for piece in pieces:
        connection.data_received(piece)
    await asyncio.sleep(0)
    return connection, task


def _head_with(header_bytes: int) -> bytes:
    value = b"v" * (header_bytes - len(b"X-Long: \r\n"))
    return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Long: " + value + b"\r\n\r\n{}"


async def _fed_bytewise_seconds(data: bytes) -> float:
    started = time.perf_counter()
    _, task = await _exchange_fed([data[i : i + 1] for i in range(len(data))])
    response = task.result()
    assert response.status == 200
    return time.perf_counter() - started


async def test_a_head_trickled_byte_by_byte_costs_linear_time() -> None:
    """A long header sent a byte at a time: 4× the bytes cost well under 16× the time (the
    parser, fed piece by piece, would rebuild the header on every byte)."""
    short = min([await _fed_bytewise_seconds(_head_with(12_000)) for _ in range(3)])
    long = min([await _fed_bytewise_seconds(_head_with(48_000)) for _ in range(3)])
    assert long / short < 8, (short, long)


async def test_a_head_past_its_limit_is_invalid_http() -> None:
    _, task = await _exchange_fed([_head_with(MAX_HEAD_BYTES + 1_000)[:-10]])
    with pytest.raises(ResponseFailed, match="head is larger"):
        task.result()


async def test_more_header_lines_than_allowed_are_invalid_http() -> None:
    lines = b"".join(b"X-H%d: v\r\n" % i for i in range(MAX_HEADERS + 1))
    _, task = await _exchange_fed([b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n" + lines + b"\r\n"])
    with pytest.raises(ResponseFailed, match=f"more than {MAX_HEADERS} header lines"):
        task.result()


async def test_informational_responses_are_skipped_in_one_read() -> None:
    connection, task = await _exchange_fed(
        [
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
            b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\nX-Final: yes\r\n\r\n{}"
        ]
    )
    response = task.result()
    assert response.status == 201
    assert response.headers == [(b"Content-Length", b"2"), (b"X-Final", b"yes")]
    assert connection.reusable


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """TCP servers on 127.0.0.1 answering each request on a connection with the next reply of
    a list; after the last one they keep the connection open. Returns the URL."""
    servers: list[asyncio.Server] = []

    async def start(replies: list[bytes]) -> str:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            for reply in replies:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                writer.write(reply)
                await writer.drain()
            await reader.read()

        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"

    yield start
    for server in servers:
        server.close()


async def test_a_body_ended_by_closing_is_complete() -> None:
    """No Content-Length and no chunking: the body runs to the end of the connection."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"text": "to the end"}')
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    async with server, WebhookClient("127.0.0.1") as client:
        outcome = await client.post(url, b"{}", JSON, timeout_seconds=5)
    assert outcome.error_kind is ErrorKind.NONE
    assert outcome.body == b'{"text": "to the end"}'


async def test_kept_alive_connection_carries_the_next_request(serve: Serve) -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    url = await serve([ok, ok])
    async with WebhookClient("127.0.0.1") as client:
        first = await client.post(url, b"{}", JSON, timeout_seconds=5)
        second = await client.post(url, b"{}", JSON, timeout_seconds=5)
    assert (first.status_code, second.status_code) == (200, 200)  # one connection answers both


async def test_connection_close_is_not_reused(serve: Serve) -> None:
    """After ``Connection: close`` the next request opens a new connection (the old one would
    never answer: this server answers once per connection and then waits)."""
    url = await serve([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"])
    async with WebhookClient("127.0.0.1") as client:
        first = await client.post(url, b"{}", JSON, timeout_seconds=5)
        second = await client.post(url, b"{}", JSON, timeout_seconds=2)
    assert (first.status_code, second.status_code) == (200, 200)


async def test_bytes_nobody_asked_for_close_the_connection(serve: Serve) -> None:
    """A reply followed by a second, unasked one: the connection is dropped, not kept to hand
    the stray reply to the next request."""
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    stray = b"HTTP/1.1 500 Stray\r\nContent-Length: 0\r\n\r\n"
    url = await serve([ok + stray])
    async with WebhookClient("127.0.0.1") as client:
        first = await client.post(url, b"{}", JSON, timeout_seconds=5)
        second = await client.post(url, b"{}", JSON, timeout_seconds=5)
    assert (first.status_code, second.status_code) == (200, 200)


async def test_a_header_with_a_line_break_is_not_sent(serve: Serve) -> None:
    url = await serve([])
    async with WebhookClient("127.0.0.1") as client:
        outcome = await client.post(url, b"{}", {"X-Bad": "a\r\nX-Injected: yes"}, 5)
    assert outcome.error_kind is ErrorKind.INVALID_URL
    assert "control character" in outcome.error_message


async def test_credentials_in_the_url_become_basic_auth() -> None:
    seen: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, WebhookClient("127.0.0.1") as client:
        outcome = await client.post(f"http://bot:s3cret@127.0.0.1:{port}/in?x=1", b"{}", JSON, 5)
    assert outcome.status_code == 204
    assert seen[0].startswith(b"POST /in?x=1 HTTP/1.1\r\n")
    assert b"Authorization: Basic Ym90OnMzY3JldA==\r\n" in seen[0]
    assert f"Host: 127.0.0.1:{port}\r\n".encode() in seen[0]
