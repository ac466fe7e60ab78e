"""The hostile-receiver suite: one bad bot costs only its own deliveries.

Each scenario is a real receiver on 127.0.0.1 that misbehaves in one way (raw TCP where aiohttp's
server cannot misbehave enough). A post fires the hostile hook and, beside it, a healthy hook.
Every scenario must end in the recorded outcome (delivery state, attempt row), post nothing it
should not, keep ``GET /api/v4/system/ping`` under 100 ms throughout, and leave the healthy hook's
replies flowing. Hostile hooks get a 1 s timeout and no retries, so hanging cases end quickly.
"""

import asyncio
import gzip
import json
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import brotli
import pytest
from hostile_support import (
    Behaviour,
    HostileServer,
    PingPoller,
    finished_delivery,
    read_request,
    replying,
    reset,
    response,
)

from hooks.hooks_support import attempt_rows
from support import Api, Factory, Receiver, ServerThread, wait_until
from tidings.webhooks.client import MAX_LOGGED_HEADER_BYTES, MAX_LOGGED_HEADERS, OMITTED_HEADERS

# Held to a latency bound: on a server process like ``tidings serve`` (conftest.served_process).
pytestmark = [pytest.mark.db, pytest.mark.usefixtures("served_process")]

MiB = 1_048_576
PING_LIMIT_SECONDS = 0.1
BOMB_TEXT = b'{"text":"' + b"A" * (64 * MiB) + b'"}'


@dataclass(frozen=True)
class Expect:
    """What the hostile delivery must come to."""

    status: str  # the delivery's final state
    error_kind: str  # the attempt's error kind
    status_code: int | None = None  # the attempt's HTTP status (None: not checked)
    posts: tuple[str, ...] = ()  # the messages the hostile hook may post, exactly
    message_has: str = ""  # a phrase the attempt's error message must contain
    scheme: str = "http"
    extra: dict[str, Any] = field(default_factory=dict)


def encoded(body: bytes, coding: str) -> bytes:
    return response(
        body, headers=f"Content-Type: application/json\r\nContent-Encoding: {coding}\r\n"
    )


def deflated(data: bytes) -> bytes:
    packer = zlib.compressobj(9)
    return packer.compress(data) + packer.flush()


async def slow_headers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n":
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(1.0)


async def slow_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    body = b'{"text": "slowly"}'
    writer.write(response(body)[: -len(body)])
    for byte in body:
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(0.5)


async def endless_chunks(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    writer.write(b"Transfer-Encoding: chunked\r\n\r\n")
    writer.write(b'9\r\n{"text":"\r\n')
    chunk = b"A" * 16_384
    while True:
        writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        await writer.drain()


async def endless_informational(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    while True:
        writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.001)


async def reset_mid_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(response(b'{"text": "cut', length=5000))
    await writer.drain()
    await asyncio.sleep(0.05)
    reset(writer)


async def close_without_response(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    await read_request(reader)


async def short_body_kept_open(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(response(b'{"text": "hal', length=100))
    await writer.drain()
    await asyncio.sleep(5)


async def plain_answer_to_tls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(100)  # a TLS ClientHello: a plain HTTP server answers it with a 400
    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    await writer.drain()


INFORMATIONAL_FLOOD = (
    b"HTTP/1.1 100 Continue\r\n\r\n" * 500
    + b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" * 500
    + response(b'{"text": "after the 1xx flood"}')
)

INJECTION = {
    "text": "line one\r\nX-Injected: yes\r\n\r\n<script>alert(1)</script>",
    "username": "evil\r\nSet-Cookie: a=b",
    "icon_url": "http://127.0.0.1/\r\nX-Injected: yes",
    "props": {"from_webhook": "false", "webhook_display_name": "Admin\r\nX: y"},
}

SCENARIOS: dict[str, tuple[Behaviour, Expect]] = {
    "gzip bomb": (
        replying(encoded(gzip.compress(BOMB_TEXT, 9), "gzip")),
        Expect("succeeded", "bad_reply", 200, message_has="larger than 1 MiB"),
    ),
    "deflate bomb": (
        replying(encoded(deflated(BOMB_TEXT), "deflate")),
        Expect("succeeded", "bad_reply", 200, message_has="larger than 1 MiB"),
    ),
    "br bomb": (
        replying(encoded(brotli.compress(BOMB_TEXT), "br")),
        Expect("succeeded", "bad_reply", 200, message_has="larger than 1 MiB"),
    ),
    "gzip within the cap": (
        replying(encoded(gzip.compress(b'{"text": "zipped ' + b"z" * 500 + b'"}'), "gzip")),
        Expect("succeeded", "", 200, posts=("zipped " + "z" * 500,)),
    ),
    "corrupt gzip": (
        replying(encoded(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03not deflate", "gzip")),
        Expect("succeeded", "bad_reply", 200, message_has="cannot be decoded"),
    ),
    "unknown content encoding": (
        replying(encoded(b"(\xb5/\xfd", "zstd")),
        Expect("succeeded", "bad_reply", 200, message_has="unsupported Content-Encoding"),
    ),
    "huge declared length, short body": (
        replying(response(b'{"text": "short"}', length=10 * 1024**3)),
        Expect("failed", "protocol", message_has="before the response was complete"),
    ),
    "content length longer than sent, kept open": (
        short_body_kept_open,
        Expect("failed", "timeout", message_has="no complete response"),
    ),
    "slow headers": (slow_headers, Expect("failed", "timeout")),
    "slow body": (slow_body, Expect("failed", "timeout")),
    "endless chunked body": (
        endless_chunks,
        Expect("succeeded", "bad_reply", 200, message_has="larger than 1 MiB"),
    ),
    "huge single header": (
        replying(response(b"{}", headers="X-Huge: " + "h" * 200_000 + "\r\n")),
        Expect("failed", "protocol", message_has="invalid HTTP response"),
    ),
    "thousands of headers": (
        replying(response(b"{}", headers="".join(f"X-H{i}: v\r\n" for i in range(5000)))),
        Expect("failed", "protocol", message_has="invalid HTTP response"),
    ),
    "many large headers are stored capped": (
        replying(
            response(
                b'{"text": "headers capped"}',
                headers="".join(f"X-Big-{i}: {'b' * 500}\r\n" for i in range(100)),
            )
        ),
        Expect("succeeded", "", 200, posts=("headers capped",), extra={"headers_capped": True}),
    ),
    "binary bytes in a header": (
        replying(response(b"{}", headers="X-Bin: a\udcff\udcfeb\r\n")),
        Expect("succeeded", "", 200, extra={"header_text": "X-Bin"}),
    ),
    "bad UTF-8 body": (
        replying(response(b'{"text": "bad \xff\xfe bytes"}')),
        Expect("succeeded", "", 200, posts=("bad \ufffd\ufffd bytes",)),
    ),
    "invalid JSON": (
        replying(response(b'{"text": "unterminated')),
        Expect("succeeded", "bad_reply", 200, message_has="not valid JSON"),
    ),
    "deeply nested JSON": (
        replying(response(b"[" * 100_000)),
        Expect("succeeded", "bad_reply", 200),
    ),
    "deeply nested JSON in an object": (
        replying(
            response(b'{"text": "x", "props": {"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}")
        ),
        Expect("succeeded", "bad_reply", 200),
    ),
    "enormous integer": (
        replying(response(b'{"text": "n", "props": {"n": ' + b"9" * 500_000 + b"}}")),
        Expect("succeeded", "bad_reply", 200),
    ),
    "enormous float": (
        replying(response(b'{"text": "f", "props": {"f": 1e999999}}')),
        Expect("succeeded", "bad_reply", 200),
    ),
    "301 to loopback": (
        replying(response(b"", status="301 Moved", headers="Location: http://127.0.0.1:1/\r\n")),
        Expect("failed", "redirect", 301, message_has="redirect not followed"),
    ),
    "302 to loopback": (
        replying(response(b"", status="302 Found", headers="Location: /elsewhere\r\n")),
        Expect("failed", "redirect", 302),
    ),
    "307 to a forbidden address": (
        replying(
            response(
                b"",
                status="307 Temporary Redirect",
                headers="Location: http://169.254.169.254/latest/meta-data\r\n",
            )
        ),
        Expect("failed", "redirect", 307, message_has="169.254.169.254"),
    ),
    "1xx flood then an answer": (
        replying(INFORMATIONAL_FLOOD),
        Expect("succeeded", "", 200, posts=("after the 1xx flood",)),
    ),
    "endless 103 Early Hints": (endless_informational, Expect("failed", "timeout")),
    "TLS handshake to a plain port": (
        plain_answer_to_tls,
        Expect("failed", "connect", scheme="https"),
    ),
    "TLS alert to plain HTTP": (
        replying(b"\x15\x03\x01\x00\x02\x02\x46"),
        Expect("failed", "protocol"),
    ),
    "connection reset mid-body": (
        reset_mid_body,
        Expect("failed", "protocol", message_has="reset by peer) before the response was complete"),
    ),
    "close without response": (close_without_response, Expect("failed", "connect")),
    "HTTP/0.9-style bare body": (
        replying(b'{"text": "no status line"}'),
        Expect("failed", "protocol"),
    ),
    "2xx with an HTML body": (
        replying(response(b"<html><body>ok</body></html>", headers="Content-Type: text/html\r\n")),
        Expect("succeeded", "bad_reply", 200),
    ),
    "absurd Retry-After": (
        replying(
            response(b"busy", status="503 Busy", headers="Retry-After: 99999999999999999999999\r\n")
        ),
        Expect("failed", "http_status", 503),
    ),
    "Retry-After as a far date": (
        replying(
            response(
                b"", status="429 Slow", headers="Retry-After: Fri, 31 Dec 9999 23:59:59 GMT\r\n"
            )
        ),
        Expect("failed", "http_status", 429),
    ),
    "status 599": (
        replying(response(b"{}", status="599 Odd")),
        Expect("failed", "http_status", 599),
    ),
    "status 999": (
        replying(response(b"{}", status="999 Odder")),
        Expect("failed", "http_status", 999),
    ),
    "header injection in reply fields": (
        replying(response(json.dumps(INJECTION).encode())),
        Expect("succeeded", "", 200, posts=(INJECTION["text"],), extra={"injection": True}),
    ),
}


@pytest.fixture(scope="module")
def hostile_config(admin: Api) -> Iterator[Api]:
    """Webhooks on, loopback allowed, no retries and no overrides; restored afterwards."""
    keys = {
        "EnableOutgoingWebhooks": True,
        "AllowedUntrustedInternalConnections": "127.0.0.1",
        "OutgoingWebhookRetryScheduleSeconds": [],
        "EnablePostUsernameOverride": False,
        "EnablePostIconOverride": False,
    }
    before = admin.get("/config")["ServiceSettings"]
    admin.put("/config/patch", {"ServiceSettings": keys})
    yield admin
    admin.put("/config/patch", {"ServiceSettings": {k: before[k] for k in keys}})


@pytest.fixture(scope="module")
def team(hostile_config: Api, factory: Factory) -> dict[str, Any]:
    return factory.team()


@pytest.fixture(scope="module")
def healthy() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.reply = lambda seen: {"text": "healthy " + json.loads(seen.body)["text"]}
    yield receiver
    receiver.close()


def channel_webhook_posts(api: Api, channel_id: str) -> list[dict[str, Any]]:
    listing = api.get(f"/channels/{channel_id}/posts", params={"per_page": "200"})
    posts = [listing["posts"][i] for i in reversed(listing["order"])]
    return [p for p in posts if p["props"].get("from_webhook") == "true"]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_a_hostile_receiver_costs_only_its_own_delivery(
    name: str,
    server: ServerThread,
    hostile_config: Api,
    factory: Factory,
    team: dict[str, Any],
    healthy: Receiver,
) -> None:
    behaviour, expect = SCENARIOS[name]
    admin = hostile_config
    channel = factory.channel(team)
    hostile_server = HostileServer(behaviour)
    try:
        hostile = admin.post(
            "/hooks/outgoing",
            {
                "team_id": team["id"],
                "channel_id": channel["id"],
                "trigger_words": ["hostile"],
                "callback_urls": [hostile_server.url(expect.scheme)],
                "display_name": "Hostile",
                "content_type": "application/json",
                "timeout_seconds": 1,
            },
            expect=201,
        )
        admin.post(
            "/hooks/outgoing",
            {
                "team_id": team["id"],
                "channel_id": channel["id"],
                "callback_urls": [healthy.url],
                "display_name": "Healthy",
                "content_type": "application/json",
            },
            expect=201,
        )
        with PingPoller(server.url) as ping:
            admin.post("/posts", {"channel_id": channel["id"], "message": "hostile go"}, expect=201)
            wait_until(lambda: hostile_server.connections, timeout=10)
            # While the hostile receiver does its worst, the healthy hook keeps answering.
            started = time.monotonic()
            admin.post("/posts", {"channel_id": channel["id"], "message": "beside"}, expect=201)
            wait_until(
                lambda: any(
                    p["message"] == "healthy beside"
                    for p in channel_webhook_posts(admin, channel["id"])
                ),
                timeout=5,
                interval=0.05,
            )
            healthy_seconds = time.monotonic() - started
            delivery = finished_delivery(server, hostile["id"], timeout=10)
        assert healthy_seconds < 2.0, f"the healthy reply took {healthy_seconds:.2f} s"
        assert not ping.failures, ping.failures
        slow = [f"{t * 1000:.0f}" for t in ping.latencies if t >= PING_LIMIT_SECONDS]
        assert ping.worst < PING_LIMIT_SECONDS, (
            f"ping took {ping.worst * 1000:.0f} ms; {len(slow)} of {len(ping.latencies)} pings "
            f"over the limit (ms: {', '.join(slow)})"
        )

        (attempt,) = attempt_rows(server, delivery["id"])
        summary = (delivery["status"], attempt["error_kind"], attempt["error_message"])
        assert delivery["status"] == expect.status, summary
        assert attempt["error_kind"] == expect.error_kind, summary
        if expect.status_code is not None:
            assert attempt["status_code"] == expect.status_code, summary
        assert expect.message_has.lower() in attempt["error_message"].lower(), summary

        posts = channel_webhook_posts(admin, channel["id"])
        hostile_posts = [p for p in posts if p["props"].get("webhook_display_name") == "Hostile"]
        assert tuple(p["message"] for p in hostile_posts) == expect.posts
        healthy_posts = sorted(p["message"] for p in posts if p not in hostile_posts)
        assert healthy_posts == ["healthy beside", "healthy hostile go"]
        check_extra(expect, attempt, hostile_posts)
    finally:
        hostile_server.close()


def check_extra(expect: Expect, attempt: dict[str, Any], posts: list[dict[str, Any]]) -> None:
    stored = attempt["response_headers"]
    if expect.extra.get("headers_capped"):
        kept = {k: v for k, v in stored.items() if k != OMITTED_HEADERS}
        assert len(kept) <= MAX_LOGGED_HEADERS
        assert sum(len(k) + len(v) for k, v in kept.items()) <= MAX_LOGGED_HEADER_BYTES
        assert int(stored[OMITTED_HEADERS]) > 0
    if name := expect.extra.get("header_text"):
        assert "\ufffd" in stored[name]
    if expect.extra.get("injection"):
        (post,) = posts
        assert post["props"]["from_webhook"] == "true"
        assert post["props"]["webhook_display_name"] == "Hostile"
        assert "override_username" not in post["props"]
