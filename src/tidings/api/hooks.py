"""Outgoing hooks: ``/api/v4/hooks/outgoing…``.

Clients send either a minimal body or the whole hook on update; missing keys keep their values.
"""

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import JSONResponse

from tidings.api.common import (
    STATUS_OK,
    ApiRoute,
    PagingDep,
    RuntimeDep,
    SessionDep,
    body_doc,
    ok,
    parse_body,
)
from tidings.domain.wire import hook_json
from tidings.services import hooks as service
from tidings.services.hooks import HookInput

router = APIRouter(prefix="/api/v4", route_class=ApiRoute, tags=["outgoing webhooks"])


class HookBody(BaseModel):
    """Mattermost's OutgoingWebhook; ``null`` lists are accepted as "empty"."""

    model_config = ConfigDict(strict=True, extra="ignore")

    id: str | None = None
    team_id: str | None = None
    channel_id: str | None = None
    creator_id: str | None = None
    token: str | None = None
    trigger_words: list[str] | None = None
    trigger_when: int | None = None
    callback_urls: list[str] | None = None
    display_name: str | None = None
    description: str | None = None
    content_type: str | None = None
    username: str | None = None
    icon_url: str | None = None
    timeout_seconds: int | None = None
    extended_payload: bool | None = None
    trigger_on_bot_posts: bool | None = None

    def to_input(self) -> HookInput:
        sent = self.model_fields_set
        return HookInput(
            id=self.id,
            team_id=self.team_id,
            channel_id=self.channel_id,
            creator_id=self.creator_id,
            token=self.token,
            trigger_words=tuple(self.trigger_words or ()) if "trigger_words" in sent else None,
            trigger_when=self.trigger_when,
            callback_urls=tuple(self.callback_urls or ()) if "callback_urls" in sent else None,
            display_name=self.display_name,
            description=self.description,
            content_type=self.content_type,
            username=self.username,
            icon_url=self.icon_url,
            # null (as Go reads it, absent) resets to the server's default, as 0 does.
            timeout_seconds=(self.timeout_seconds or 0) if "timeout_seconds" in sent else None,
            extended_payload=self.extended_payload,
            trigger_on_bot_posts=self.trigger_on_bot_posts,
        )


@router.post("/hooks/outgoing", status_code=201, openapi_extra=body_doc(HookBody))
async def create_hook(request: Request, rt: RuntimeDep, session: SessionDep) -> JSONResponse:
    body = await parse_body(request, HookBody, "outgoing_webhook")
    hook = await service.create_hook(rt, session.user, body.to_input())
    return ok(hook_json(hook, show_secrets=True), 201, secret=True)


@router.get("/hooks/outgoing")
async def list_hooks(
    request: Request, rt: RuntimeDep, session: SessionDep, paging: PagingDep
) -> JSONResponse:
    hooks = await service.list_hooks(
        rt,
        session.user,
        team_id=request.query_params.get("team_id", ""),
        channel_id=request.query_params.get("channel_id", ""),
        page=paging.page,
        per_page=paging.per_page,
    )
    return ok([hook_json(h, show_secrets=True) for h in hooks], secret=True)


@router.get("/hooks/outgoing/{hook_id}")
async def get_hook(hook_id: str, rt: RuntimeDep, session: SessionDep) -> JSONResponse:
    return ok(
        hook_json(await service.get_hook(rt, session.user, hook_id), show_secrets=True),
        secret=True,
    )


@router.put("/hooks/outgoing/{hook_id}", openapi_extra=body_doc(HookBody))
async def update_hook(
    hook_id: str, request: Request, rt: RuntimeDep, session: SessionDep
) -> JSONResponse:
    body = await parse_body(request, HookBody, "outgoing_webhook")
    hook = await service.update_hook(rt, session.user, hook_id, body.to_input())
    return ok(hook_json(hook, show_secrets=True), secret=True)


@router.delete("/hooks/outgoing/{hook_id}")
async def delete_hook(hook_id: str, rt: RuntimeDep, session: SessionDep) -> JSONResponse:
    await service.delete_hook(rt, session.user, hook_id)
    return ok(STATUS_OK)


# Mattermost's server answers POST; its Go and Python drivers send PUT. One route per method
# keeps the OpenAPI operation ids unique.
@router.post("/hooks/outgoing/{hook_id}/regen_token")
@router.put("/hooks/outgoing/{hook_id}/regen_token")
async def regen_token(hook_id: str, rt: RuntimeDep, session: SessionDep) -> JSONResponse:
    return ok(
        hook_json(await service.regenerate_token(rt, session.user, hook_id), show_secrets=True),
        secret=True,
    )


@router.post("/hooks/outgoing/{hook_id}/enable")
async def enable_hook(hook_id: str, rt: RuntimeDep, session: SessionDep) -> JSONResponse:
    """Tidings extension: re-enable a hook the engine disabled after sustained failure."""
    return ok(
        hook_json(
            await service.set_hook_enabled(rt, session.user, hook_id, True), show_secrets=True
        ),
        secret=True,
    )
