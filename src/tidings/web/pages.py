"""The landing page. The full web client has its own issue; until then this tells a visitor
where the API and its documentation are."""

from fastapi import APIRouter
from starlette.responses import HTMLResponse

from tidings import __version__

router = APIRouter()

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Tidings</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem">
<h1>Tidings</h1>
<p>A self-hosted team chat server with Slack- and Mattermost-compatible outgoing webhooks.</p>
<ul>
<li><a href="/api/v4/docs">API documentation</a> (Mattermost API v4 subset)</li>
<li><a href="/api/v4/openapi.json">OpenAPI document</a></li>
<li><a href="/api/v4/system/ping">Health check</a></li>
</ul>
<p>Version {version}</p>
</body></html>
"""


@router.get("/", include_in_schema=False)
async def landing() -> HTMLResponse:
    return HTMLResponse(_PAGE.replace("{version}", __version__))
