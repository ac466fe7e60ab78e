"""A small outgoing-webhook receiver: answers ``#build`` with the seed's build-status table.

Run it, then add an outgoing hook (channel + trigger word ``#build``) whose callback URL is
``http://127.0.0.1:5000/`` and give this script the hook's token (and, optionally, its signing
secret):

    TIDINGS_TOKEN=<token> TIDINGS_SIGNING_SECRET=whsec_... python examples/build_status.py

Only the standard library is used, so it runs anywhere Python does. A loopback receiver needs
the admin to allow it: System Console → Service Settings → AllowedUntrustedInternalConnections
= ``127.0.0.1`` (see docs/integrations.md).
"""

import base64
import hashlib
import hmac
import json
import os
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs

TOKEN = os.environ.get("TIDINGS_TOKEN", "")
SIGNING_SECRET = os.environ.get("TIDINGS_SIGNING_SECRET", "")
TOLERANCE_SECONDS = 300

BUILD_TABLE = """---
##### Build Break - Project X - December 12, 2015 - 15:32 GMT +0
| Component | Tests Run | Tests Failed |
|:-----------|:------------|:-----------------------------------------------|
| Server | 948 | :white_check_mark: 0 |
| Web Client | 123 | :warning: [2 (see details)](http://linktologs) |
| iOS Client | 78 | :warning: [3 (see details)](http://linktologs) |
---
"""


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


def parse_event(content_type: str, body: bytes) -> dict[str, str]:
    """Form bodies (the default) and JSON bodies carry the same fields."""
    if content_type.startswith("application/json"):
        data = json.loads(body)
        return {key: str(value) for key, value in data.items()}
    return {
        key: values[0] for key, values in parse_qs(body.decode(), keep_blank_values=True).items()
    }


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        if SIGNING_SECRET and not signature_ok(headers, body):
            self.answer(401, {"error": "bad signature"})
            return
        event = parse_event(headers.get("content-type", ""), body)
        if TOKEN and not hmac.compare_digest(event.get("token", ""), TOKEN):
            self.answer(401, {"error": "bad token"})
            return
        if event.get("trigger_word") == "#build":
            self.answer(200, {"text": BUILD_TABLE, "username": "build-bot"})
        else:
            self.answer(200, {})

    def answer(self, status: int, reply: dict[str, str]) -> None:
        payload = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "5000"))
    print(f"build-status receiver on http://127.0.0.1:{port}/")
    HTTPServer(("127.0.0.1", port), Handler).serve_forever()
