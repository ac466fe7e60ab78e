"""Deferred replies' addresses: the ``response_url`` an extended payload carries (issue #13).

A ``response_url`` is ``{site}/hooks/responses/{secret}``: the secret is the only credential
(the route takes no session, like Mattermost's incoming hooks), so it is 32 random bytes, and
the database keeps only its sha256 (``deliveries.response_secret_hash``) — a leaked database
or delivery-log backup gives no one a way to post. Each delivery gets its own secret, so one
callback URL's receiver cannot post through another's delivery.

Pure: imports only the standard library. No I/O.
"""

import hashlib
import secrets

RESPONSE_PATH = "/hooks/responses/"
MAX_USES = 5
"""How many replies one ``response_url`` may post."""
SECRET_BYTES = 32
MAX_REPLY_BYTES = 1_048_576
"""A deferred reply's body is capped as a receiver's direct reply is (``webhooks/client.py``'s
``MAX_RESPONSE_BYTES``); the server's ``MaximumPayloadSizeBytes`` applies before it."""
MAX_SECRET_CHARS = 64
"""A longer path segment is no secret of ours; refused before it is hashed."""


def new_response_secret() -> str:
    """A fresh, URL-safe secret (43 characters)."""
    return secrets.token_urlsafe(SECRET_BYTES)


def secret_digest(secret: str) -> str:
    """What is stored and looked up: the secret's sha256 in hex (the secret is random, so no
    salt or slow hash is needed)."""
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()


def response_url(site_url: str, secret: str) -> str:
    """The absolute URL a receiver posts its deferred reply to."""
    return f"{site_url.rstrip('/')}{RESPONSE_PATH}{secret}"


def site_url(configured: str, listen_host: str, listen_port: int) -> str:
    """The server's public address: ``ServiceSettings.SiteURL`` when set, else the address it
    listens on (an unspecified listen address, ``0.0.0.0`` or ``::``, names no host a receiver
    could reach, so loopback stands in: set SiteURL for receivers on other machines)."""
    if configured:
        return configured.rstrip("/")
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(listen_host, listen_host)  # noqa: S104
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{listen_port}"


def expires_at(created_at_ms: int, minutes: int) -> int:
    """When a delivery's ``response_url`` stops working (ms)."""
    return created_at_ms + minutes * 60_000
