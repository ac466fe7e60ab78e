"""A slow outgoing-webhook receiver: answers at once with an empty body, replies later.

Some work takes longer than a webhook request may (a build, a report, a language model). This
bot takes the request, answers ``200`` with nothing in the body straight away (so Tidings posts
nothing and does not retry), does its "work" for ``SLOW_BOT_DELAY_SECONDS`` (default 3), then
posts its reply to the delivery's ``response_url`` — in the triggering post's thread.

The hook must have **Extended payload** on (API field ``extended_payload``, CLI
``--extended-payload``): only then does the body carry ``response_url``. A ``response_url``
works for ``OutgoingWebhookResponseUrlMinutes`` (30 by default) and at most 5 times.

    TIDINGS_TOKEN=<token> TIDINGS_SIGNING_SECRET=whsec_... python examples/slow_bot.py

Only the standard library is used. A loopback receiver needs the admin to allow it: System
Console → Service Settings → AllowedUntrustedInternalConnections = ``127.0.0.1`` (see
docs/integrations.md).
"""

import base64
import hashlib
import hmac
import json
import os
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

TOKEN = os.environ.get("TIDINGS_TOKEN", "")
SIGNING_SECRET = os.environ.get("TIDINGS_SIGNING_SECRET", "")
DELAY_SECONDS = float(os.environ.get("SLOW_BOT_DELAY_SECONDS", "3"))
TOLERANCE_SECONDS = 300


def signature_ok(headers: dict[str, str], body: bytes) -> bool:
    """Check the Standard Webhooks signature: HMAC-SHA256 of ``id.timestamp.body``."""
    msg_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    key = base64.b64decode(SIGNING_SECRET.removeprefix("whsec_"))
    expected = base64.b64encode(
        hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    ).decode()
    offered = [s.split(",", 1)[1] for s in headers.get("webhook-signature", "").split() if "," in s]
    return any(hmac.compare_digest(expected, candidate) for candidate in offered)


def parse_event(content_type: str, body: bytes) -> dict[str, object]:
    """Form bodies (the default) and JSON bodies carry the same fields; in JSON ``from_bot``
    is a boolean, in a form the string ``true`` or ``false``."""
    if content_type.startswith("application/json"):
        data: dict[str, object] = json.loads(body)
        return data
    fields = parse_qs(body.decode(), keep_blank_values=True)
    return {key: values[0] for key, values in fields.items()}


def reply_later(response_url: str, text: str) -> None:
    """Do the slow work, then post the reply where the delivery said."""
    if not response_url.startswith(("https://", "http://")):
        print("not an HTTP response_url; ignored")
        return
    time.sleep(DELAY_SECONDS)
    reply = {"text": f"Done: {text!r} took {DELAY_SECONDS:g} s.", "response_type": "comment"}
    request = urllib.request.Request(  # noqa: S310 (the scheme is checked above)
        response_url,
        data=json.dumps(reply).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 (as above)
            print(f"deferred reply posted: {answer.status}")
    except OSError as error:  # 404 unknown, 410 expired or used up, 400 a bad reply
        print(f"deferred reply refused: {error}")


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        if SIGNING_SECRET and not signature_ok(headers, body):
            self.answer(401, b'{"error": "bad signature"}')
            return
        event = parse_event(headers.get("content-type", ""), body)
        if TOKEN and not hmac.compare_digest(str(event.get("token", "")), TOKEN):
            self.answer(401, b'{"error": "bad token"}')
            return
        if event.get("from_bot") in (True, "true"):
            self.answer(200, b"")  # never answer a bot (or ourselves): no loops
            return
        response_url = str(event.get("response_url", ""))
        if not response_url:
            self.answer(200, b'{"text": "Turn on the extended payload for deferred replies."}')
            return
        threading.Thread(
            target=reply_later, args=(response_url, str(event.get("text", ""))), daemon=True
        ).start()
        self.answer(200, b"")  # nothing now; the reply comes through response_url

    def answer(self, status: int, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "5001"))
    print(f"slow bot on http://127.0.0.1:{port}/")
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
