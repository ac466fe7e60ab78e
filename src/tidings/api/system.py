"""Configuration and health: ``/api/v4/config…`` and ``/api/v4/system/ping``."""

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from tidings import __version__
from tidings.api.common import ApiRoute, RuntimeDep, SessionDep, ok, read_json
from tidings.domain import server_config
from tidings.errors import FeatureDisabled, invalid_param
from tidings.services import settings as service

router = APIRouter(prefix="/api/v4", route_class=ApiRoute, tags=["system"])


@router.get("/system/ping")
async def ping() -> JSONResponse:
    return ok({"status": "OK", "ActiveSearchBackend": "database", "version": __version__})


@router.get("/config")
async def get_config(rt: RuntimeDep, session: SessionDep) -> JSONResponse:
    return ok(await service.get_config(rt, session.user))


@router.put("/config")
async def update_config(request: Request, rt: RuntimeDep, session: SessionDep) -> JSONResponse:
    document = await read_json(request, "config")
    return ok(await service.replace_config(rt, session.user, document))


@router.put("/config/patch")
async def patch_config(request: Request, rt: RuntimeDep, session: SessionDep) -> JSONResponse:
    patch = await read_json(request, "config")
    return ok(await service.patch_config(rt, session.user, patch))


FORMAT_OLD = {
    "parameters": [{"name": "format", "in": "query", "required": True, "schema": {"enum": ["old"]}}]
}


@router.get("/config/client", openapi_extra=FORMAT_OLD)
async def client_config(request: Request, rt: RuntimeDep) -> JSONResponse:
    # Mattermost only ever implemented the "old" format, and says so with these two errors.
    format_ = request.query_params.get("format", "")
    if not format_:
        raise FeatureDisabled(
            "api.config.client.old_format.app_error",
            "New format for the client configuration is not supported yet. "
            "Please specify format=old in the query string.",
        )
    if format_ != "old":
        raise invalid_param("format")
    return ok(server_config.client_config(await rt.config(), __version__))
