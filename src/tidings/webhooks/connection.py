"""One kept-alive HTTP/1.1 connection of the webhook client: a request out, a bounded reply in.

Why not aiohttp's client, which Tidings used before: a callback is a small POST and a small
reply, and aiohttp spent 180–260 µs of CPU on each on the benchmark machine, about half of
everything else a delivery costs (recording it durably included). This connection spends
about 50 µs: it writes the request in one ``transport.write`` and lets httptools (the llhttp
parser that uvicorn uses, in C) call back with the status, headers and body as bytes arrive.
The measurement is in ``docs/dependencies.md``.

What a receiver controls, and what bounds it:

- the response head: at most ``MAX_HEAD_BYTES`` (64 KiB, give or take the last read) and
  ``MAX_HEADERS`` (128) lines per response, or the reply is a protocol error. The head goes to
  the parser a whole line at a time, so a head sent a byte at a time costs linear time (the
  parser builds a header by concatenating the pieces it is fed);
- the body: decoded a piece at a time by ``tidings.webhooks.decoding`` with the room left under
  the cap, so at most the cap plus one byte is kept of the wire bytes and of the decoded bytes;
  past it the reply is cut, flagged ``truncated`` and the connection dropped rather than drained;
- informational (1xx) responses are skipped, each bounded like any head; an endless stream of
  them ends at the caller's deadline;
- bytes that arrive while no request is waiting close the connection (it cannot be trusted for
  the next request).

Time is the caller's: :meth:`Connection.expire` ends the wait when the deadline passes.
"""

import asyncio
from dataclasses import dataclass
from typing import cast

import httptools

from tidings.webhooks.decoding import DECODERS, Decoder, UndecodableBody, content_coding

MAX_HEAD_BYTES = 65_536
MAX_HEADERS = 128


class ResponseFailed(Exception):
    """The exchange ended without a complete response; ``answered`` says whether a status line
    arrived (before it, the receiver is unreachable in effect; after it, it broke HTTP)."""

    def __init__(self, message: str, *, answered: bool) -> None:
        super().__init__(message)
        self.message = message
        self.answered = answered


class ResponseTimedOut(Exception):
    """The caller's deadline passed before the response was complete."""


@dataclass(slots=True)
class Response:
    """A final response as far as it was read: headers as raw byte pairs, the decoded body."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    truncated: bool
    unreadable: str  # why the body cannot be used, or ""


class Connection(asyncio.Protocol):
    """An HTTP/1.1 client connection carrying one request at a time.

    ``exchange`` sends a request and waits for its response; afterwards ``reusable`` says whether
    the connection may carry the next one.
    """

    def __init__(self, max_body_bytes: int) -> None:
        self._max_body = max_body_bytes
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Response] | None = None
        self.closed = False
        self.reusable = False
        self.idle_since = 0.0
        self.generation = 0
        self._pending = bytearray()
        self._coding = ""
        self._reset_message()

    def _reset_message(self) -> None:
        """Per-response state; a 1xx response is followed by a fresh one on the same request."""
        self._head_size = 0
        self._in_head = True
        self._answered = False
        self._headers: list[tuple[bytes, bytes]] = []
        self._chunks: list[bytes] = []
        self._wire = 0
        self._size = 0
        self._decoder: Decoder | None = None
        self._problem = ""

    # --- the caller's side ---------------------------------------------------------------------

    async def exchange(self, request: bytes) -> Response:
        """Write ``request`` and wait for its final response; raises :class:`ResponseFailed` or
        :class:`ResponseTimedOut` (after :meth:`expire`)."""
        if self.closed or self._transport is None:
            raise ResponseFailed("the connection is closed", answered=False)
        self.reusable = False
        self._reset_message()
        self._pending = bytearray()
        waiter: asyncio.Future[Response] = self._loop.create_future()
        self._waiter = waiter
        self._transport.write(request)
        try:
            return await waiter
        finally:
            self._waiter = None
            if not self.reusable:
                self.close()

    def expire(self) -> None:
        """The caller's deadline: fail the wait and drop the connection."""
        self._fail(ResponseTimedOut())

    def close(self) -> None:
        """Drop the connection at once (unread data is not drained)."""
        self.closed = True
        self.reusable = False
        if self._transport is not None:
            self._transport.abort()

    # --- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport, but have its methods.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self.close()  # unasked-for bytes: this connection cannot carry another request
            return
        if self._in_head:
            self._feed_head(data)
        else:
            self._feed(data)

    def eof_received(self) -> bool:
        return False  # close; connection_lost settles the wait

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._pending and self._in_head:
            # A last line without its newline: the parser may still see that it is not HTTP.
            rest = bytes(self._pending)
            self._pending.clear()
            self._feed(rest)
            if waiter.done():
                return
        if exc is None and self._answered and not self._in_head and self._body_ends_at_close():
            self._complete(keep_alive=False)
            return
        if exc is None:
            cause = "the receiver closed the connection"
        else:
            cause = f"the connection was lost ({str(exc) or type(exc).__name__})"
        if not self._answered:
            self._fail(ResponseFailed(f"{cause} without answering", answered=False))
        else:
            self._fail(ResponseFailed(f"{cause} before the response was complete", answered=True))

    # --- httptools callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            self.close()  # a second response in the same bytes: nobody asked for it

    def on_status(self, status: bytes) -> None:
        self._answered = True

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(self._headers) >= MAX_HEADERS:
            self._problem = f"more than {MAX_HEADERS} header lines"
            raise ResponseFailed(self._problem, answered=True)
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._answered = True
        status = self._parser.get_status_code()
        if status < 200:
            return  # informational: its message completes next, and a new head follows
        codings = [v for n, v in self._headers if n.lower() == b"content-encoding"]
        if not codings:
            return
        texts = [v.decode("latin-1") for v in codings]
        coding = content_coding(texts)
        if coding is None:
            return
        if coding not in DECODERS:
            shown = ", ".join(texts)[:100]
            self._finish_early(f"unsupported Content-Encoding {shown!r}")
        else:
            self._coding = coding
            self._decoder = DECODERS[coding]()

    def on_body(self, chunk: bytes) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        limit = self._max_body
        self._wire += len(chunk)
        if self._decoder is not None:
            try:
                chunk = self._decoder.decode(chunk, limit + 1 - self._size)
            except UndecodableBody as exc:
                self._finish_early(f"the {self._coding} body cannot be decoded: {exc}")
                return
        self._chunks.append(chunk)
        self._size += len(chunk)
        if self._size > limit or self._wire > limit:
            body = b"".join(self._chunks)[:limit]
            self._settle(Response(self._parser.get_status_code(), self._headers, body, True, ""))
            self.close()

    def on_message_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:
            self._reset_message()
            self._answered = True  # a status line has arrived; the final one is awaited
            return
        self._complete(keep_alive=self._parser.should_keep_alive())

    # --- settling ------------------------------------------------------------------------------

    def _feed_head(self, data: bytes) -> None:
        """Feed the parser whole lines of the head only, and bound the head's size.

        httptools builds a header by concatenating the pieces it is given, so a line fed a byte
        at a time would cost quadratic time; held back until its newline, each line is fed once.
        """
        pending = self._pending
        pending += data
        self._head_size += len(data)
        cut = pending.rfind(b"\n") + 1
        if cut:
            ready = bytes(pending[:cut])
            del pending[:cut]
            self._feed(ready)
            if not self._in_head and pending and not self.closed:
                rest = bytes(pending)
                pending.clear()
                self._feed(rest)
        if self._in_head and self._head_size > MAX_HEAD_BYTES:
            self._fail(
                ResponseFailed(
                    f"invalid HTTP response: the head is larger than {MAX_HEAD_BYTES} bytes",
                    answered=True,
                )
            )

    def _feed(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._complete(keep_alive=False)
        except httptools.HttpParserCallbackError:
            self._fail(ResponseFailed(f"invalid HTTP response: {self._problem}", answered=True))
        except httptools.HttpParserError as exc:
            reason = self._problem or str(exc) or type(exc).__name__
            self._fail(ResponseFailed(f"invalid HTTP response: {reason}", answered=True))

    def _body_ends_at_close(self) -> bool:
        """Whether this response's body is delimited by the connection's end (no length given)."""
        for name, _ in self._headers:
            low = name.lower()
            if low in {b"content-length", b"transfer-encoding"}:
                return False
        return True

    def _complete(self, *, keep_alive: bool) -> None:
        body = b"".join(self._chunks)
        unreadable = ""
        if self._decoder is not None and self._wire:  # an empty body is empty in any coding
            problem = self._decoder.finish()
            if problem:
                body, unreadable = b"", f"the {self._coding} body {problem}"
        if self._settle(
            Response(self._parser.get_status_code(), self._headers, body, False, unreadable)
        ):
            self.reusable = keep_alive and not self.closed

    def _finish_early(self, unreadable: str) -> None:
        """A body that cannot be used: settle now with the status and headers, and drop the
        connection rather than read the rest."""
        self._settle(
            Response(self._parser.get_status_code(), self._headers, b"", False, unreadable)
        )
        self.close()

    def _settle(self, response: Response) -> bool:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return False
        waiter.set_result(response)
        return True

    def _fail(self, error: Exception) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self.close()
