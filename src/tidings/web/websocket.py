"""``/api/v4/websocket``: Mattermost's event stream.

Authentication by the upgrade request (bearer header or session cookie) or by a first
``authentication_challenge`` message. Then ``hello`` with ``seq`` 0 and events numbered 1, 2, …
per connection. Events come from the in-process hub, which only queues them for the channel's
members; a connection that falls behind is closed rather than allowed to slow posting.
"""

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from tidings import __version__
from tidings.errors import AppError
from tidings.events import Event, Listener
from tidings.services import users as user_service
from tidings.services.runtime import Runtime
from tidings.services.users import Session

logger = logging.getLogger(__name__)
router = APIRouter()

AUTH_TIMEOUT_SECONDS = 10.0


def _runtime(ws: WebSocket) -> Runtime:
    rt: Runtime = ws.app.state.runtime
    return rt


def _upgrade_token(ws: WebSocket) -> str:
    scheme, _, value = ws.headers.get("authorization", "").partition(" ")
    if scheme.lower() in ("bearer", "token") and value.strip():
        return value.strip()
    return ws.cookies.get("MMAUTHTOKEN", "")


async def _authenticate(ws: WebSocket, rt: Runtime) -> Session | None:
    token = _upgrade_token(ws)
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
    await ws.accept()
    rt = _runtime(ws)
    session = await _authenticate(ws, rt)
    if session is None:
        await ws.close(code=1008)
        return
    listener = rt.events.subscribe(session.user.id)
    try:
        hello = Event(
            "hello",
            {"server_version": __version__, "connection_id": ""},
            {"user_id": session.user.id},
        )
        await ws.send_text(_frame(hello, 0))
        await _pump(ws, listener)
    except WebSocketDisconnect:
        pass
    finally:
        rt.events.unsubscribe(listener)


async def _pump(ws: WebSocket, listener: Listener) -> None:
    """Send events and answer client messages until either side stops."""
    sender = asyncio.create_task(_send_events(ws, listener))
    receiver = asyncio.create_task(_answer_client(ws))
    done, pending = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
            await task
    for task in done:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            task.result()


async def _send_events(ws: WebSocket, listener: Listener) -> None:
    seq = 1
    while not listener.dropped:
        try:
            event = await asyncio.wait_for(listener.queue.get(), 30)
        except TimeoutError:
            continue
        await ws.send_text(_frame(event, seq))
        seq += 1
    await ws.close(code=1013)


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
