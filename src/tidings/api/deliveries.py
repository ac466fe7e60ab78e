"""Tidings' delivery-log extensions under ``/api/v4/hooks/outgoing/{hook_id}``."""

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse

from tidings.api.common import (
    ApiRoute,
    PagingDep,
    RuntimeDep,
    SessionDep,
    body_doc,
    ok,
    parse_body,
)
from tidings.domain.wire import delivery_json
from tidings.services import deliveries as service

router = APIRouter(prefix="/api/v4", route_class=ApiRoute, tags=["delivery log (Tidings)"])


@router.get("/hooks/outgoing/{hook_id}/deliveries")
async def list_deliveries(
    hook_id: str, request: Request, rt: RuntimeDep, session: SessionDep, paging: PagingDep
) -> JSONResponse:
    """A hook's deliveries, newest first; ``status`` filters (pending, in_flight, succeeded, failed)."""
    found = await service.list_deliveries(
        rt,
        session.user,
        hook_id,
        request.query_params.get("status", ""),
        paging.page,
        paging.per_page,
    )
    return ok([delivery_json(d) for d in found])


@router.get("/hooks/outgoing/{hook_id}/deliveries/{delivery_id}")
async def get_delivery(
    hook_id: str, delivery_id: str, rt: RuntimeDep, session: SessionDep
) -> JSONResponse:
    """One delivery with its request body and every attempt (secrets masked in headers)."""
    detail = await service.get_delivery(rt, session.user, hook_id, delivery_id)
    return ok(delivery_json(detail.delivery, detail.attempts), secret=True)


@router.post("/hooks/outgoing/{hook_id}/deliveries/{delivery_id}/redeliver")
async def redeliver(
    hook_id: str, delivery_id: str, rt: RuntimeDep, session: SessionDep
) -> JSONResponse:
    """Send a finished delivery again: same payload, same delivery id."""
    return ok(delivery_json(await service.redeliver(rt, session.user, hook_id, delivery_id)))


class BulkRedeliverBody(BaseModel):
    """Which deliveries to send again: the failed ones created at or after ``since`` (Unix ms).

    ``status`` must be said, though only ``failed`` exists yet, so that a later status cannot
    change what an old client's call means.
    """

    model_config = ConfigDict(strict=True, extra="ignore")

    since: int = Field(ge=0, le=service.MAX_SINCE_MS)
    status: Literal["failed"]


@router.post("/hooks/outgoing/{hook_id}/redeliver", openapi_extra=body_doc(BulkRedeliverBody))
async def redeliver_failed(
    hook_id: str, request: Request, rt: RuntimeDep, session: SessionDep
) -> JSONResponse:
    """Send every failed delivery since a time again, oldest first, a bounded number per call:
    ``{"count": n, "more": bool}`` (``more``: call again for the rest)."""
    body = await parse_body(request, BulkRedeliverBody, "since")
    done = await service.redeliver_failed(rt, session.user, hook_id, body.since)
    return ok({"count": done.count, "more": done.more})


@router.post("/hooks/outgoing/{hook_id}/ping")
async def ping(hook_id: str, rt: RuntimeDep, session: SessionDep) -> JSONResponse:
    """Send a test event to every callback URL and answer with the results."""
    details = await service.ping_and_wait(rt, session.user, hook_id)
    return ok([delivery_json(d.delivery, d.attempts) for d in details], secret=True)
