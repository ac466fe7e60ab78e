"""Standard Webhooks signatures for outgoing requests (spec §5).

The body's ``token`` is Mattermost's only proof of origin; a receiver that keeps the token in a
log can be impersonated. So every request also carries the Standard Webhooks headers
(https://www.standardwebhooks.com/): ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature = v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` keyed with the
hook's ``whsec_`` secret, which any Standard Webhooks library can verify.

Pure: imports only the standard library. No I/O; the caller supplies the time.
"""

import base64
import binascii
import functools
import hashlib
import hmac
import secrets
from collections.abc import Mapping

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's marker, not a secret
SIGNATURE_VERSION = "v1"
MASK = "***"
_MASKED_HEADERS = frozenset({"webhook-signature", "authorization"})


def new_signing_secret() -> str:
    """A fresh secret: ``whsec_`` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _secret_key(secret: str) -> bytes:
    """The HMAC key: the base64 part after the prefix, decoded. Raises ``ValueError`` if bad."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except binascii.Error as error:
        raise ValueError("signing secret is not valid base64") from error
    if not key:
        raise ValueError("signing secret is empty")
    return key


@functools.lru_cache(maxsize=1024)
def _keyed(secret: str) -> "hmac.HMAC":
    """An HMAC with the secret's key already set up, to copy per request.

    Remembered per secret, since every request of a hook signs with the same one; copying it
    skips the key schedule, and unlike one-shot ``hmac.digest`` it keeps the GIL for small bodies
    (a hand-over to the database thread costs more than the hash).
    """
    return hmac.new(_secret_key(secret), digestmod=hashlib.sha256)


def sign(secret: str, msg_id: str, timestamp_s: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one request: ``v1,`` and the base64 HMAC."""
    mac = _keyed(secret).copy()
    mac.update(f"{msg_id}.{timestamp_s}.".encode())
    mac.update(body)
    return f"{SIGNATURE_VERSION},{base64.b64encode(mac.digest()).decode('ascii')}"


def signature_headers(secret: str, msg_id: str, timestamp_s: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for a request (``msg_id`` is the delivery id)."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp_s),
        "webhook-signature": sign(secret, msg_id, timestamp_s, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now_s: float,
    tolerance_s: float = 300,
) -> bool:
    """Whether ``headers`` carry a valid signature of ``body`` made within ``tolerance_s``.

    This is what a receiver runs (and what the docs' example shows). Header names match in any
    case; the signature header may list several space-separated signatures (as during a secret
    rotation), and one valid ``v1`` entry is enough. Comparison is constant-time.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get("webhook-id", "")
    timestamp = lowered.get("webhook-timestamp", "")
    signatures = lowered.get("webhook-signature", "")
    if not (msg_id and timestamp and signatures):
        return False
    if not timestamp.isascii() or not timestamp.isdigit():
        return False
    timestamp_s = int(timestamp)
    if abs(now_s - timestamp_s) > tolerance_s:
        return False
    expected = sign(secret, msg_id, timestamp_s, body).encode("ascii")
    valid = False
    for candidate in signatures.split(" "):
        version, _, _ = candidate.partition(",")
        if version != SIGNATURE_VERSION:
            continue
        # Keep looping after a hit so the time taken does not say which entry matched.
        if hmac.compare_digest(expected, candidate.encode("utf-8", "replace")):
            valid = True
    return valid


def mask_secret_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy fit for the delivery log: signature and ``Authorization`` values become ``***``."""
    return {
        name: MASK if name.lower() in _MASKED_HEADERS else value for name, value in headers.items()
    }
