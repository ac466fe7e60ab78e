"""A webhook receiver that counts what arrives, so a benchmark can prove no delivery was lost.

    python bench/recv_count.py PORT [--reply-text]

``POST`` (any path): read the body, note the request under its ``webhook-id`` header (the
delivery id; a request without one is counted but not noted) with the body's ``post_id`` (JSON or
form) and the request path, and answer ``null`` as JSON: a 2xx reply that Tidings turns into no
post (an empty body would do the same, but the floor's ``sender.py`` parses every reply as
JSON). With ``--reply-text`` it answers ``{"text":"ok"}`` like the floor's receiver, and every
delivery then also becomes a reply post.

``GET /counts``: ``{"requests", "deliveries", "first_at", "last_new_at"}``: requests seen,
distinct delivery ids, and the wall-clock times (``time.time()``) of the first request and of the
last one that brought a new delivery id.
``GET /deliveries``: ``{webhook_id: [post_id, path, requests], ...}``.
``DELETE /counts``: forget everything.
"""

import argparse
import json
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from aiohttp import web

NO_POST = b"null"
TEXT = b'{"text":"ok"}'


@dataclass
class Tally:
    requests: int = 0
    first_at: float = 0.0
    last_new_at: float = 0.0
    deliveries: dict[str, tuple[str, str]] = field(default_factory=dict)  # id → (post_id, path)
    repeats: dict[str, int] = field(default_factory=dict)  # id → requests after the first

    def clear(self) -> None:
        self.requests, self.first_at, self.last_new_at = 0, 0.0, 0.0
        self.deliveries.clear()
        self.repeats.clear()


TALLY = web.AppKey("tally", Tally)
REPLY = web.AppKey("reply", bytes)


def post_id_of(content_type: str, body: bytes) -> str:
    """The ``post_id`` field of a form or JSON webhook body ("" if there is none)."""
    try:
        if content_type.startswith("application/json"):
            value = json.loads(body).get("post_id", "")
        else:
            value = parse_qs(body.decode()).get("post_id", [""])[0]
    except (ValueError, AttributeError):
        return ""
    return str(value)


async def hook(request: web.Request) -> web.Response:
    body = await request.read()
    now = time.time()
    tally = request.app[TALLY]
    tally.requests += 1
    if not tally.first_at:
        tally.first_at = now
    delivery_id = request.headers.get("webhook-id", "")
    if delivery_id:
        if delivery_id in tally.deliveries:
            tally.repeats[delivery_id] = tally.repeats.get(delivery_id, 0) + 1
        else:
            post_id = post_id_of(request.content_type, body)
            tally.deliveries[delivery_id] = (post_id, request.path)
            tally.last_new_at = now
    return web.Response(body=request.app[REPLY], content_type="application/json")


async def counts(request: web.Request) -> web.Response:
    tally = request.app[TALLY]
    return web.json_response(
        {
            "requests": tally.requests,
            "deliveries": len(tally.deliveries),
            "first_at": tally.first_at,
            "last_new_at": tally.last_new_at,
        }
    )


async def deliveries(request: web.Request) -> web.Response:
    tally = request.app[TALLY]
    return web.json_response(
        {key: [*seen, 1 + tally.repeats.get(key, 0)] for key, seen in tally.deliveries.items()}
    )


async def forget(request: web.Request) -> web.Response:
    request.app[TALLY].clear()
    return web.Response(status=204)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--reply-text", action="store_true", help='answer {"text":"ok"}')
    args = parser.parse_args()
    app = web.Application()
    app[TALLY] = Tally()
    app[REPLY] = TEXT if args.reply_text else NO_POST
    app.router.add_get("/counts", counts)
    app.router.add_get("/deliveries", deliveries)
    app.router.add_delete("/counts", forget)
    app.router.add_post("/{tail:.*}", hook)
    web.run_app(
        app, host="127.0.0.1", port=args.port, access_log=None, print=None, shutdown_timeout=0.5
    )


if __name__ == "__main__":
    main()
