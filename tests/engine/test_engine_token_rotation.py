"""A delivery queued before its hook's token was regenerated is sent with the new token and
the new signature together, and the log keeps the body that was sent."""

import asyncio
import json
from functools import partial
from urllib.parse import parse_qs

import pytest
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from support import Receiver, fresh_database, seed_channel_hook
from tidings.config import Settings
from tidings.domain.deliveries import Attempt, Delivery
from tidings.services import hooks as hook_service
from tidings.services import posts as post_service
from tidings.services.runtime import Runtime
from tidings.store import deliveries as delivery_store
from tidings.store.database import Connection, Database
from tidings.webhooks.worker import Worker

pytestmark = pytest.mark.db


def _token_in(body: bytes, content_type: str) -> str:
    if content_type == "application/json":
        return str(json.loads(body)["token"])
    return parse_qs(body.decode("ascii"))["token"][0]


async def _scenario(url: str, receiver: Receiver, content_type: str) -> None:
    rt = Runtime(settings=Settings(database_url=url), db=Database.from_url(url))
    try:
        seeded = await seed_channel_hook(rt, "rotor", receiver.url, content_type=content_type)
        admin, hook = seeded.admin, seeded.hook
        post = await post_service.create_post(rt, admin, seeded.channel.id, "build 7 is green")
        # Queued with the old token; the token (and with it the secret) changes before sending.
        rotated = await hook_service.regenerate_token(rt, admin, hook.id)
        assert rotated.token != hook.token

        worker = Worker.from_runtime(rt)
        await worker.start()
        try:
            for _ in range(500):
                if receiver.requests:
                    break
                await asyncio.sleep(0.01)
        finally:
            await worker.stop()

        (request,) = receiver.requests
        assert _token_in(request.body, content_type) == rotated.token
        headers = {name.lower(): value for name, value in request.headers.items()}
        # json_parse=False: the library would parse the body as JSON after checking it.
        Webhook(rotated.signing_secret).verify(request.body, headers, json_parse=False)
        with pytest.raises(WebhookVerificationError):
            Webhook(hook.signing_secret).verify(request.body, headers, json_parse=False)

        [delivery] = await rt.db.read(
            partial(
                delivery_store.list_deliveries, hook_id=hook.id, status=None, offset=0, limit=10
            )
        )
        assert delivery.post_id == post.id
        assert delivery.body == request.body
    finally:
        await rt.db.dispose()


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_a_retry_after_token_regeneration_carries_the_new_token(
    receiver: Receiver, content_type: str
) -> None:
    with fresh_database() as url:
        asyncio.run(_scenario(url, receiver, content_type))


# A real failure of the database on the one write a token regeneration needs before sending.
_REFUSE_BODY_UPDATES = {
    "sqlite": [
        "CREATE TRIGGER refuse_body BEFORE UPDATE OF body ON deliveries"
        " BEGIN SELECT RAISE(ABORT, 'storage failing'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_body() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'storage failing'; END $$",
        "CREATE TRIGGER refuse_body BEFORE UPDATE OF body ON deliveries"
        " FOR EACH ROW EXECUTE FUNCTION refuse_body()",
    ],
}
_ALLOW_BODY_UPDATES = {
    "sqlite": ["DROP TRIGGER refuse_body"],
    "postgresql": ["DROP TRIGGER refuse_body ON deliveries", "DROP FUNCTION refuse_body()"],
}


def _execute(conn: Connection, statements: list[str]) -> None:
    for statement in statements:
        conn.execute(text(statement))


async def _failing_storage_scenario(url: str, receiver: Receiver) -> None:
    rt = Runtime(settings=Settings(database_url=url), db=Database.from_url(url))
    dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
    try:
        seeded = await seed_channel_hook(rt, "rotor2", receiver.url)
        await post_service.create_post(rt, seeded.admin, seeded.channel.id, "build 8 is green")
        rotated = await hook_service.regenerate_token(rt, seeded.admin, seeded.hook.id)
        await rt.db.write(partial(_execute, statements=_REFUSE_BODY_UPDATES[dialect]))
        worker = Worker.from_runtime(rt)
        await worker.start()
        try:
            await asyncio.sleep(0.6)
            assert receiver.requests == []  # it could not save the re-tokened body: not sent
            await rt.db.write(partial(_execute, statements=_ALLOW_BODY_UPDATES[dialect]))
            for _ in range(500):
                if receiver.requests:
                    break
                await asyncio.sleep(0.01)
        finally:
            await worker.stop()
        (request,) = receiver.requests
        assert _token_in(request.body, "application/x-www-form-urlencoded") == rotated.token

        def read(conn: Connection) -> tuple[Delivery, list[Attempt]]:
            [delivery] = delivery_store.list_deliveries(conn, seeded.hook.id, None, 0, 10)
            return delivery, delivery_store.list_attempts(conn, delivery.id)

        delivery, attempts = await rt.db.read(read)
        assert delivery.status == "succeeded"
        assert [a.error_kind for a in attempts] == [""]  # no "internal error" attempt
    finally:
        await rt.db.dispose()


def test_storage_failing_before_the_send_is_no_failed_attempt(receiver: Receiver) -> None:
    """The database failing while a re-tokened body is saved is no verdict on the receiver:
    the delivery goes back unsent, with no attempt counted, and is sent once storage works."""
    with fresh_database() as url:
        asyncio.run(_failing_storage_scenario(url, receiver))
