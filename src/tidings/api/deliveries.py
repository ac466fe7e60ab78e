"""Tidings' delivery-log extensions under ``/api/v4/hooks/outgoing/{hook_id}``."""

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from tidings.api.common import ApiRoute, PagingDep, RuntimeDep, SessionDep, ok
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


@router.post("/hooks/outgoing/{hook_id}/ping")
async def ping(hook_id: str, rt: RuntimeDep, session: SessionDep) -> JSONResponse:
    """Send a test event to every callback URL and answer with the results."""
    details = await service.ping_and_wait(rt, session.user, hook_id)
    return ok([delivery_json(d.delivery, d.attempts) for d in details], secret=True)
