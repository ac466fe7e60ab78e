"""Configuration and health: ``/api/v4/config…`` and ``/api/v4/system/ping``."""

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from tidings import __version__
from tidings.api.common import RuntimeDep, SessionDep, ok, read_json
from tidings.domain import server_config
from tidings.services import settings as service

router = APIRouter(tags=["system"])


@router.get("/system/ping")
async def ping(rt: RuntimeDep) -> JSONResponse:
    return ok({"status": "OK", "ActiveSearchBackend": "database", "version": __version__})


@router.get("/config")
async def get_config(rt: RuntimeDep, session: SessionDep) -> JSONResponse:
    return ok(await service.get_config(rt, session.user))


@router.put("/config/patch")
async def patch_config(request: Request, rt: RuntimeDep, session: SessionDep) -> JSONResponse:
    patch = await read_json(request, "config")
    return ok(await service.patch_config(rt, session.user, patch))


@router.get("/config/client")
async def client_config(rt: RuntimeDep) -> JSONResponse:
    return ok(server_config.client_config(await rt.config(), __version__))
