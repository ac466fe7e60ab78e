"""Posts: ``/api/v4/posts…`` and ``/api/v4/channels/{id}/posts``."""

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse

from tidings.api.common import (
    STATUS_OK,
    ApiRoute,
    PagingDep,
    RuntimeDep,
    SessionDep,
    body_doc,
    caller,
    int64_param,
    ok,
    parse_body,
)
from tidings.domain.wire import post_json
from tidings.errors import invalid_param
from tidings.services import posts as service

router = APIRouter(prefix="/api/v4", route_class=ApiRoute, tags=["posts"])


class PostCreate(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    channel_id: str
    message: str = ""
    root_id: str = ""
    file_ids: list[str] = Field(default_factory=list)
    props: dict[str, Any] = Field(default_factory=dict)
    pending_post_id: str = ""
    type: str = ""


class PostPatch(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    message: str | None = None
    props: dict[str, Any] | None = None


@router.post("/posts", status_code=201, openapi_extra=body_doc(PostCreate))
async def create_post(request: Request) -> JSONResponse:
    rt, session = await caller(request)
    body = await parse_body(request, PostCreate, "post")
    post = await service.create_post(
        rt,
        session.user,
        body.channel_id,
        body.message,
        root_id=body.root_id,
        props=body.props,
        file_ids=tuple(body.file_ids[:10]),
        pending_post_id=body.pending_post_id,
        post_type=body.type,
    )
    return ok(post_json(post), 201)


@router.get("/posts/{post_id}")
async def get_post(post_id: str, rt: RuntimeDep, session: SessionDep) -> JSONResponse:
    return ok(post_json(await service.get_post(rt, session.user, post_id)))


@router.get("/posts/{post_id}/thread")
async def get_thread(post_id: str, rt: RuntimeDep, session: SessionDep) -> JSONResponse:
    return ok(await service.get_thread(rt, session.user, post_id))


@router.put("/posts/{post_id}/patch", openapi_extra=body_doc(PostPatch))
async def patch_post(
    post_id: str, request: Request, rt: RuntimeDep, session: SessionDep
) -> JSONResponse:
    body = await parse_body(request, PostPatch, "post")
    post = await service.patch_post(rt, session.user, post_id, body.message, body.props)
    return ok(post_json(post))


@router.put("/posts/{post_id}", openapi_extra=body_doc(PostPatch))
async def update_post(
    post_id: str, request: Request, rt: RuntimeDep, session: SessionDep
) -> JSONResponse:
    body = await parse_body(request, PostPatch, "post")
    post = await service.patch_post(rt, session.user, post_id, body.message, body.props)
    return ok(post_json(post))


@router.delete("/posts/{post_id}")
async def delete_post(post_id: str, rt: RuntimeDep, session: SessionDep) -> JSONResponse:
    await service.delete_post(rt, session.user, post_id)
    return ok(STATUS_OK)


@router.get("/channels/{channel_id}/posts")
async def channel_posts(
    channel_id: str, request: Request, rt: RuntimeDep, session: SessionDep, paging: PagingDep
) -> JSONResponse:
    query = request.query_params
    since = int64_param(query.get("since", "0") or "0")
    if since is None:
        raise invalid_param("since")
    result = await service.list_channel_posts(
        rt,
        session.user,
        channel_id,
        paging.page,
        paging.per_page,
        since=since,
        before=query.get("before", ""),
        after=query.get("after", ""),
        include_deleted=query.get("include_deleted", "") == "true",
    )
    return ok(result)
