"""Mattermost-style 26-character ids and tokens.

An id is 26 digits of Mattermost's base32 alphabet, so clients that check id shapes accept ours.
Must not import anything from the rest of the package.

Why not ``base64.b32encode(secrets.token_bytes(16))`` as Mattermost does it: the worker makes a
few ids per delivery, and that spelling costs about 4 µs each (base32 is pure Python, and every
``os.urandom`` call is a system call that also hands the GIL to the database thread). Here each
digit is one random byte folded onto the 32-letter alphabet by ``bytes.translate`` (256 is a
multiple of 32, so every digit is uniform), and the bytes come from ``os.urandom`` a page at a
time: 26 × 5 = 130 random bits per id, all in C.
"""

import os
import threading

_MATTERMOST = "ybndrfg8ejkmcpqxot1uwisza345h769"
# Byte value → digit: the low five bits pick the letter.
_DIGITS = bytes(ord(_MATTERMOST[value % 32]) for value in range(256))
ID_LENGTH = 26
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


def new_id() -> str:
    """Return a fresh 26-character id (also used for tokens: 130 bits of randomness)."""
    return _POOL.take(ID_LENGTH).translate(_DIGITS).decode("ascii")


def is_valid_id(value: str) -> bool:
    """Mattermost's IsValidId: 26 bytes, every character a Unicode letter or number."""
    if len(value.encode("utf-8")) != ID_LENGTH:
        return False
    return value.isalnum()
