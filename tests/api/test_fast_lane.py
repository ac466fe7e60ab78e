"""The fast lane (``api/fast_lane.py``): which routes it serves, and that a request served there
is answered exactly as the router would answer it — errors in Mattermost's shape, the request id,
the body limit, and an escaped exception as a 500."""

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Request
from mattermost_contract import assert_app_error
from starlette.responses import PlainTextResponse, Response
from starlette.types import Message, Receive, Scope, Send

from support import Api, Factory, ServerThread
from tidings.api.common import ApiRoute
from tidings.api.errors import RequestContextMiddleware
from tidings.api.fast_lane import FastLane, direct_routes
from tidings.errors import NotFound
from tidings.services import posts as post_service


def test_the_hot_routes_are_in_the_lane(server: ServerThread) -> None:
    # Outermost first: the lane runs inside the request context (request id, body limit).
    assert [m.cls for m in server.app.user_middleware] == [RequestContextMiddleware, FastLane]
    assert set(direct_routes(server.app.routes)) == {
        ("POST", "/api/v4/posts"),
        ("GET", "/api/v4/users/me"),
        ("GET", "/api/v4/system/ping"),
    }


def test_a_path_an_earlier_route_matches_is_left_to_the_router() -> None:
    router = APIRouter(route_class=ApiRoute)

    @router.get("/things/{thing}")
    async def thing(thing: str) -> Response:
        return PlainTextResponse(thing)

    @router.get("/things/mine")
    async def mine(request: Request) -> Response:
        return PlainTextResponse("mine")

    @router.post("/things/mine")
    async def make_mine(request: Request) -> Response:
        return PlainTextResponse("made")

    @router.get("/parameters")
    async def solved(limit: int = 0) -> Response:
        return PlainTextResponse(str(limit))

    # GET /things/mine is /things/{thing} to the router, which tries routes in order; POST is
    # not, and /parameters needs FastAPI to solve its query parameter.
    assert set(direct_routes(router.routes)) == {("POST", "/things/mine")}


def _call(app: FastLane, method: str, path: str) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: dict[str, Any] = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [],
        "query_string": b"",
        "state": {"request_id": "r" * 26},
    }
    asyncio.run(app(scope, receive, send))
    return sent


def test_the_lane_calls_its_handlers_and_passes_everything_else_on() -> None:
    fallen_through: list[str] = []

    async def fallback(scope: Scope, receive: Receive, send: Send) -> None:
        fallen_through.append(f"{scope['method']} {scope['path']}")
        await PlainTextResponse("router")(scope, receive, send)

    async def hot(request: Request) -> Response:
        return PlainTextResponse("hot", status_code=201)

    async def refusing(request: Request) -> Response:
        raise NotFound("api.post.get.app_error", "Unable to get the post.")

    lane = FastLane(fallback, {("POST", "/hot"): hot, ("GET", "/refusing"): refusing})

    sent = _call(lane, "POST", "/hot")
    assert sent[0]["status"] == 201
    assert sent[1]["body"] == b"hot"
    sent = _call(lane, "GET", "/hot")
    assert sent[1]["body"] == b"router"
    sent = _call(lane, "GET", "/elsewhere")
    assert sent[1]["body"] == b"router"
    assert fallen_through == ["GET /hot", "GET /elsewhere"]

    sent = _call(lane, "GET", "/refusing")
    assert sent[0]["status"] == 404
    assert b'"id":"api.post.get.app_error"' in sent[1]["body"]
    assert b'"request_id":"' + b"r" * 26 + b'"' in sent[1]["body"]


def test_a_post_through_the_lane_is_refused_in_mattermost_shape(
    admin: Api, factory: Factory, anonymous: Api
) -> None:
    channel = factory.channel(factory.team())
    assert_app_error(
        anonymous.request("POST", "/posts", {"channel_id": channel["id"], "message": "hi"}),
        401,
        "api.context.session_expired.app_error",
    )
    assert_app_error(
        admin.request("POST", "/posts", content=b"{not json", headers={}),
        400,
        "api.context.invalid_body_param.app_error",
    )
    created = admin.request("POST", "/posts", {"channel_id": channel["id"], "message": "hi"})
    assert created.status_code == 201
    assert len(created.headers["x-request-id"]) == 26


def test_a_body_over_the_limit_is_413_in_the_lane_too(admin: Api, factory: Factory) -> None:
    """Streamed without a Content-Length, so the limit is met while the handler reads it."""
    channel = factory.channel(factory.team())
    limit = admin.get("/config")["ServiceSettings"]["MaximumPayloadSizeBytes"]
    head = b'{"channel_id": "' + channel["id"].encode() + b'", "message": "'

    def chunks() -> Any:
        yield head
        for _ in range(limit // 65_536 + 2):
            yield b"x" * 65_536
        yield b'"}'

    response = httpx.post(
        admin.base_url + "/api/v4/posts",
        content=chunks(),
        headers={"Authorization": f"Bearer {admin.token}"},
        timeout=30,
    )
    assert_app_error(response, 413, "api.context.request_body_too_large.app_error")


def test_an_unexpected_failure_in_the_lane_is_still_a_mattermost_error(
    admin: Api, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = factory.channel(factory.team())

    async def explode(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("internal detail")

    monkeypatch.setattr(post_service, "create_post", explode)
    response = admin.request("POST", "/posts", {"channel_id": channel["id"], "message": "hi"})
    assert_app_error(response, 500, "api.context.unexpected.app_error")
    assert "internal detail" not in response.text
