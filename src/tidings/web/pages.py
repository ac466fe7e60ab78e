"""The web client's routes in one router, and its static files.

Order matters: fixed paths (``/login``, ``/admin_console/…``, ``/web/…``) come before the
``/{team_name}/…`` patterns, so a team can never shadow a page (team names that would are
reserved in ``tidings.domain.teams``).

Must not import ``tidings.api`` or ``tidings.store``.
"""

from pathlib import Path

from fastapi import APIRouter
from starlette.responses import RedirectResponse
from starlette.staticfiles import StaticFiles

from tidings.web import accounts, channels, console, integrations, teams

STATIC_DIR = Path(__file__).parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/favicon.ico")
async def favicon() -> RedirectResponse:
    return RedirectResponse("/static/favicon.svg", status_code=301)


for module in (accounts, console, integrations, teams, channels):
    router.include_router(module.router)


def static_files() -> StaticFiles:
    """``/static``: our own CSS, JavaScript and icon (no third-party front-end code)."""
    return StaticFiles(directory=STATIC_DIR)
