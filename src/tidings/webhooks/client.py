"""The one configured outbound HTTP client of the webhook engine.

Every callback request leaves through ``WebhookClient.post``, so the transport rules live in one
place: a connect timeout of 3 s and a per-call total timeout, no redirects (a 3xx is an outcome),
response bodies read up to 1 MiB, no cookies, no proxy from the environment, ``User-Agent:
Tidings/<version>``, and the SSRF guard of ``AllowedUntrustedInternalConnections``. ``post`` never
raises for network or HTTP trouble: the worker gets an ``HttpOutcome`` whose ``error_kind`` says
what went wrong, and records it.

The SSRF guard, and why it sits where it does
---------------------------------------------
Checking the URL before sending is not enough: a name can resolve into private space, or resolve
differently on the second lookup. So the rules of ``tidings.webhooks.addresses`` are applied to the
*resolved* address the socket is about to connect to: ``_connect`` resolves the host, judges each
address in turn, and connects a socket of its own to exactly the address it admitted (IP literals
go through the same path). A refused address is skipped for the host's next one, as Mattermost's
dialer does; when every address was refused the outcome is ``forbidden_address`` with the reasons.
REF §3.5's first rule exempts a URL whose *host string* is an allow-list entry, decided per
request from the URL.

Connections and allow-list changes
----------------------------------
Connections are kept alive per origin (scheme, host, port) and reused one request at a time;
idle ones close after ``KEEPALIVE_SECONDS``. Reused connections skip the guard, so a connection
opened while an address was allowed must not outlive the allow-list that allowed it: each
connection carries the generation of the list it was checked against, ``set_allowlist`` bumps
the generation and closes the idle connections, and a connection still carrying a request when
the list changes finishes it (it was allowed when it started; it is not cut off) and is then
closed instead of kept. Setting an unchanged value keeps the connections.

HTTP/1.1 itself is ``tidings.webhooks.connection`` (httptools' parser under an asyncio
protocol); this module decides what to send, where, and what the answer comes to.

Body size and compression
-------------------------
The client asks for ``Accept-Encoding: gzip, deflate, br`` and decodes the body itself
as it arrives (``tidings.webhooks.connection``), a piece at a time, through the decoders of
``tidings.webhooks.decoding``: each call returns at most the room left under the cap (for br
that takes small steps and a cut, as brotli's own output limit is soft), so the 1 MiB cap holds
on the *decoded* bytes: a gzip, deflate or br bomb costs at most 1 MiB of output (plus one
decoder step of about 32 KiB) and the wire bytes read so far, never its inflated size. The wire
is capped at the same 1 MiB. Reading stops at the cap plus one byte; the first 1 MiB is
returned with ``truncated`` set and the connection is dropped rather than drained. An over-cap
reply, on the wire or after decoding, is treated alike: the reply parser refuses a truncated
body, so nothing is posted and the attempt is recorded as ``bad_reply`` ("the reply is larger
than 1 MiB"); a 2xx stays a 2xx (the receiver did get the request, and resending it would repeat
its side effects). A body the client cannot decode (an unknown or stacked ``Content-Encoding``,
corrupt or cut-off compressed data) is not a transport failure either: a 2xx is recorded as
``bad_reply`` with the reason and posts nothing.

Stored response headers
-----------------------
Response headers go into the delivery log's attempt rows, so what a receiver can make the server
store is bounded like the body: at most ``MAX_LOGGED_HEADERS`` (50) names, each value cut to
``MAX_LOGGED_HEADER_VALUE`` (1,024) characters, and ``MAX_LOGGED_HEADER_BYTES`` (8 KiB) of names and
values in all; the rest is dropped and a ``x-tidings-headers-omitted`` entry says how many. Values
are stored as valid text: ``tidings.domain.storable.storable_header_text`` turns undecodable bytes
and control characters into U+FFFD here, once, and the outbox stores them as they are.
``Retry-After`` and ``Location`` are read from the full headers before capping.

Imports only ``tidings.webhooks.addresses``, ``tidings.webhooks.connection``, ``tidings.domain``,
``tidings.clock`` and the package version; never store, services, api or web.
"""

import asyncio
import base64
import functools
import logging
import re
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address
from types import TracebackType
from typing import Any, Self

import psutil
from yarl import URL

from tidings import __version__
from tidings.clock import Clock, SystemClock
from tidings.domain.deliveries import ErrorKind
from tidings.domain.storable import storable_header_text
from tidings.domain.values import value_object
from tidings.webhooks.addresses import AllowList, IPAddress, parse_allowlist, parse_ip
from tidings.webhooks.connection import Connection, Response, ResponseFailed, ResponseTimedOut

logger = logging.getLogger(__name__)

USER_AGENT = f"Tidings/{__version__}"
MAX_RESPONSE_BYTES = 1_048_576
ACCEPT_ENCODING = "gzip, deflate, br"
MAX_LOGGED_HEADERS = 50
MAX_LOGGED_HEADER_VALUE = 1024
MAX_LOGGED_HEADER_BYTES = 8192
OMITTED_HEADERS = "x-tidings-headers-omitted"
_MAX_MESSAGE_LOCATION = 512
CONNECT_TIMEOUT_SECONDS = 3.0
KEEPALIVE_SECONDS = 15.0
FORBIDDEN_MESSAGE = (
    "address forbidden, you may need to set AllowedUntrustedInternalConnections to allow an "
    "integration access to your internal network"
)

Origin = tuple[str, str, int]  # scheme, host, port

# A host made only of digits, dots and hex parts is an IPv4 address in some legacy form
# ("127.1", "0x7f.1", "2130706433") unless it is the canonical dotted quad.
_NUMERIC_HOST = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]*))*", re.IGNORECASE)


@value_object
class HttpOutcome:
    """What one POST came to: the response as far as it was read, or why there was none.

    ``status_code`` is 0 when no response arrived. ``error_kind`` is ``ErrorKind.NONE`` for a 2xx;
    ``error_message`` is written for the delivery log and never contains the request body.
    """

    status_code: int
    headers: dict[str, str]
    body: bytes
    truncated: bool
    duration_ms: int
    error_kind: ErrorKind
    error_message: str
    retry_after: str | None


def own_ip_addresses(
    list_interfaces: Callable[[], Mapping[str, list[Any]]] = psutil.net_if_addrs,
) -> frozenset[IPAddress] | None:
    """This server's interface addresses, or None if they cannot be listed (callers fail closed).

    Read per check rather than cached: interfaces come and go, and a listing costs about 0.1 ms,
    paid only when a new connection is opened to an address that is not already refused.
    """
    try:
        interfaces = list_interfaces()
    except (OSError, RuntimeError) as exc:
        logger.warning("cannot list network interfaces, refusing by default: %s", exc)
        return None
    found: set[IPAddress] = set()
    for addresses in interfaces.values():
        for address in addresses:
            if address.family in (socket.AF_INET, socket.AF_INET6):
                ip = parse_ip(str(address.address))
                if ip is not None:
                    found.add(ip)
    return frozenset(found)


class _Refused(Exception):
    """Every address of the host was refused by the guard (``reasons``) or failed to connect."""

    def __init__(self, reasons: list[str], errors: list[BaseException]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons
        self.errors = errors


@dataclass(slots=True, frozen=True)
class _Target:
    """A parsed callback URL: where to connect and the request's first lines."""

    url: URL
    origin: Origin
    head: bytes  # request line, Host and the client's fixed headers
    authorization: str | None


class WebhookClient:
    """The configured HTTP client for callbacks; inject one per process and share it.

    Use as ``async with WebhookClient(settings_value) as client:`` or call ``start``/``close``.
    """

    def __init__(
        self,
        allowlist: str = "",
        *,
        clock: Clock | None = None,
        own_addresses: Callable[[], frozenset[IPAddress] | None] = own_ip_addresses,
        connection_limit: int = 256,
        connect_timeout_seconds: float = CONNECT_TIMEOUT_SECONDS,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self._allowlist = parse_allowlist(allowlist)
        self._generation = 0
        self._clock = clock or SystemClock()
        self._own_addresses = own_addresses
        self._connection_limit = connection_limit
        self._connect_timeout_seconds = connect_timeout_seconds
        self._max_response_bytes = max_response_bytes
        self._idle: dict[Origin, list[Connection]] = {}
        self._busy: set[Connection] = set()
        self._slots: asyncio.Semaphore | None = None
        self._tls: ssl.SSLContext | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._started = False
        self._closed = False

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def allowlist(self) -> AllowList:
        """The allow-list the next request is checked against."""
        return self._allowlist

    async def start(self) -> None:
        """Get ready to send; must run inside the event loop that will use the client."""
        if self._closed:
            raise RuntimeError("WebhookClient is closed")
        if not self._started:
            self._started = True
            self._slots = asyncio.Semaphore(self._connection_limit)
            self._schedule_sweep()

    async def close(self) -> None:
        """Close every connection, including those still carrying a request."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()
        for connection in list(self._busy):
            connection.close()
        self._busy.clear()
        await asyncio.sleep(0)  # let the transports finish closing

    def set_allowlist(self, value: str) -> None:
        """Apply a new ``AllowedUntrustedInternalConnections`` value from the next request on."""
        allowlist = parse_allowlist(value)
        if allowlist != self._allowlist:
            logger.info("webhook allow-list changed to %d entries", len(allowlist.entries))
            self._allowlist = allowlist
            self._generation += 1
            for connections in self._idle.values():
                for connection in connections:
                    connection.close()
            self._idle.clear()

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout_seconds: float
    ) -> HttpOutcome:
        """POST ``body`` to ``url`` and report what happened; never raises for network trouble.

        ``timeout_seconds`` bounds the whole call (connect, send, headers and body); connecting
        alone is also bounded by the connect timeout.
        """
        if self._closed or self._slots is None:
            raise RuntimeError("WebhookClient is not running; call start() first")
        started = self._clock.monotonic()
        target, problem = _parse_target(url)
        if target is None:
            return self._failure(started, ErrorKind.INVALID_URL, problem)
        request = _request(target, body, headers)
        if isinstance(request, str):
            return self._failure(started, ErrorKind.INVALID_URL, request)
        async with self._slots:
            outcome = await self._send(target, request, timeout_seconds)
        outcome = _with_duration(outcome, self._elapsed_ms(started))
        _log_outcome(target.url, outcome)
        return outcome

    async def _send(self, target: _Target, request: bytes, timeout_seconds: float) -> HttpOutcome:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_seconds
        connection = self._reuse(target.origin)
        if connection is None:
            connect_limit = min(self._connect_timeout_seconds, timeout_seconds)
            try:
                async with asyncio.timeout(connect_limit):
                    connection = await self._connect(target)
            except TimeoutError:
                if connect_limit < timeout_seconds:
                    return _outcome(
                        0,
                        ErrorKind.TIMEOUT,
                        f"timed out connecting (connect limit {self._connect_timeout_seconds:g} "
                        f"s, request limit {timeout_seconds:g} s)",
                    )
                return _outcome(0, ErrorKind.TIMEOUT, _no_response(timeout_seconds))
            except _Refused as refused:
                if refused.reasons and not refused.errors:
                    reasons = "; ".join(dict.fromkeys(refused.reasons))
                    return _outcome(
                        0, ErrorKind.FORBIDDEN_ADDRESS, f"{FORBIDDEN_MESSAGE}: {reasons}"
                    )
                return _outcome(0, ErrorKind.CONNECT, f"cannot connect: {_errors(refused.errors)}")
        self._busy.add(connection)
        expiry = loop.call_at(deadline, connection.expire)
        try:
            response = await connection.exchange(request)
        except ResponseTimedOut:
            return _outcome(0, ErrorKind.TIMEOUT, _no_response(timeout_seconds))
        except ResponseFailed as failed:
            if failed.answered:
                return _outcome(0, ErrorKind.PROTOCOL, failed.message)
            return _outcome(0, ErrorKind.CONNECT, f"connection lost: {failed.message}")
        finally:
            expiry.cancel()
            self._busy.discard(connection)
            self._keep(target.origin, connection)
        return _response_outcome(response)

    def _reuse(self, origin: Origin) -> Connection | None:
        """An idle connection to ``origin`` checked under the current allow-list, if any."""
        connections = self._idle.get(origin)
        while connections:
            connection = connections.pop()
            if not connection.closed and connection.generation == self._generation:
                return connection
            connection.close()
        return None

    def _keep(self, origin: Origin, connection: Connection) -> None:
        if (
            connection.reusable
            and not connection.closed
            and not self._closed
            and connection.generation == self._generation
        ):
            connection.idle_since = self._clock.monotonic()
            self._idle.setdefault(origin, []).append(connection)
        else:
            connection.close()

    async def _connect(self, target: _Target) -> Connection:
        """A new connection to the target's host, through the SSRF guard (see the module
        docstring): each resolved address is judged, and the socket connects to exactly the
        address that was admitted."""
        loop = asyncio.get_running_loop()
        scheme, host, port = target.origin
        reasons: list[str] = []
        errors: list[BaseException] = []
        generation, allowlist = self._generation, self._allowlist
        exempt = allowlist.host_allowed(host)
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise _Refused([], [exc]) from exc
        for family, type_, proto, _, sockaddr in infos:
            if not exempt:
                reason = self._refusal(allowlist, sockaddr)
                if reason:
                    reasons.append(reason)
                    continue
            sock = socket.socket(family=family, type=type_, proto=proto)
            try:
                sock.setblocking(False)
                await loop.sock_connect(sock, sockaddr)
                tls = self._tls_context() if scheme == "https" else None
                _, connection = await loop.create_connection(
                    lambda: Connection(self._max_response_bytes),
                    sock=sock,
                    ssl=tls,
                    server_hostname=host if tls is not None else None,
                )
            except (OSError, ssl.SSLError) as exc:
                sock.close()
                errors.append(exc)
                continue
            except BaseException:
                sock.close()
                raise
            connection.generation = generation
            return connection
        raise _Refused(reasons, errors)

    def _tls_context(self) -> ssl.SSLContext:
        """The system's trust store, loaded at the first https callback (loading it costs
        tens of milliseconds of the event loop)."""
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    def _refusal(self, allowlist: AllowList, sockaddr: tuple[Any, ...]) -> str:
        """Why the guard refuses this resolved address, or ""."""
        ip = parse_ip(str(sockaddr[0]))
        if ip is None:
            return f"{sockaddr[0]!s} is not an IP address"
        verdict = allowlist.ip_allowed(ip, self._own_addresses())
        return "" if verdict.allowed else verdict.reason

    def _schedule_sweep(self) -> None:
        loop = asyncio.get_running_loop()
        self._sweeper = loop.call_later(KEEPALIVE_SECONDS / 3, self._sweep)

    def _sweep(self) -> None:
        """Close connections idle for longer than ``KEEPALIVE_SECONDS``."""
        oldest = self._clock.monotonic() - KEEPALIVE_SECONDS
        for origin, connections in list(self._idle.items()):
            kept = [c for c in connections if not c.closed and c.idle_since >= oldest]
            for connection in connections:
                if connection not in kept:
                    connection.close()
            if kept:
                self._idle[origin] = kept
            else:
                del self._idle[origin]
        if not self._closed:
            self._schedule_sweep()

    def _failure(self, started: float, kind: ErrorKind, message: str) -> HttpOutcome:
        return _with_duration(_outcome(0, kind, message), self._elapsed_ms(started))

    def _elapsed_ms(self, started: float) -> int:
        return int((self._clock.monotonic() - started) * 1000)


@functools.lru_cache(maxsize=4096)
def _parse_target(url: str) -> tuple[_Target | None, str]:
    """The URL to request, or None and the reason it cannot be requested.

    Remembered per URL string (both results are immutable): a hook sends to the same few URLs
    over and over, and parsing is a visible share of a request's CPU.
    """
    try:
        parsed = URL(url)
        port = parsed.port
        host = parsed.raw_host
        authority = parsed.host_port_subcomponent
        path = parsed.raw_path_qs or "/"
    except (ValueError, TypeError, UnicodeError) as exc:
        return None, f"invalid URL: {exc}"
    if parsed.scheme not in ("http", "https"):
        return None, "invalid URL: the scheme must be http or https"
    if not host or port is None or not authority:
        return None, "invalid URL: no host"
    if _NUMERIC_HOST.fullmatch(host):
        try:
            IPv4Address(host)
        except ValueError:
            return None, f"invalid URL: {host} is not a canonical IPv4 address"
    if any(ch in url for ch in "\r\n\x00"):
        return None, "invalid URL: control characters"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: {USER_AGENT}\r\n"
        f"Accept-Encoding: {ACCEPT_ENCODING}\r\n"
    ).encode()
    authorization = None
    if parsed.raw_user is not None:
        credentials = f"{parsed.user or ''}:{parsed.password or ''}".encode()
        authorization = "Basic " + base64.b64encode(credentials).decode("ascii")
    return _Target(parsed, (parsed.scheme, host, port), head, authorization), ""


def _request(target: _Target, body: bytes, headers: Mapping[str, str]) -> bytes | str:
    """The request's bytes, or why a header cannot be sent (a CR, LF or NUL in it)."""
    lines = [target.head]
    if target.authorization is not None and not any(
        name.lower() == "authorization" for name in headers
    ):
        lines.append(f"Authorization: {target.authorization}\r\n".encode())
    for name, value in headers.items():
        if _unsafe(name) or _unsafe(value):
            return f"header {name[:64]!r} has a control character"
        lines.append(f"{name}: {value}\r\n".encode())
    lines.append(b"Content-Length: %d\r\n\r\n" % len(body))
    lines.append(body)
    return b"".join(lines)


def _unsafe(text: str) -> bool:
    return "\r" in text or "\n" in text or "\x00" in text


def _response_outcome(response: Response) -> HttpOutcome:
    status = response.status
    retry_after = location = None
    for name, value in response.headers:
        low = name.lower()
        if low == b"retry-after" and retry_after is None:
            retry_after = value.decode("utf-8", "surrogateescape")
        elif low == b"location" and location is None:
            location = value.decode("utf-8", "surrogateescape")
    kind, message = _status_kind(status), _status_message(status, location)
    if response.unreadable and kind is ErrorKind.NONE:
        kind, message = ErrorKind.BAD_REPLY, f"reply not posted: {response.unreadable}"
    return HttpOutcome(
        status_code=status,
        headers=_flatten_headers(response.headers),
        body=response.body,
        truncated=response.truncated,
        duration_ms=0,
        error_kind=kind,
        error_message=message,
        retry_after=retry_after,
    )


def _no_response(timeout_seconds: float) -> str:
    return (
        f"no complete response within {timeout_seconds:g} s; raise "
        "OutgoingIntegrationRequestsTimeout or the hook's timeout if the receiver needs longer"
    )


def _errors(errors: list[BaseException]) -> str:
    return "; ".join(dict.fromkeys(_describe(e) for e in errors)) or "no address"


def _with_duration(outcome: HttpOutcome, duration_ms: int) -> HttpOutcome:
    """``outcome`` with its duration set (built directly: ``dataclasses.replace`` is slow)."""
    return HttpOutcome(
        outcome.status_code,
        outcome.headers,
        outcome.body,
        outcome.truncated,
        duration_ms,
        outcome.error_kind,
        outcome.error_message,
        outcome.retry_after,
    )


def _outcome(status: int, kind: ErrorKind, message: str) -> HttpOutcome:
    return HttpOutcome(
        status_code=status,
        headers={},
        body=b"",
        truncated=False,
        duration_ms=0,
        error_kind=kind,
        error_message=message,
        retry_after=None,
    )


def _flatten_headers(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The response headers as the delivery log keeps them: one value per name, bounded.

    Repeated headers are joined with commas, as HTTP allows. At most ``MAX_LOGGED_HEADERS``
    names and ``MAX_LOGGED_HEADER_BYTES`` of names and values are kept, each value cut to
    ``MAX_LOGGED_HEADER_VALUE`` characters; what is dropped is counted under
    ``OMITTED_HEADERS``. Work is linear in the headers already parsed (the connection bounds
    those: 128 lines, 64 KiB). Bytes that are not UTF-8 are kept as surrogates here and turned
    into U+FFFD by ``storable_header_text``.
    """
    flat: dict[str, str] = {}
    used = 0
    omitted = 0
    for raw_name, raw_value in headers:
        name = storable_header_text(raw_name.decode("utf-8", "surrogateescape"))
        name = name[:MAX_LOGGED_HEADER_VALUE]
        value = storable_header_text(raw_value.decode("utf-8", "surrogateescape"))
        if name in flat:
            room = MAX_LOGGED_HEADER_VALUE - len(flat[name])
            if room <= 2:
                omitted += 1
                continue
            value = f"{flat[name]}, {value}"[:MAX_LOGGED_HEADER_VALUE]
            used -= len(flat[name])
        elif len(flat) >= MAX_LOGGED_HEADERS:
            omitted += 1
            continue
        else:
            value = value[:MAX_LOGGED_HEADER_VALUE]
            used += len(name)
        if used + len(value) > MAX_LOGGED_HEADER_BYTES:
            value = value[: max(0, MAX_LOGGED_HEADER_BYTES - used)]
            if not value and name not in flat:
                used -= len(name)
                omitted += 1
                continue
        flat[name] = value
        used += len(value)
    if omitted:
        flat[OMITTED_HEADERS] = str(omitted)
    return flat


def _status_kind(status: int) -> ErrorKind:
    if 200 <= status < 300:
        return ErrorKind.NONE
    if 300 <= status < 400:
        return ErrorKind.REDIRECT
    return ErrorKind.HTTP_STATUS


def _status_message(status: int, location: str | None) -> str:
    if 200 <= status < 300:
        return ""
    if 300 <= status < 400:
        shown = storable_header_text(location or "")[:_MAX_MESSAGE_LOCATION]
        target = f"to {shown}" if shown else "without a Location header"
        return f"redirect not followed: HTTP {status} {target}"
    return f"HTTP {status}"


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _log_outcome(target: URL, outcome: HttpOutcome) -> None:
    # Only the origin is logged: paths and queries of callback URLs may carry tokens.
    if outcome.error_kind is ErrorKind.FORBIDDEN_ADDRESS:
        origin = f"{target.scheme}://{target.host_port_subcomponent}"
        logger.info("webhook to %s refused by the address guard", origin)
    elif logger.isEnabledFor(logging.DEBUG):
        origin = f"{target.scheme}://{target.host_port_subcomponent}"
        logger.debug(
            "webhook to %s: status %d, %s, %d ms",
            origin,
            outcome.status_code,
            outcome.error_kind or "ok",
            outcome.duration_ms,
        )
