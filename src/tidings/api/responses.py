"""Deferred replies: ``POST /hooks/responses/{secret}``, a delivery's ``response_url``.

Outside ``/api/v4`` and without a session, as Mattermost's incoming hooks are: the secret in
the path is the credential (``webhooks/response_urls.py``). Errors keep Mattermost's shape.
"""

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from tidings.api.common import ApiRoute, ok, runtime_of
from tidings.services import responses as service
from tidings.webhooks.response_urls import MAX_REPLY_BYTES

router = APIRouter(route_class=ApiRoute, tags=["deferred replies (Tidings)"])


async def _bounded_body(request: Request) -> tuple[bytes, bool]:
    """(the body's first MAX_REPLY_BYTES, whether there was more): the cap of a receiver's
    reply. Reading stops one byte past it."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_REPLY_BYTES:
            break
    body = b"".join(chunks)
    return body[:MAX_REPLY_BYTES], size > MAX_REPLY_BYTES


@router.post("/hooks/responses/{secret}")
async def post_deferred_reply(secret: str, request: Request) -> JSONResponse:
    """Post a reply JSON (as a receiver's direct reply) as the hook's reply to the delivery;
    answers the post ids and the uses left."""
    body, truncated = await _bounded_body(request)
    posted = await service.post_deferred_reply(
        runtime_of(request), secret, body, truncated=truncated
    )
    return ok(
        {"status": "OK", "post_ids": [p.id for p in posted.posts], "uses_left": posted.uses_left}
    )
