"""response_url's pure parts: secrets, their digest, and the address the URL starts with."""

import hashlib

import pytest

from tidings.webhooks.client import MAX_RESPONSE_BYTES
from tidings.webhooks.response_urls import (
    MAX_REPLY_BYTES,
    new_response_secret,
    response_url,
    secret_digest,
    site_url,
)


def test_secrets_are_long_url_safe_and_fresh() -> None:
    """32 random bytes, URL-safe (43 characters), never the same twice."""
    found = {new_response_secret() for _ in range(100)}
    assert len(found) == 100
    for secret in found:
        assert len(secret) == 43
        assert response_url("https://x", secret).endswith(f"/hooks/responses/{secret}")
        assert all(c.isalnum() or c in "-_" for c in secret)


def test_only_the_sha256_is_stored() -> None:
    """The digest is the secret's sha256 in hex, which does not contain the secret."""
    secret = new_response_secret()
    assert secret_digest(secret) == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in secret_digest(secret)


@pytest.mark.parametrize(
    ("configured", "host", "port", "expected"),
    [
        ("https://chat.example.com/", "127.0.0.1", 8065, "https://chat.example.com"),
        ("https://chat.example.com/sub", "0.0.0.0", 80, "https://chat.example.com/sub"),
        ("", "127.0.0.1", 8065, "http://127.0.0.1:8065"),
        ("", "0.0.0.0", 8065, "http://127.0.0.1:8065"),
        ("", "::", 9000, "http://[::1]:9000"),
        ("", "chat.internal", 8065, "http://chat.internal:8065"),
        ("", "::1", 8065, "http://[::1]:8065"),
    ],
)
def test_the_site_is_site_url_or_the_listen_address(
    configured: str, host: str, port: int, expected: str
) -> None:
    """SiteURL wins; else the listen address, with an unspecified one as loopback."""
    assert site_url(configured, host, port) == expected


def test_a_deferred_reply_is_capped_like_a_direct_one() -> None:
    """The same 1 MiB as a receiver's reply to the request."""
    assert MAX_REPLY_BYTES == MAX_RESPONSE_BYTES
