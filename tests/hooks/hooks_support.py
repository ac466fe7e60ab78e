"""Helpers shared by the end-to-end outgoing-webhook tests: settings that restore themselves, a
team with a poster, hooks, and read-only views of the delivery log tables."""

import base64
import contextlib
import hashlib
import hmac
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import select

from support import Api, Factory, ServerThread, wait_until
from tidings.ids import new_id
from tidings.store.schema import deliveries, delivery_attempts

NO_RETRIES: list[float] = []


@contextlib.contextmanager
def service_settings(admin: Api, **values: Any) -> Iterator[None]:
    """Patch ``ServiceSettings`` for the block and put the previous values back afterwards."""
    before = admin.get("/config")["ServiceSettings"]
    admin.put("/config/patch", {"ServiceSettings": values})
    try:
        yield
    finally:
        admin.put("/config/patch", {"ServiceSettings": {k: before[k] for k in values}})


@dataclass
class Scene:
    """A team whose admin owns hooks, a public channel, and a member who posts in it."""

    team: dict[str, Any]
    channel: dict[str, Any]
    owner: Api
    poster: Api


def join_channel(admin: Api, channel: dict[str, Any], user: Api) -> None:
    admin.post(f"/channels/{channel['id']}/members", {"user_id": user.user["id"]}, expect=201)


@dataclass
class Cast:
    """Two users shared by a module's tests (making users is the slow part of a scene)."""

    owner: Api
    poster: Api


def make_cast(factory: Factory) -> Cast:
    return Cast(owner=factory.user(), poster=factory.user())


def make_scene(factory: Factory, cast: Cast) -> Scene:
    """A fresh team (its creator, the owner, is its admin) and channel, so hooks never mix."""
    team = factory.team(cast.owner)
    channel = factory.channel(team, cast.owner)
    factory.join(team, cast.poster)
    join_channel(factory.admin, channel, cast.poster)
    return Scene(team=team, channel=channel, owner=cast.owner, poster=cast.poster)


def make_hook(api: Api, team: dict[str, Any], urls: list[str], **fields: Any) -> dict[str, Any]:
    body = {"team_id": team["id"], "callback_urls": urls, "display_name": "Hook", **fields}
    return api.post("/hooks/outgoing", body, expect=201)  # type: ignore[no-any-return]


def channel_hook(scene: Scene, receiver: Any, **fields: Any) -> dict[str, Any]:
    """A hook of the scene's owner watching the scene's channel, sending to ``receiver``."""
    return make_hook(
        scene.owner, scene.team, [receiver.url], channel_id=scene.channel["id"], **fields
    )


def send(api: Api, channel: dict[str, Any], message: str, **fields: Any) -> dict[str, Any]:
    body = {"channel_id": channel["id"], "message": message, **fields}
    return api.post("/posts", body, expect=201)  # type: ignore[no-any-return]


def error_of(api: Api, method: str, path: str, body: Any = None) -> tuple[int, str]:
    """(status, error id) of a request expected to fail."""
    response = api.request(method, path, body)
    assert response.status_code >= 400, response.text
    return response.status_code, response.json().get("id", "")


def form(body: bytes) -> dict[str, str]:
    return dict(parse_qsl(body.decode(), keep_blank_values=True))


def delivery_rows(server: ServerThread, **where: str) -> list[dict[str, Any]]:
    """Rows of the ``deliveries`` table matching ``where`` (e.g. ``post_id=…``), oldest first."""

    async def read() -> list[dict[str, Any]]:
        query = select(deliveries).order_by(deliveries.c.create_at, deliveries.c.id)
        for column, value in where.items():
            query = query.where(deliveries.c[column] == value)
        return await server.runtime.db.read(
            lambda conn: [dict(row._mapping) for row in conn.execute(query).all()]
        )

    return server.run(read())


def attempt_rows(server: ServerThread, delivery_id: str) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        query = (
            select(delivery_attempts)
            .where(delivery_attempts.c.delivery_id == delivery_id)
            # A redelivery starts a new chain at number 1: time first, as the log lists them.
            .order_by(delivery_attempts.c.started_at, delivery_attempts.c.number)
        )
        return await server.runtime.db.read(
            lambda conn: [dict(row._mapping) for row in conn.execute(query).all()]
        )

    return server.run(read())


def finished_deliveries(
    server: ServerThread, timeout: float = 10.0, count: int = 1, **where: str
) -> list[dict[str, Any]]:
    """Wait until ``count`` matching deliveries are succeeded or failed; return all matches."""

    def check() -> list[dict[str, Any]] | None:
        rows = delivery_rows(server, **where)
        done = [r for r in rows if r["status"] in ("succeeded", "failed")]
        return rows if len(done) >= count else None

    result: list[dict[str, Any]] = wait_until(check, timeout=timeout, interval=0.05)
    return result


def channel_posts(api: Api, channel_id: str) -> list[dict[str, Any]]:
    """The channel's posts, oldest first."""
    listing = api.get(f"/channels/{channel_id}/posts", params={"per_page": "200"})
    return [listing["posts"][i] for i in reversed(listing["order"])]


def webhook_posts(api: Api, channel_id: str) -> list[dict[str, Any]]:
    return [p for p in channel_posts(api, channel_id) if p["props"].get("from_webhook") == "true"]


def wait_webhook_posts(
    api: Api, channel_id: str, count: int = 1, timeout: float = 10.0
) -> list[dict[str, Any]]:
    def check() -> list[dict[str, Any]] | None:
        found = webhook_posts(api, channel_id)
        return found if len(found) >= count else None

    result: list[dict[str, Any]] = wait_until(check, timeout=timeout, interval=0.05)
    return result


def timed(work: Any) -> tuple[Any, float]:
    """(result of ``work()``, seconds it took)."""
    started = time.monotonic()
    result = work()
    return result, time.monotonic() - started


def signature_ok(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Check a Standard Webhooks signature the way a receiver written from the spec would."""
    headers = {k.lower(): v for k, v in headers.items()}
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [s.removeprefix("v1,") for s in headers["webhook-signature"].split(" ")]
    return any(hmac.compare_digest(expected, s) for s in offered)


def failed_delivery_row(
    hook_id: str,
    channel_id: str,
    at: int,
    kind: str,
    *,
    attempts: int = 1,
    error: str | None = None,
) -> dict[str, Any]:
    """A ``deliveries`` row that failed at ``at`` with error kind ``kind``, for tests that
    make a hook's history without living through it."""
    return {
        "id": new_id(),
        "hook_id": hook_id,
        "post_id": new_id(),
        "root_id": "",
        "channel_id": channel_id,
        "url": "http://127.0.0.1:9/",
        "status": "failed",
        "content_type": "application/json",
        "body": b"{}",
        "trigger_word": "",
        "create_at": at,
        "update_at": at,
        "next_attempt_at": 0,
        "attempt_count": attempts,
        "lease_expires_at": 0,
        "reply_posted": False,
        "last_status_code": 0 if kind == "not_sent" else 500,
        "last_error_kind": kind,
        "last_error": kind if error is None else error,
    }
