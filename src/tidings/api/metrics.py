"""``GET /metrics``: Prometheus text format, for system admins or a scraper holding
``TIDINGS_METRICS_TOKEN`` as a bearer token."""

import hmac

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from tidings import metrics
from tidings.api.common import RuntimeDep, current_session, token_from
from tidings.domain.permissions import MANAGE_SYSTEM
from tidings.errors import permission_error
from tidings.services.deliveries import queue_stats

router = APIRouter(tags=["system"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def prometheus_metrics(request: Request, rt: RuntimeDep) -> Response:
    token, _ = token_from(request)
    scraper = bool(rt.settings.metrics_token) and hmac.compare_digest(
        token, rt.settings.metrics_token
    )
    if not scraper:
        session = await current_session(request)
        if not session.user.is_system_admin:
            raise permission_error(session.user.id, MANAGE_SYSTEM)
    body = await metrics.render(lambda: queue_stats(rt))
    return Response(body, media_type=CONTENT_TYPE_LATEST)
