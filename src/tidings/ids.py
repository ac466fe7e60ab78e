"""Mattermost-style 26-character ids and tokens.

Ids are 16 random bytes in base32 with Mattermost's alphabet, so clients that check id shapes accept
ours. Must not import anything from the rest of the package.

Why not ``base64.b32encode(secrets.token_bytes(16))``: the worker makes a few ids per delivery,
and that spelling costs about 4 µs each (base32 is pure Python, and every ``os.urandom`` call is
a system call that also hands the GIL to the SQLite thread). Here the bytes come from
``os.urandom`` a page at a time and are spelt ten bits at a time from a table: the same
randomness and the same text, in under half the time. ``test_ids`` checks the spelling against
``base64.b32encode``.
"""

import os
import threading

_MATTERMOST = "ybndrfg8ejkmcpqxot1uwisza345h769"
# Every pair of base32 digits, indexed by the ten bits they spell.
_PAIRS = tuple(first + second for first in _MATTERMOST for second in _MATTERMOST)
# 128 bits shifted left by two fill 26 five-bit digits, as base32's padding of the last byte does.
_SHIFTS = tuple(range(120, -1, -10))
_ID_BYTES = 16
_POOL_BYTES = 4096


class _RandomPool:
    """Bytes from ``os.urandom``, drawn a page at a time and handed out once each.

    A lock keeps two threads from taking the same bytes, and a forked child drops what it
    inherited, so parent and child never hand out the same id.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bytes = b""
        self._next = 0

    def take(self, count: int) -> bytes:
        with self._lock:
            if self._next + count > len(self._bytes):
                self._bytes = os.urandom(max(_POOL_BYTES, count))
                self._next = 0
            start = self._next
            self._next = start + count
            return self._bytes[start : self._next]

    def forget(self) -> None:
        self._lock = threading.Lock()
        self._bytes = b""
        self._next = 0


_POOL = _RandomPool()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_POOL.forget)


def spell(raw: bytes) -> str:
    """16 bytes as 26 base32 digits in Mattermost's alphabet, without padding."""
    number = int.from_bytes(raw, "big") << 2
    pairs = _PAIRS
    return "".join([pairs[(number >> shift) & 1023] for shift in _SHIFTS])


def new_id() -> str:
    """Return a fresh 26-character id (also used for tokens: it is 128 bits of randomness)."""
    return spell(_POOL.take(_ID_BYTES))


def is_valid_id(value: str) -> bool:
    """Mattermost's IsValidId: 26 bytes, every character a Unicode letter or number."""
    if len(value.encode("utf-8")) != 26:
        return False
    return all(ch.isalnum() for ch in value)
