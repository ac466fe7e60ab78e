"""Response body decoding for the webhook client: gzip, deflate and br, with bounded output.

A receiver chooses its ``Content-Encoding``, so a compressed reply is a possible bomb: a few
hundred bytes on the wire can inflate to gigabytes. Every decoder here is incremental and takes
the room left under the client's cap with each piece of wire data; it returns at most that many
bytes, and keeps no more than a small step (about 32 KiB for br) beyond it while decoding. So a
bomb costs the cap, never its inflated size, and ``tidings.webhooks.client`` only has to count.

Only one content coding is decoded: stacked codings (``gzip, br``) multiply a bomb and no
receiver needs them, so :func:`content_coding` reports them as unsupported.

Pure: no I/O. Imports only ``zlib`` and ``brotli``; nothing from tidings.
"""

import abc
import zlib
from collections.abc import Callable, Iterable
from typing import Any

import brotli

# brotli's ``output_buffer_limit`` is a soft limit: a call returns at least one internal buffer
# (32,752 bytes for a limit of 1) and about twice a large limit (2,064,288 for 1,048,577). A
# small limit per call, with the output cut at the room, keeps the overshoot to one buffer.
_BROTLI_STEP = 16_384


class UndecodableBody(ValueError):
    """The compressed data is corrupt; the message says how, for the delivery log."""


class Decoder(abc.ABC):
    """An incremental body decoder whose output per call is bounded by ``room``."""

    @abc.abstractmethod
    def decode(self, data: bytes, room: int) -> bytes:
        """Decode the next piece of the body; at most ``room`` bytes (fewer than the data holds
        means the cap is reached, and the caller stops). Raises :class:`UndecodableBody`."""

    def finish(self) -> str:
        """At end of body: ``""`` if the stream was complete, else what is wrong with it."""
        return ""


class Identity(Decoder):
    """No content coding: the wire bytes are the body."""

    def decode(self, data: bytes, room: int) -> bytes:
        return data[:room]


class _Zlib(Decoder):
    """gzip (several members allowed, as RFC 1952 permits) or deflate (zlib-wrapped or raw)."""

    def __init__(self, gzip: bool) -> None:
        self._gzip = gzip
        self._head = b""
        self._inflater: Any = (
            zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip else None  # deflate: see decode
        )

    def decode(self, data: bytes, room: int) -> bytes:
        try:
            return self._decode(data, room)
        except zlib.error as exc:
            raise UndecodableBody(str(exc) or "corrupt data") from exc

    def _decode(self, data: bytes, room: int) -> bytes:
        if self._inflater is None:
            # HTTP "deflate" is meant to be zlib-wrapped, but some servers send raw deflate;
            # the first two bytes tell which (a zlib header is a multiple of 31).
            self._head += data
            if len(self._head) < 2:
                return b""
            data, self._head = self._head, b""
            zlib_wrapped = data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
            self._inflater = zlib.decompressobj(zlib.MAX_WBITS if zlib_wrapped else -zlib.MAX_WBITS)
        out = self._inflater.decompress(data, room)
        # Output stopped at ``room`` with input left over: the cap is reached, and the caller
        # stops; the unconsumed input is simply dropped with the decoder.
        while self._gzip and self._inflater.eof and self._inflater.unused_data and len(out) < room:
            rest = self._inflater.unused_data
            self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out += self._inflater.decompress(rest, room - len(out))
        return bytes(out)

    def finish(self) -> str:
        if self._inflater is None:
            return "ended before its compressed data did" if self._head else ""
        return "" if self._inflater.eof else "ended before its compressed data did"


class _Brotli(Decoder):
    def __init__(self) -> None:
        self._inflater = brotli.Decompressor()

    def decode(self, data: bytes, room: int) -> bytes:
        try:
            pieces = [self._inflater.process(data, output_buffer_limit=_BROTLI_STEP)]
            size = len(pieces[0])
            # Output may still be pending (with input held back, or not): drain it with empty
            # input, a step at a time, while there is room (past the room the caller stops);
            # an empty step means the decoder needs more input.
            while size < room and not self._inflater.is_finished():
                more = self._inflater.process(b"", output_buffer_limit=_BROTLI_STEP)
                if not more:
                    break
                pieces.append(more)
                size += len(more)
        except brotli.error as exc:
            raise UndecodableBody(str(exc) or "corrupt data") from exc
        if size > room:
            pieces[-1] = pieces[-1][: room - (size - len(pieces[-1]))]
        return b"".join(pieces)

    def finish(self) -> str:
        return "" if self._inflater.is_finished() else "ended before its compressed data did"


DECODERS: dict[str, Callable[[], Decoder]] = {
    "gzip": lambda: _Zlib(gzip=True),
    "x-gzip": lambda: _Zlib(gzip=True),
    "deflate": lambda: _Zlib(gzip=False),
    "br": _Brotli,
}


def content_coding(values: Iterable[object]) -> str | None:
    """The one content coding of a response (None for identity), or ``""`` for several.

    ``Content-Encoding`` may list codings applied in turn; only one is decoded (see the module
    docstring), so a list names no decoder.
    """
    codings = [
        part.strip().lower() for value in values for part in str(value).split(",") if part.strip()
    ]
    codings = [coding for coding in codings if coding != "identity"]
    if not codings:
        return None
    return codings[0] if len(codings) == 1 else ""
