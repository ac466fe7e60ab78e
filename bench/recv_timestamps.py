"""A webhook receiver that notes when each request arrives, for the latency benchmarks.

    python bench/recv_timestamps.py PORT [--hang SECONDS]

``POST`` (any path): read the body, note ``(post_id, webhook-id, time.time())``, answer
``{"text":"ok"}`` like the floor's receiver. With ``--hang`` it notes the arrival and then sleeps
before answering: a receiver stuck until the sender's timeout gives up.
``GET /arrivals``: every arrival so far, as JSON ``[[post_id, webhook_id, unix_seconds], ...]``.
``DELETE /arrivals``: forget them.

Arrival times are wall-clock seconds so that another process on the same machine can subtract
its own ``time.time()``.
"""

import argparse
import asyncio
import json
import time
from urllib.parse import parse_qs

from aiohttp import web

REPLY = b'{"text":"ok"}'
ARRIVALS = web.AppKey("arrivals", list[tuple[str, str, float]])
HANG = web.AppKey("hang", float)


def post_id_of(content_type: str, body: bytes) -> str:
    """The ``post_id`` field of a form or JSON webhook body ("" if there is none)."""
    if content_type.startswith("application/json"):
        value = json.loads(body).get("post_id", "")
    else:
        value = parse_qs(body.decode()).get("post_id", [""])[0]
    return str(value)


async def hook(request: web.Request) -> web.Response:
    body = await request.read()
    arrived = time.time()
    post_id = post_id_of(request.content_type, body)
    request.app[ARRIVALS].append((post_id, request.headers.get("webhook-id", ""), arrived))
    if request.app[HANG]:
        await asyncio.sleep(request.app[HANG])
    return web.Response(body=REPLY, content_type="application/json")


async def arrivals(request: web.Request) -> web.Response:
    return web.json_response(request.app[ARRIVALS])


async def forget(request: web.Request) -> web.Response:
    request.app[ARRIVALS].clear()
    return web.Response(status=204)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--hang", type=float, default=0.0, help="seconds to sleep before answering")
    args = parser.parse_args()
    app = web.Application()
    app[ARRIVALS] = []
    app[HANG] = args.hang
    app.router.add_get("/arrivals", arrivals)
    app.router.add_delete("/arrivals", forget)
    app.router.add_post("/{tail:.*}", hook)
    # A hanging handler must not hold up shutdown for aiohttp's default minute.
    web.run_app(
        app, host="127.0.0.1", port=args.port, access_log=None, print=None, shutdown_timeout=0.5
    )


if __name__ == "__main__":
    main()
