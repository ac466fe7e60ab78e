"""Mattermost-style 26-character ids and tokens.

Ids are 16 random bytes in base32 with Mattermost's alphabet, so clients that check id shapes accept
ours. Must not import anything from the rest of the package.
"""

import base64
import secrets

_STANDARD = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_MATTERMOST = "ybndrfg8ejkmcpqxot1uwisza345h769"
_TRANSLATION = str.maketrans(_STANDARD, _MATTERMOST)


def new_id() -> str:
    """Return a fresh 26-character id (also used for tokens: it is 128 bits of randomness)."""
    raw = base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=")
    return raw.translate(_TRANSLATION)


def is_valid_id(value: str) -> bool:
    """Mattermost's IsValidId: 26 bytes, every character a Unicode letter or number."""
    if len(value.encode("utf-8")) != 26:
        return False
    return all(ch.isalnum() for ch in value)
