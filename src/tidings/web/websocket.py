"""``/api/v4/websocket``: Mattermost's event stream.

Authentication by the upgrade request (bearer header or session cookie) or by a first
``authentication_challenge`` message. Then ``hello`` with ``seq`` 0 and events numbered 1, 2, …
per connection. Events come from the in-process hub, which only queues them for the channel's
members; a connection that falls behind is closed rather than allowed to slow posting.

A cookie-authenticated upgrade must come from the site's own origin (or one in
``ServiceSettings.AllowCorsFrom``): otherwise any page a signed-in user visits could read their
events. Token-authenticated upgrades need no such check, since another site cannot know the token.
The connection lives only as long as its session: it is closed (code 1008) the moment the session
is ended in this process, when it expires, and at the latest ``SESSION_CHECK_SECONDS`` after it
was ended anywhere else.
"""

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from tidings import __version__
from tidings.domain import server_config
from tidings.errors import AppError
from tidings.events import CLOSE_SESSION_ENDED, Event, Listener
from tidings.services import users as user_service
from tidings.services.runtime import Runtime
from tidings.services.users import Session

logger = logging.getLogger(__name__)
router = APIRouter()

AUTH_TIMEOUT_SECONDS = 10.0
SESSION_CHECK_SECONDS = 30.0


def _runtime(ws: WebSocket) -> Runtime:
    rt: Runtime = ws.app.state.runtime
    return rt


def _upgrade_token(ws: WebSocket) -> tuple[str, bool]:
    """(token, came from the cookie)."""
    scheme, _, value = ws.headers.get("authorization", "").partition(" ")
    if scheme.lower() in ("bearer", "token") and value.strip():
        return value.strip(), False
    cookie = ws.cookies.get("MMAUTHTOKEN", "")
    return cookie, bool(cookie)


async def _origin_allowed(ws: WebSocket, rt: Runtime) -> bool:
    """A browser always sends ``Origin`` on an upgrade; a request without one is no browser's."""
    origin = ws.headers.get("origin")
    if origin is None:
        return True
    host = ws.headers.get("host", "")
    return server_config.origin_allowed(await rt.config(), origin, host)


async def _authenticate(ws: WebSocket, rt: Runtime, token: str) -> Session | None:
    if token:
        try:
            return await user_service.authenticate(rt, token)
        except AppError:
            return None
    try:
        message = await asyncio.wait_for(_receive_message(ws), AUTH_TIMEOUT_SECONDS)
    except (TimeoutError, WebSocketDisconnect):
        return None
    if message is None or message.get("action") != "authentication_challenge":
        return None
    data = message.get("data")
    challenge_token = data.get("token") if isinstance(data, dict) else None
    if not isinstance(challenge_token, str):
        return None
    try:
        session = await user_service.authenticate(rt, challenge_token)
    except AppError:
        return None
    await ws.send_text(json.dumps({"status": "OK", "seq_reply": message["seq"]}))
    return session


async def _receive_message(ws: WebSocket) -> dict[str, Any] | None:
    """The client's next message as a JSON object with an integer ``seq`` (0 when missing), or
    None for anything else: binary frames, junk, other JSON."""
    received = await ws.receive()
    if received["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(received.get("code", 1000))
    text = received.get("text")
    if text is None:
        return None
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(message, dict):
        return None
    seq = message.setdefault("seq", 0)
    if isinstance(seq, bool) or not isinstance(seq, int):
        return None
    return message


def _frame(event: Event, seq: int) -> str:
    return json.dumps(
        {"event": event.event, "data": event.data, "broadcast": _broadcast(event), "seq": seq}
    )


def _broadcast(event: Event) -> dict[str, Any]:
    base: dict[str, Any] = {"omit_users": None, "user_id": "", "channel_id": "", "team_id": ""}
    base.update(event.broadcast)
    return base


@router.websocket("/api/v4/websocket")
async def websocket_endpoint(ws: WebSocket) -> None:
    rt = _runtime(ws)
    token, via_cookie = _upgrade_token(ws)
    if via_cookie and not await _origin_allowed(ws, rt):
        # Closing before accepting refuses the upgrade with 403.
        await ws.close(code=1008)
        return
    await ws.accept()
    session = await _authenticate(ws, rt, token)
    if session is None:
        await ws.close(code=1008)
        return
    listener = rt.events.subscribe(session.user.id, session.token_hash)
    try:
        # A session ended between authenticating and subscribing was announced to no listener.
        if not await user_service.check_session(rt, session):
            await ws.close(code=1008)
            return
        hello = Event(
            "hello",
            {"server_version": __version__, "connection_id": ""},
            {"user_id": session.user.id},
        )
        await ws.send_text(_frame(hello, 0))
        await _pump(ws, rt, session, listener)
    except WebSocketDisconnect:
        pass
    finally:
        rt.events.unsubscribe(listener)


async def _pump(ws: WebSocket, rt: Runtime, session: Session, listener: Listener) -> None:
    """Send events and answer client messages until either side stops."""
    sender = asyncio.create_task(_send_events(ws, rt, session, listener))
    receiver = asyncio.create_task(_answer_client(ws))
    done, pending = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
            await task
    for task in done:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            task.result()


async def _send_events(ws: WebSocket, rt: Runtime, session: Session, listener: Listener) -> None:
    """Forward the listener's events; between them, re-check the session now and then."""
    seq = 1
    next_check = rt.clock.monotonic() + SESSION_CHECK_SECONDS
    while listener.close_code is None:
        wait = next_check - rt.clock.monotonic()
        if session.expires_at:
            wait = min(wait, (session.expires_at - rt.clock.now_ms()) / 1000)
        event = await listener.next_event(max(wait, 0.0))
        if event is not None:
            await ws.send_text(_frame(event, seq))
            seq += 1
            continue
        if listener.close_code is None and (
            rt.clock.monotonic() >= next_check or session.expires_at <= rt.clock.now_ms()
        ):
            if not await user_service.check_session(rt, session):
                listener.close(CLOSE_SESSION_ENDED)
            next_check = rt.clock.monotonic() + SESSION_CHECK_SECONDS
    await ws.close(code=listener.close_code)


async def _answer_client(ws: WebSocket) -> None:
    """Clients send pings and typing notices; each gets a ``seq_reply``. Junk is ignored."""
    while True:
        message = await _receive_message(ws)
        if message is None:
            continue
        reply: dict[str, Any] = {"status": "OK", "seq_reply": message["seq"]}
        if message.get("action") == "ping":
            reply["data"] = {"text": "pong", "version": __version__}
        await ws.send_text(json.dumps(reply))
