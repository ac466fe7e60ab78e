"""``create_app(settings)``: the ASGI application — API, websocket, pages, error handling, and the
in-process webhook worker started and stopped with the server's lifespan."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import swagger_ui_bundle
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute
from starlette.staticfiles import StaticFiles

from tidings import __version__
from tidings.api import deliveries, hooks, metrics, posts, responses, system, teams, users
from tidings.api.common import ApiRoute
from tidings.api.errors import RequestContextMiddleware, install_error_handlers
from tidings.api.fast_lane import FastLane, direct_routes
from tidings.api.openapi import install_openapi
from tidings.config import Settings
from tidings.services.chains import reply_chain
from tidings.services.notices import hook_owner_notifier
from tidings.services.runtime import Runtime
from tidings.store.database import Database
from tidings.web import pages, websocket
from tidings.webhooks.worker import Worker

logger = logging.getLogger(__name__)


def create_app(settings: Settings, runtime: Runtime | None = None) -> FastAPI:
    """Build the application. Migrations are the caller's job (``tidings serve`` runs them first)."""
    rt = runtime or Runtime(
        settings=settings, db=Database.from_url(settings.effective_database_url)
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Events and session changes shared with the other processes (PostgreSQL).
        await rt.cluster.start()
        worker = (
            Worker.from_runtime(rt, hook_owner_notifier(rt), reply_chain(rt))
            if settings.run_worker
            else None
        )
        if worker is not None:
            await worker.start()
        try:
            yield
        finally:
            if worker is not None:
                await worker.stop()
            await rt.cluster.stop()
            if runtime is None:
                await rt.db.dispose()

    # The API's routes sit in the application's own route list, not behind include_router:
    # FastAPI 0.165 keeps an included router as a branch matched on every request (twice, and
    # setting an effective-route context per route tried), which was most of
    # GET /system/ping's in-process cost (bench/ping.py). Each module's router carries the
    # /api/v4 prefix itself; the hot routes (posting, the health check load balancers poll,
    # users/me) come first, since routes are tried in order.
    api_routes: list[BaseRoute] = []
    for module in (posts, system, users, teams, hooks, deliveries, responses):
        if module.router.route_class is not ApiRoute:
            raise TypeError(f"{module.__name__}.router must be made with route_class=ApiRoute")
        api_routes.extend(module.router.routes)
    app = FastAPI(
        routes=api_routes,
        # FastAPI's native OpenTelemetry asks the global providers whether it is on, on every
        # request (3.6 of 32 us per in-process ping); Tidings configures none and exports its
        # own /metrics.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        title="Tidings API",
        version=__version__,
        description="A Mattermost API v4 subset plus Tidings' webhook delivery extensions.",
        openapi_url="/api/v4/openapi.json",
        # Served below from packaged assets: FastAPI's own page loads Swagger UI from a CDN.
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.runtime = rt
    app.state.render_slots = asyncio.Semaphore(settings.render_concurrency)

    async def limits() -> tuple[int, bool]:
        service = (await rt.config())["ServiceSettings"]
        return int(service["MaximumPayloadSizeBytes"]), bool(service["EnableDeveloper"])

    install_error_handlers(app)
    install_openapi(app)
    app.include_router(metrics.router)
    app.include_router(websocket.router)
    _install_docs(app)
    app.mount("/static", pages.static_files(), name="static")
    app.include_router(pages.router)
    # The last middleware added is the outermost: the fast lane runs inside the request context.
    app.add_middleware(FastLane, routes=direct_routes(app.routes))
    # What a request published reaches the cluster log before its response (services.cluster).
    app.add_middleware(RequestContextMiddleware, limits=limits, cluster=rt.cluster)
    return app


DOCS_ASSETS = "/api/v4/docs/assets"


def _install_docs(app: FastAPI) -> None:
    """``/api/v4/docs``: Swagger UI from the swagger-ui-bundle package, so the page works
    offline and no third party learns who reads our API documentation."""
    app.mount(
        DOCS_ASSETS, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets"
    )

    @app.get("/api/v4/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/api/v4/openapi.json",
            title="Tidings API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )
