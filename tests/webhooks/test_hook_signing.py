"""Standard Webhooks signatures, checked against the independent ``standardwebhooks`` package."""

import base64
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tidings.webhooks.signing import (
    mask_secret_headers,
    new_signing_secret,
    sign,
    signature_headers,
    verify,
)

BODY = '{"token":"tok","text":"héllo <b>"}'.encode()
MSG_ID = "k3x1b8e5jpgzxq4n7w6ru1yqfa"


def test_new_secret_is_whsec_and_32_random_bytes() -> None:
    """A secret is ``whsec_`` plus base64 of 32 bytes, fresh each time."""
    secret = new_signing_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert new_signing_secret() != secret


def test_signature_equals_the_reference_library() -> None:
    """``sign`` gives the same ``v1,`` value as standardwebhooks' own signer."""
    secret = new_signing_secret()
    timestamp = 1_700_000_000
    expected = Webhook(secret).sign(
        MSG_ID, datetime.fromtimestamp(timestamp, tz=UTC), BODY.decode()
    )
    assert sign(secret, MSG_ID, timestamp, BODY) == expected


@pytest.mark.parametrize("body", [BODY, b"channel_id=chan1&text=caf%C3%A9+%26&timestamp=123", b""])
def test_reference_library_verifies_our_headers(body: bytes) -> None:
    """A receiver using standardwebhooks accepts our headers for JSON, form and empty bodies."""
    secret = new_signing_secret()
    headers = signature_headers(secret, MSG_ID, int(time.time()), body)
    assert Webhook(secret).verify(body, headers, json_parse=False) is None


def test_reference_library_rejects_a_tampered_body() -> None:
    """Changing one byte of the body makes verification fail."""
    secret = new_signing_secret()
    headers = signature_headers(secret, MSG_ID, int(time.time()), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b"tok", b"tak"), headers, json_parse=False)


def test_headers_carry_id_timestamp_and_signature() -> None:
    """The three headers are the delivery id, the Unix seconds and the signature."""
    secret = new_signing_secret()
    headers = signature_headers(secret, MSG_ID, 1_700_000_000, BODY)
    assert headers == {
        "webhook-id": MSG_ID,
        "webhook-timestamp": "1700000000",
        "webhook-signature": sign(secret, MSG_ID, 1_700_000_000, BODY),
    }


def test_verify_accepts_our_signature() -> None:
    """``verify`` accepts what ``signature_headers`` made, within the tolerance."""
    secret = new_signing_secret()
    headers = signature_headers(secret, MSG_ID, 1_700_000_000, BODY)
    assert verify(secret, headers, BODY, now_s=1_700_000_100)


def test_verify_accepts_the_reference_library_signature() -> None:
    """A signature made by standardwebhooks passes our ``verify``."""
    secret = new_signing_secret()
    signature = Webhook(secret).sign(
        MSG_ID, datetime.fromtimestamp(1_700_000_000, tz=UTC), BODY.decode()
    )
    headers = {
        "webhook-id": MSG_ID,
        "webhook-timestamp": "1700000000",
        "webhook-signature": signature,
    }
    assert verify(secret, headers, BODY, now_s=1_700_000_000)


def test_verify_rejects_tampered_body_and_wrong_secret() -> None:
    """Another body or another secret does not verify."""
    secret = new_signing_secret()
    headers = signature_headers(secret, MSG_ID, 1_700_000_000, BODY)
    assert not verify(secret, headers, BODY + b" ", now_s=1_700_000_000)
    assert not verify(new_signing_secret(), headers, BODY, now_s=1_700_000_000)


def test_verify_rejects_a_changed_id_or_timestamp() -> None:
    """The id and the timestamp are signed too."""
    secret = new_signing_secret()
    headers = signature_headers(secret, MSG_ID, 1_700_000_000, BODY)
    assert not verify(secret, {**headers, "webhook-id": "other"}, BODY, now_s=1_700_000_000)
    moved = {**headers, "webhook-timestamp": "1700000001"}
    assert not verify(secret, moved, BODY, now_s=1_700_000_000)


@pytest.mark.parametrize(
    ("now_s", "valid"),
    [(1_700_000_300, True), (1_700_000_301, False), (1_699_999_700, True), (1_699_999_699, False)],
)
def test_verify_enforces_the_tolerance_both_ways(now_s: int, valid: bool) -> None:
    """Five minutes either side of the signed timestamp are accepted, no more."""
    secret = new_signing_secret()
    headers = signature_headers(secret, MSG_ID, 1_700_000_000, BODY)
    assert verify(secret, headers, BODY, now_s=now_s) is valid


def test_verify_accepts_any_of_several_signatures() -> None:
    """During a rotation the header lists several signatures; one valid ``v1`` is enough."""
    old, new = new_signing_secret(), new_signing_secret()
    good = sign(new, MSG_ID, 1_700_000_000, BODY)
    stale = sign(old, MSG_ID, 1_700_000_000, BODY)
    headers = {
        "webhook-id": MSG_ID,
        "webhook-timestamp": "1700000000",
        "webhook-signature": f"{stale} v1a,xyz {good}",
    }
    assert verify(new, headers, BODY, now_s=1_700_000_000)
    assert verify(old, headers, BODY, now_s=1_700_000_000)


def test_verify_ignores_other_signature_versions() -> None:
    """The right digest under a version other than ``v1`` does not count."""
    secret = new_signing_secret()
    digest = sign(secret, MSG_ID, 1_700_000_000, BODY).removeprefix("v1,")
    headers = {
        "webhook-id": MSG_ID,
        "webhook-timestamp": "1700000000",
        "webhook-signature": f"v2,{digest}",
    }
    assert not verify(secret, headers, BODY, now_s=1_700_000_000)


def test_verify_reads_header_names_in_any_case() -> None:
    """HTTP header names are case-insensitive."""
    secret = new_signing_secret()
    headers = signature_headers(secret, MSG_ID, 1_700_000_000, BODY)
    upper = {name.title(): value for name, value in headers.items()}
    assert verify(secret, upper, BODY, now_s=1_700_000_000)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_verify_rejects_missing_headers(missing: str) -> None:
    """Each of the three headers is required."""
    secret = new_signing_secret()
    headers = signature_headers(secret, MSG_ID, 1_700_000_000, BODY)
    del headers[missing]
    assert not verify(secret, headers, BODY, now_s=1_700_000_000)


@pytest.mark.parametrize("timestamp", ["", "abc", "-5", "1.7e9", "１２３"])
def test_verify_rejects_malformed_timestamps(timestamp: str) -> None:
    """The timestamp must be plain ASCII digits."""
    secret = new_signing_secret()
    headers = {**signature_headers(secret, MSG_ID, 1_700_000_000, BODY)}
    headers["webhook-timestamp"] = timestamp
    assert not verify(secret, headers, BODY, now_s=1_700_000_000)


def test_bad_secret_is_a_value_error() -> None:
    """A secret that is not base64 is refused instead of signing with garbage."""
    with pytest.raises(ValueError, match="base64"):
        sign("whsec_not*base64", MSG_ID, 1, BODY)


def test_mask_hides_signature_and_authorization_only() -> None:
    """The delivery log keeps every header but the signature and credentials."""
    headers = {
        "Content-Type": "application/json",
        "webhook-id": MSG_ID,
        "Webhook-Signature": "v1,abc",
        "authorization": "Bearer secret",
    }
    masked = mask_secret_headers(headers)
    assert masked == {
        "Content-Type": "application/json",
        "webhook-id": MSG_ID,
        "Webhook-Signature": "***",
        "authorization": "***",
    }
    assert headers["authorization"] == "Bearer secret"
