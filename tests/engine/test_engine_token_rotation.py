"""A delivery queued before its hook's token was regenerated is sent with the new token and
the new signature together, and the log keeps the body that was sent."""

import asyncio
import json
from urllib.parse import parse_qs

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from support import Receiver, fresh_database, seed_channel_hook
from tidings.config import Settings
from tidings.services import hooks as hook_service
from tidings.services import posts as post_service
from tidings.services.runtime import Runtime
from tidings.store import deliveries as delivery_store
from tidings.store.database import Database
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

        async with rt.db.transaction() as conn:
            [delivery] = await delivery_store.list_deliveries(conn, hook.id, None, 0, 10)
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
