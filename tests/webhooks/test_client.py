"""The webhook HTTP client against real receivers on 127.0.0.1: outcomes, limits and the SSRF guard.

Only loopback addresses are ever contacted; names are limited to ``localhost`` (from /etc/hosts).
"""

import asyncio
import gzip
import socket
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from ipaddress import ip_address

import brotli
import pytest
from aiohttp import web

from tidings import __version__
from tidings.domain.deliveries import ErrorKind
from tidings.webhooks.client import (
    ACCEPT_ENCODING,
    FORBIDDEN_MESSAGE,
    MAX_LOGGED_HEADER_BYTES,
    MAX_LOGGED_HEADER_VALUE,
    MAX_LOGGED_HEADERS,
    OMITTED_HEADERS,
    WebhookClient,
    own_ip_addresses,
)

JSON = {"Content-Type": "application/json"}
TWO_MIB = 2 * 1_048_576


@dataclass(frozen=True, slots=True)
class Seen:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    peer_port: int


@dataclass(slots=True)
class Receiver:
    """A local HTTP server that records what reaches it."""

    port: int = 0
    requests: list[Seen] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def paths(self) -> list[str]:
        return [seen.path for seen in self.requests]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A receiver with one route per behaviour the client must handle."""
    rec = Receiver()

    async def record(request: web.Request) -> None:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        rec.requests.append(
            Seen(request.path, dict(request.headers), await request.read(), peer[1] if peer else 0)
        )

    async def ok(request: web.Request) -> web.Response:
        await record(request)
        headers = {"Set-Cookie": "session=abc; Path=/"}
        return web.json_response({"text": "hi"}, headers=headers)

    async def redirect(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=302, headers={"Location": "/target"})

    async def fail(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=500, body=b"boom", headers={"Retry-After": "120"})

    async def big(request: web.Request) -> web.StreamResponse:
        await record(request)
        response = web.StreamResponse()
        await response.prepare(request)
        chunk = b"x" * 65_536
        for _ in range(TWO_MIB // len(chunk)):
            await response.write(chunk)
        await rec.release.wait()  # never finishes while the test runs: EOF must not be awaited
        return response

    async def hang(request: web.Request) -> web.Response:
        await record(request)
        await rec.release.wait()
        return web.Response(text="too late")

    async def gated(request: web.Request) -> web.Response:
        await record(request)
        await rec.gate.wait()
        return web.Response(text="done")

    app = web.Application()
    app.router.add_post("/ok", ok)
    app.router.add_post("/redirect", redirect)
    app.router.add_route("*", "/target", ok)
    app.router.add_post("/fail", fail)
    app.router.add_post("/big", big)
    app.router.add_post("/hang", hang)
    app.router.add_post("/gated", gated)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.port = runner.addresses[0][1]
    yield rec
    rec.release.set()
    rec.gate.set()
    await runner.cleanup()


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[[bytes], Awaitable[int]]]:
    """Start TCP servers on 127.0.0.1 that answer every connection with fixed bytes, then close."""
    servers: list[asyncio.Server] = []

    async def start(reply: bytes) -> int:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(reply)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def client() -> AsyncIterator[WebhookClient]:
    """A client whose allow-list admits the receivers' 127.0.0.1 URLs."""
    async with WebhookClient("127.0.0.1") as webhook_client:
        yield webhook_client


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def reaches_mapped_loopback(port: int) -> bool:
    """Whether this machine can connect to ::ffff:127.0.0.1 over an IPv6 socket."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.settimeout(1.0)
            probe.connect(("::ffff:127.0.0.1", port))
    except OSError:
        return False
    return True


async def test_2xx_returns_status_body_and_headers(
    client: WebhookClient, receiver: Receiver
) -> None:
    """A 2xx reply comes back whole, with no error and a measured duration."""
    outcome = await client.post(f"{receiver.url}/ok", b"{}", JSON, timeout_seconds=5)
    assert outcome.status_code == 200
    assert outcome.error_kind is ErrorKind.NONE
    assert outcome.error_message == ""
    assert outcome.body == b'{"text": "hi"}'
    assert outcome.headers["Content-Type"].startswith("application/json")
    assert not outcome.truncated
    assert outcome.retry_after is None
    assert outcome.duration_ms >= 0


async def test_receiver_gets_body_user_agent_and_custom_headers(
    client: WebhookClient, receiver: Receiver
) -> None:
    """The request carries the body, Tidings' User-Agent and the caller's headers."""
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Probe": "yes"}
    await client.post(f"{receiver.url}/ok", b"text=hello", headers, timeout_seconds=5)
    [seen] = receiver.requests
    assert seen.body == b"text=hello"
    assert seen.headers["User-Agent"] == f"Tidings/{__version__}"
    assert seen.headers["X-Probe"] == "yes"
    assert seen.headers["Content-Type"] == "application/x-www-form-urlencoded"


async def test_cookies_are_not_kept(client: WebhookClient, receiver: Receiver) -> None:
    """A Set-Cookie from one receiver is never sent back on a later request."""
    await client.post(f"{receiver.url}/ok", b"{}", JSON, timeout_seconds=5)
    await client.post(f"{receiver.url}/ok", b"{}", JSON, timeout_seconds=5)
    assert "Cookie" not in receiver.requests[1].headers


async def test_proxy_environment_is_ignored(
    client: WebhookClient, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP_PROXY in the environment does not divert callbacks."""
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{free_port()}")
    outcome = await client.post(f"{receiver.url}/ok", b"{}", JSON, timeout_seconds=5)
    assert outcome.status_code == 200


async def test_redirect_is_not_followed(client: WebhookClient, receiver: Receiver) -> None:
    """A 302 is an outcome naming the Location; the redirect target is never requested."""
    outcome = await client.post(f"{receiver.url}/redirect", b"{}", JSON, timeout_seconds=5)
    assert outcome.status_code == 302
    assert outcome.error_kind is ErrorKind.REDIRECT
    assert "/target" in outcome.error_message
    assert receiver.paths() == ["/redirect"]


async def test_body_is_capped_at_one_mebibyte(client: WebhookClient, receiver: Receiver) -> None:
    """A 2 MiB reply is cut at 1 MiB, flagged, and the call returns without waiting for its end."""
    started = time.monotonic()
    outcome = await client.post(f"{receiver.url}/big", b"{}", JSON, timeout_seconds=10)
    assert time.monotonic() - started < 5
    assert outcome.status_code == 200
    assert outcome.error_kind is ErrorKind.NONE
    assert outcome.truncated
    assert len(outcome.body) == 1_048_576


async def test_hanging_receiver_times_out(client: WebhookClient, receiver: Receiver) -> None:
    """A receiver that never answers costs about the timeout and says which setting to raise."""
    outcome = await client.post(f"{receiver.url}/hang", b"{}", JSON, timeout_seconds=0.5)
    assert outcome.error_kind is ErrorKind.TIMEOUT
    assert "OutgoingIntegrationRequestsTimeout" in outcome.error_message
    assert 400 <= outcome.duration_ms < 3000


async def test_refused_connection_is_a_connect_error(client: WebhookClient) -> None:
    """Nothing listening on an allowed address gives CONNECT and no status."""
    outcome = await client.post(f"http://127.0.0.1:{free_port()}/", b"{}", JSON, timeout_seconds=5)
    assert outcome.error_kind is ErrorKind.CONNECT
    assert outcome.status_code == 0


async def test_server_error_keeps_body_and_retry_after(
    client: WebhookClient, receiver: Receiver
) -> None:
    """A 500 is HTTP_STATUS with its body and Retry-After surfaced for the retry policy."""
    outcome = await client.post(f"{receiver.url}/fail", b"{}", JSON, timeout_seconds=5)
    assert outcome.status_code == 500
    assert outcome.error_kind is ErrorKind.HTTP_STATUS
    assert outcome.body == b"boom"
    assert outcome.retry_after == "120"


async def test_closed_without_answer_is_a_connect_error(
    client: WebhookClient, raw_server: Callable[[bytes], Awaitable[int]]
) -> None:
    """A receiver that hangs up without answering gives CONNECT, which the policy retries."""
    port = await raw_server(b"")
    outcome = await client.post(f"http://127.0.0.1:{port}/", b"{}", JSON, timeout_seconds=5)
    assert outcome.error_kind is ErrorKind.CONNECT
    assert outcome.status_code == 0


async def test_garbage_reply_is_a_protocol_error(
    client: WebhookClient, raw_server: Callable[[bytes], Awaitable[int]]
) -> None:
    """Bytes that are not HTTP give PROTOCOL rather than an exception."""
    port = await raw_server(b"SMTP ready\r\n\r\n")
    outcome = await client.post(f"http://127.0.0.1:{port}/", b"{}", JSON, timeout_seconds=5)
    assert outcome.error_kind is ErrorKind.PROTOCOL


@pytest.mark.parametrize(
    "url", ["not a url", "ftp://127.0.0.1/hook", "http://", "http://127.1/", "http://[::1/"]
)
async def test_malformed_url_is_invalid_url(client: WebhookClient, url: str) -> None:
    """URLs that cannot be requested, including legacy numeric IPv4 forms, give INVALID_URL."""
    outcome = await client.post(url, b"{}", JSON, timeout_seconds=5)
    assert outcome.error_kind is ErrorKind.INVALID_URL
    assert outcome.status_code == 0


async def test_loopback_refused_with_empty_allowlist(receiver: Receiver) -> None:
    """With no allow-list a 127.0.0.1 URL is refused before any byte reaches the receiver."""
    async with WebhookClient("") as client:
        outcome = await client.post(f"{receiver.url}/ok", b"{}", JSON, timeout_seconds=5)
    assert outcome.error_kind is ErrorKind.FORBIDDEN_ADDRESS
    assert FORBIDDEN_MESSAGE in outcome.error_message
    assert "127.0.0.1" in outcome.error_message
    assert receiver.requests == []


async def test_localhost_needs_its_own_entry_or_a_cidr(receiver: Receiver) -> None:
    """An IP entry does not admit a name resolving to it; the name or a CIDR entry does."""
    url = f"http://localhost:{receiver.port}/ok"
    async with WebhookClient("127.0.0.1") as client:
        refused = await client.post(url, b"{}", JSON, timeout_seconds=5)
        assert refused.error_kind is ErrorKind.FORBIDDEN_ADDRESS
        assert receiver.requests == []
        client.set_allowlist("localhost")
        by_name = await client.post(url, b"{}", JSON, timeout_seconds=5)
        client.set_allowlist("127.0.0.0/8")
        by_cidr = await client.post(url, b"{}", JSON, timeout_seconds=5)
    assert (by_name.status_code, by_cidr.status_code) == (200, 200)
    assert len(receiver.requests) == 2


async def test_allowlist_change_drops_pooled_connections(receiver: Receiver) -> None:
    """A kept-alive connection opened while allowed is not reused once the allow-list forbids it."""
    url = f"{receiver.url}/ok"
    async with WebhookClient("127.0.0.1") as client:
        await client.post(url, b"{}", JSON, timeout_seconds=5)
        await client.post(url, b"{}", JSON, timeout_seconds=5)
        assert receiver.requests[0].peer_port == receiver.requests[1].peer_port  # pooled
        client.set_allowlist("")
        refused = await client.post(url, b"{}", JSON, timeout_seconds=5)
        client.set_allowlist("127.0.0.1")
        again = await client.post(url, b"{}", JSON, timeout_seconds=5)
    assert refused.error_kind is ErrorKind.FORBIDDEN_ADDRESS
    assert again.status_code == 200
    assert len(receiver.requests) == 3
    assert receiver.requests[2].peer_port != receiver.requests[1].peer_port


async def test_unchanged_allowlist_keeps_the_pool(receiver: Receiver) -> None:
    """Re-saving the same allow-list (other spacing) keeps kept-alive connections."""
    url = f"{receiver.url}/ok"
    async with WebhookClient("127.0.0.1") as client:
        await client.post(url, b"{}", JSON, timeout_seconds=5)
        client.set_allowlist(" 127.0.0.1 ,")
        await client.post(url, b"{}", JSON, timeout_seconds=5)
    assert receiver.requests[0].peer_port == receiver.requests[1].peer_port


async def test_in_flight_request_survives_allowlist_change(receiver: Receiver) -> None:
    """A request already under way finishes after the allow-list changes; new ones are refused."""
    async with WebhookClient("127.0.0.1") as client:
        in_flight = asyncio.create_task(
            client.post(f"{receiver.url}/gated", b"{}", JSON, timeout_seconds=5)
        )
        for _ in range(200):
            if receiver.requests:
                break
            await asyncio.sleep(0.01)
        client.set_allowlist("")
        refused = await client.post(f"{receiver.url}/ok", b"{}", JSON, timeout_seconds=5)
        receiver.gate.set()
        finished = await in_flight
    assert refused.error_kind is ErrorKind.FORBIDDEN_ADDRESS
    assert finished.status_code == 200
    assert receiver.paths() == ["/gated"]


async def test_mapped_ipv6_loopback_is_refused(receiver: Receiver) -> None:
    """http://[::ffff:127.0.0.1]/ is judged as 127.0.0.1: refused, but admitted by 127.0.0.0/8."""
    if not reaches_mapped_loopback(receiver.port):
        pytest.skip("this machine cannot connect to ::ffff:127.0.0.1 over IPv6")
    url = f"http://[::ffff:127.0.0.1]:{receiver.port}/ok"
    async with WebhookClient("") as client:
        refused = await client.post(url, b"{}", JSON, timeout_seconds=5)
        assert receiver.requests == []
        client.set_allowlist("127.0.0.0/8")
        admitted = await client.post(url, b"{}", JSON, timeout_seconds=5)
    assert refused.error_kind is ErrorKind.FORBIDDEN_ADDRESS
    assert admitted.status_code == 200


async def test_post_before_start_is_a_programming_error() -> None:
    """Using a client that was never started raises instead of returning an outcome."""
    with pytest.raises(RuntimeError, match="start"):
        await WebhookClient().post("http://127.0.0.1:9/", b"", {}, timeout_seconds=1)


def test_own_ip_addresses_include_loopback() -> None:
    """The interface listing has 127.0.0.1 and not a public address."""
    own = own_ip_addresses()
    assert own is not None
    assert ip_address("127.0.0.1") in own
    assert ip_address("8.0.0.8") not in own


def test_own_ip_addresses_fail_closed() -> None:
    """When interfaces cannot be listed the answer is None, which refuses every address."""

    def broken() -> dict[str, list[object]]:
        raise OSError("no netlink")

    assert own_ip_addresses(broken) is None


# --- compressed replies and stored headers -------------------------------------------------------

CAP = 1_048_576


@pytest.fixture
async def http_reply() -> AsyncIterator[Callable[[bytes], Awaitable[str]]]:
    """Servers that read the whole request, answer with fixed bytes and close; returns the URL."""
    servers: list[asyncio.Server] = []
    seen: list[bytes] = []

    async def start(reply: bytes) -> str:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = await reader.readuntil(b"\r\n\r\n")
            seen.append(head)
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            writer.write(reply)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"

    start.seen = seen  # type: ignore[attr-defined]
    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def encoded_reply(body: bytes, coding: str, *, status: str = "200 OK") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Encoding: {coding}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9)


def deflated(data: bytes, *, raw: bool = False) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


BOMB = b'{"text":"' + b"A" * (64 * CAP) + b'"}'


@pytest.mark.parametrize(
    ("coding", "pack"),
    [("gzip", gzipped), ("deflate", deflated), ("br", brotli.compress)],
)
async def test_compression_bomb_stops_at_the_cap_after_decoding(
    client: WebhookClient,
    http_reply: Callable[[bytes], Awaitable[str]],
    coding: str,
    pack: Callable[[bytes], bytes],
) -> None:
    """64 MiB of reply in a small compressed body: 1 MiB decoded, flagged, little memory used."""
    wire = pack(BOMB)
    assert len(wire) < CAP
    url = await http_reply(encoded_reply(wire, coding))
    tracemalloc.start()
    try:
        outcome = await client.post(url, b"{}", JSON, timeout_seconds=10)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcome.status_code == 200
    assert outcome.truncated
    assert outcome.body == BOMB[:CAP]
    assert peak < 12 * CAP, f"peak {peak} bytes while reading a {coding} bomb"


@pytest.mark.parametrize(
    ("coding", "pack"),
    [
        ("gzip", gzipped),
        ("x-gzip", gzipped),
        ("deflate", deflated),
        ("deflate", lambda data: deflated(data, raw=True)),
        ("br", brotli.compress),
        ("GZIP", lambda data: gzipped(data[:10]) + gzipped(data[10:])),  # two members
        ("identity", lambda data: data),
    ],
)
async def test_compressed_reply_within_the_cap_is_decoded(
    client: WebhookClient,
    http_reply: Callable[[bytes], Awaitable[str]],
    coding: str,
    pack: Callable[[bytes], bytes],
) -> None:
    body = b'{"text":"' + b"ok " * 100_000 + b'"}'
    url = await http_reply(encoded_reply(pack(body), coding))
    outcome = await client.post(url, b"{}", JSON, timeout_seconds=10)
    assert outcome.error_kind is ErrorKind.NONE
    assert not outcome.truncated
    assert outcome.body == body


async def test_exactly_the_cap_after_decoding_is_not_truncated(
    client: WebhookClient, http_reply: Callable[[bytes], Awaitable[str]]
) -> None:
    body = b"x" * CAP
    url = await http_reply(encoded_reply(gzipped(body), "gzip"))
    outcome = await client.post(url, b"{}", JSON, timeout_seconds=10)
    assert (outcome.truncated, len(outcome.body)) == (False, CAP)


@pytest.mark.parametrize(
    ("coding", "wire", "reason"),
    [
        ("zstd", b"\x28\xb5\x2f\xfd", "unsupported Content-Encoding 'zstd'"),
        ("gzip, gzip", gzipped(gzipped(b"{}")), "unsupported Content-Encoding 'gzip, gzip'"),
        ("gzip", b"\x1f\x8b\x08\x00garbage-not-deflate", "cannot be decoded"),
        ("gzip", gzipped(b'{"text": "cut off"}')[:-6], "ended before its compressed data did"),
        ("br", b"\xff\xff\xff\xff", "cannot be decoded"),
        ("deflate", deflated(b'{"text": "cut"}' * 50)[:20], "ended before its compressed data"),
    ],
)
async def test_undecodable_2xx_is_a_bad_reply_with_nothing_to_post(
    client: WebhookClient,
    http_reply: Callable[[bytes], Awaitable[str]],
    coding: str,
    wire: bytes,
    reason: str,
) -> None:
    """The receiver answered 2xx, so this is no transport failure (not retried), but no body."""
    url = await http_reply(encoded_reply(wire, coding))
    outcome = await client.post(url, b"{}", JSON, timeout_seconds=10)
    assert outcome.status_code == 200
    assert outcome.error_kind is ErrorKind.BAD_REPLY
    assert reason in outcome.error_message
    assert outcome.body == b""


async def test_undecodable_error_status_keeps_its_status_kind(
    client: WebhookClient, http_reply: Callable[[bytes], Awaitable[str]]
) -> None:
    url = await http_reply(encoded_reply(b"nope", "zstd", status="503 Busy"))
    outcome = await client.post(url, b"{}", JSON, timeout_seconds=10)
    assert (outcome.status_code, outcome.error_kind) == (503, ErrorKind.HTTP_STATUS)


async def test_accept_encoding_names_what_the_client_decodes(
    client: WebhookClient, receiver: Receiver
) -> None:
    await client.post(f"{receiver.url}/ok", b"{}", JSON, timeout_seconds=5)
    assert receiver.requests[0].headers["Accept-Encoding"] == ACCEPT_ENCODING == "gzip, deflate, br"


async def test_stored_headers_are_capped_in_count_and_size(
    client: WebhookClient, http_reply: Callable[[bytes], Awaitable[str]]
) -> None:
    """100 headers, one of 7 KiB: at most 50 names and 8 KiB kept, the rest counted."""
    lines = [f"X-Many-{i}: value-{i}" for i in range(100)]
    lines.insert(3, "X-Huge: " + "h" * 7000)
    lines.append("Retry-After: 30")
    head = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + "\r\n".join(lines) + "\r\n\r\n{}"
    url = await http_reply(head.encode())
    outcome = await client.post(url, b"{}", JSON, timeout_seconds=5)
    assert outcome.status_code == 200
    kept = {name: value for name, value in outcome.headers.items() if name != OMITTED_HEADERS}
    assert len(kept) <= MAX_LOGGED_HEADERS
    assert sum(len(name) + len(value) for name, value in kept.items()) <= MAX_LOGGED_HEADER_BYTES
    assert kept["X-Huge"] == "h" * MAX_LOGGED_HEADER_VALUE
    assert int(outcome.headers[OMITTED_HEADERS]) == 103 - len(kept)
    assert outcome.retry_after == "30"  # read from the full headers, not the kept ones


async def test_repeated_header_is_joined_within_the_value_cap(
    client: WebhookClient, http_reply: Callable[[bytes], Awaitable[str]]
) -> None:
    lines = "".join(f"Set-Cookie: c{i}={'v' * 100}\r\n" for i in range(60))
    url = await http_reply(f"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n{lines}\r\n".encode())
    outcome = await client.post(url, b"{}", JSON, timeout_seconds=5)
    assert len(outcome.headers["Set-Cookie"]) <= MAX_LOGGED_HEADER_VALUE
    assert outcome.headers["Set-Cookie"].startswith("c0=")
    assert int(outcome.headers[OMITTED_HEADERS]) > 0


async def test_undecodable_header_bytes_are_stored_as_text(
    client: WebhookClient, http_reply: Callable[[bytes], Awaitable[str]]
) -> None:
    """Bytes that are not UTF-8 become U+FFFD, so the attempt row can be written anywhere."""
    url = await http_reply(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Bin: a\xff\xfeb c\r\n\r\n")
    outcome = await client.post(url, b"{}", JSON, timeout_seconds=5)
    value = outcome.headers["X-Bin"]
    value.encode("utf-8")  # no lone surrogates
    assert value.startswith("a")
    assert value.endswith("c")
    assert "\ufffd" in value
    assert not any(ord(ch) < 0x20 for ch in value)


async def test_control_character_in_a_header_is_invalid_http(
    client: WebhookClient, http_reply: Callable[[bytes], Awaitable[str]]
) -> None:
    """A control character other than tab in a header value is not HTTP (RFC 9110 §5.5)."""
    url = await http_reply(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Bin: a\x01c\r\n\r\n")
    outcome = await client.post(url, b"{}", JSON, timeout_seconds=5)
    assert outcome.error_kind is ErrorKind.PROTOCOL
    assert "invalid HTTP response" in outcome.error_message


async def test_redirect_message_bounds_the_location(
    client: WebhookClient, http_reply: Callable[[bytes], Awaitable[str]]
) -> None:
    location = "http://127.0.0.1/" + "a" * 6000
    url = await http_reply(
        f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode()
    )
    outcome = await client.post(url, b"{}", JSON, timeout_seconds=5)
    assert outcome.error_kind is ErrorKind.REDIRECT
    assert len(outcome.error_message) < 700


@pytest.mark.parametrize(
    "host", ["[::7f00:1]", "[fec0::1]", "[64:ff9b:1::7f00:1]", "[::ffff:0:7f00:1]"]
)
async def test_ipv6_forms_reaching_private_space_are_refused_at_connect(host: str) -> None:
    """The guard refuses the resolved literal before any socket connects (empty allow-list)."""
    async with WebhookClient("") as guarded:
        outcome = await guarded.post(f"http://{host}:9/", b"{}", JSON, timeout_seconds=5)
    assert outcome.error_kind is ErrorKind.FORBIDDEN_ADDRESS
    assert "reserved range" in outcome.error_message
