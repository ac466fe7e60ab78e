"""The ping floor: a bare Starlette route answering what ``GET /api/v4/system/ping`` answers,
served the way ``tidings serve`` serves (uvicorn, uvloop, httptools, no access log).

    python bench/ping_floor.py PORT

``bench/ping.py`` runs it beside Tidings to read the request stack's own cost as a ratio.
"""

import json
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tidings import __version__

BODY = json.dumps({"status": "OK", "ActiveSearchBackend": "database", "version": __version__})


async def ping(_request: Request) -> Response:
    return Response(BODY, media_type="application/json")


app = Starlette(routes=[Route("/api/v4/system/ping", ping)])

if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )
