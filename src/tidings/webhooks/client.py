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
*resolved* address the socket is about to connect to, through aiohttp's public
``TCPConnector(socket_factory=...)`` hook. aiohttp calls it for every connection attempt with the
address-info tuple of one resolved IP, for IP-literal hosts too (``_resolve_host`` turns a literal
into a one-entry result that goes through the same ``aiohappyeyeballs.start_connection`` path;
checked against aiohttp 3.14's ``connector.py``). Raising an ``OSError`` there refuses the address,
and aiohttp moves on to the host's next IP, as Mattermost's dialer does.

The factory only sees an IP, but REF §3.5's first rule exempts a URL whose *host string* is an
allow-list entry. ``post`` therefore decides the exemption per request and hands it to the factory
through a context variable holding a small per-request record (``_ConnectAudit``). aiohttp opens
the connection in the calling task (happy-eyeballs races run in tasks that copy the context), so
the factory always reads the record of the request it is connecting for. The record also collects
the refusals, because aiohttp wraps and sometimes merges the factory's exceptions; the record, not
the exception type, is how ``post`` tells "forbidden" from "could not connect".

Pools and allow-list changes
----------------------------
Keep-alive connections skip the factory when reused, so a connection opened while an address was
allowed must not outlive the allow-list that allowed it. Each allow-list therefore gets its own
``aiohttp.ClientSession`` (and connector pool). ``set_allowlist`` takes effect on the next
``post``: that call opens a fresh session for the new list and retires the old one, which is closed
as soon as its in-flight requests finish (they were allowed when they started; they are not cut
off). Setting an unchanged value keeps the pool. A connection in a pool was always checked
against that pool's own list, so reuse inside a pool is safe.

Body size and compression
-------------------------
The client asks for ``Accept-Encoding: gzip, deflate, br`` and decodes the body itself
(``auto_decompress=False``), a piece at a time, through the decoders of
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

Imports only ``tidings.webhooks.addresses``, ``tidings.webhooks.decoding``, ``tidings.domain``,
``tidings.clock`` and the package version; never store, services, api or web.
"""

import functools
import logging
import socket
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from errno import EACCES
from types import TracebackType
from typing import Any, Self

import aiohttp
import psutil
from yarl import URL

from tidings import __version__
from tidings.clock import Clock, SystemClock
from tidings.domain.deliveries import ErrorKind
from tidings.domain.storable import storable_header_text
from tidings.domain.values import value_object
from tidings.webhooks.addresses import AllowList, IPAddress, parse_allowlist, parse_ip
from tidings.webhooks.decoding import DECODERS, Decoder, Identity, UndecodableBody, content_coding

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
FORBIDDEN_MESSAGE = (
    "address forbidden, you may need to set AllowedUntrustedInternalConnections to allow an "
    "integration access to your internal network"
)

# aiohappyeyeballs' AddrInfoType, spelled out here: (family, type, proto, canonname, sockaddr).
AddrInfo = tuple[int, int, int, str, tuple[Any, ...]]


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


class AddressForbiddenError(OSError):
    """Raised by the socket factory to refuse an address; aiohttp then tries the host's next IP."""


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


@dataclass(slots=True)
class _ConnectAudit:
    """One request's guard decision and the addresses the socket factory refused for it."""

    allowlist: AllowList
    host_exempt: bool
    refusals: list[str] = field(default_factory=list)
    admitted: int = 0


_AUDIT: ContextVar[_ConnectAudit | None] = ContextVar("tidings_webhook_audit", default=None)


@dataclass(slots=True, eq=False)  # identity semantics: pools are kept in a set
class _Pool:
    """A session whose connections were all opened under one allow-list."""

    allowlist: AllowList
    session: aiohttp.ClientSession
    in_flight: int = 0
    retired: bool = False


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
        self._clock = clock or SystemClock()
        self._own_addresses = own_addresses
        self._connection_limit = connection_limit
        self._connect_timeout_seconds = connect_timeout_seconds
        self._max_response_bytes = max_response_bytes
        self._pool: _Pool | None = None
        self._retired: set[_Pool] = set()
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
        """Open the connection pool; must run inside the event loop that will use the client."""
        if self._closed:
            raise RuntimeError("WebhookClient is closed")
        if not self._started:
            self._started = True
            self._pool = self._open_pool(self._allowlist)

    async def close(self) -> None:
        """Close every pool, including retired ones still finishing requests."""
        self._closed = True
        pools = list(self._retired)
        if self._pool is not None:
            pools.append(self._pool)
        self._pool = None
        self._retired.clear()
        for pool in pools:
            await pool.session.close()

    def set_allowlist(self, value: str) -> None:
        """Apply a new ``AllowedUntrustedInternalConnections`` value from the next request on."""
        allowlist = parse_allowlist(value)
        if allowlist != self._allowlist:
            logger.info("webhook allow-list changed to %d entries", len(allowlist.entries))
            self._allowlist = allowlist

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout_seconds: float
    ) -> HttpOutcome:
        """POST ``body`` to ``url`` and report what happened; never raises for network trouble.

        ``timeout_seconds`` bounds the whole call (connect, send, headers and body); connecting
        alone is also bounded by the connect timeout.
        """
        started = self._clock.monotonic()
        target, problem = _parse_target(url)
        if target is None:
            return self._failure(started, ErrorKind.INVALID_URL, problem)
        pool = await self._acquire_pool()
        audit = _ConnectAudit(
            allowlist=pool.allowlist,
            host_exempt=pool.allowlist.host_allowed(target.raw_host or ""),
        )
        limits = _timeout(timeout_seconds, self._connect_timeout_seconds)
        token = _AUDIT.set(audit)
        try:
            outcome = await self._send(
                pool.session, target, body=body, headers=headers, limits=limits, audit=audit
            )
        finally:
            _AUDIT.reset(token)
            await self._release_pool(pool)
        outcome = _with_duration(outcome, self._elapsed_ms(started))
        _log_outcome(target, outcome)
        return outcome

    async def _send(
        self,
        session: aiohttp.ClientSession,
        target: URL,
        *,
        body: bytes,
        headers: Mapping[str, str],
        limits: aiohttp.ClientTimeout,
        audit: _ConnectAudit,
    ) -> HttpOutcome:
        status = 0
        try:
            async with session.post(
                target, data=body, headers=dict(headers), timeout=limits, allow_redirects=False
            ) as response:
                status = response.status
                response_headers = _flatten_headers(response)
                retry_after = response.headers.get("Retry-After")
                location = response.headers.get("Location")
                payload, truncated, unreadable = await self._read_capped(response)
                if truncated or unreadable:
                    # Unread data is still on the wire; dropping the connection beats draining it.
                    response.close()
        except aiohttp.ConnectionTimeoutError:
            return _outcome(
                status,
                ErrorKind.TIMEOUT,
                f"timed out connecting (connect limit {self._connect_timeout_seconds:g} s, "
                f"request limit {limits.total:g} s)",
            )
        except TimeoutError:
            return _outcome(
                status,
                ErrorKind.TIMEOUT,
                f"no complete response within {limits.total:g} s; raise "
                "OutgoingIntegrationRequestsTimeout or the hook's timeout if the receiver "
                "needs longer",
            )
        except aiohttp.ClientConnectorError as exc:
            if audit.refusals and not audit.admitted:
                reasons = "; ".join(dict.fromkeys(audit.refusals))
                return _outcome(
                    status, ErrorKind.FORBIDDEN_ADDRESS, f"{FORBIDDEN_MESSAGE}: {reasons}"
                )
            return _outcome(status, ErrorKind.CONNECT, f"cannot connect: {exc}")
        except aiohttp.InvalidURL as exc:
            return _outcome(status, ErrorKind.INVALID_URL, f"invalid URL: {exc}")
        except (aiohttp.ClientConnectionError, OSError) as exc:
            # Resets and disconnects, before or during the response.
            return _outcome(status, ErrorKind.CONNECT, f"connection lost: {_describe(exc)}")
        except aiohttp.ClientResponseError as exc:
            # The receiver answered, but not in valid HTTP (bad status line, oversized headers).
            # exc.message, not str(exc): the latter repeats the URL, whose query may hold secrets.
            return _outcome(status, ErrorKind.PROTOCOL, f"invalid HTTP response: {exc.message}")
        except aiohttp.ClientError as exc:
            # Broken chunking, a body shorter than Content-Length, bad compression, …
            return _outcome(status, ErrorKind.PROTOCOL, f"invalid HTTP response: {_describe(exc)}")
        kind, message = _status_kind(status), _status_message(status, location)
        if unreadable and kind is ErrorKind.NONE:
            kind, message = ErrorKind.BAD_REPLY, f"reply not posted: {unreadable}"
        return HttpOutcome(
            status_code=status,
            headers=response_headers,
            body=payload,
            truncated=truncated,
            duration_ms=0,
            error_kind=kind,
            error_message=message,
            retry_after=retry_after,
        )

    async def _read_capped(self, response: aiohttp.ClientResponse) -> tuple[bytes, bool, str]:
        """The body as decoded bytes, whether it went past the cap, and why it is unreadable.

        At most the cap plus one byte is read from the wire and at most the cap plus one byte is
        decoded, so neither an endless body nor a compression bomb costs more than the cap.
        """
        limit = self._max_response_bytes
        coding = content_coding(response.headers.getall("Content-Encoding", ()))
        if coding is None:
            declared = response.content_length
            if declared is not None and declared <= limit:
                # The parser stops at the declared length, so one read is bounded (and the common
                # case: a small JSON reply) costs one await instead of a loop to end-of-stream.
                return await response.read(), False, ""
            decoder: Decoder = Identity()
        elif coding not in DECODERS:
            shown = ", ".join(response.headers.getall("Content-Encoding", ()))[:100]
            return b"", False, f"unsupported Content-Encoding {shown!r}"
        else:
            decoder = DECODERS[coding]()
        chunks: list[bytes] = []
        size = wire = 0
        try:
            while size <= limit and wire <= limit:
                chunk = await response.content.read(limit + 1 - wire)
                if not chunk:
                    break
                wire += len(chunk)
                piece = decoder.decode(chunk, limit + 1 - size)
                chunks.append(piece)
                size += len(piece)
            else:
                return b"".join(chunks)[:limit], True, ""
            problem = decoder.finish() if wire else ""  # an empty body is empty in any coding
        except UndecodableBody as exc:
            return b"", False, f"the {coding} body cannot be decoded: {exc}"
        if problem:
            return b"", False, f"the {coding} body {problem}"
        return b"".join(chunks), False, ""

    async def _acquire_pool(self) -> _Pool:
        if self._closed or not self._started:
            raise RuntimeError("WebhookClient is not running; call start() first")
        pool = self._pool
        if pool is None or pool.allowlist is not self._allowlist:
            # Swap before any await so concurrent callers all land on the new pool.
            self._pool = self._open_pool(self._allowlist)
            if pool is not None:
                pool.retired = True
                self._retired.add(pool)
                if pool.in_flight == 0:
                    await self._close_retired(pool)
            pool = self._pool
        pool.in_flight += 1
        return pool

    async def _release_pool(self, pool: _Pool) -> None:
        pool.in_flight -= 1
        if pool.retired and pool.in_flight == 0:
            await self._close_retired(pool)

    async def _close_retired(self, pool: _Pool) -> None:
        self._retired.discard(pool)
        await pool.session.close()

    def _open_pool(self, allowlist: AllowList) -> _Pool:
        connector = aiohttp.TCPConnector(
            limit=self._connection_limit,
            limit_per_host=0,  # the worker's per-destination cap decides, not the pool
            keepalive_timeout=15.0,
            socket_factory=self._open_socket,
        )
        session = aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING},
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            auto_decompress=False,  # decoded by _read_capped, bounded by the cap
            raise_for_status=False,
        )
        return _Pool(allowlist=allowlist, session=session)

    def _open_socket(self, addr_info: AddrInfo) -> socket.socket:
        """The SSRF guard: admit or refuse the resolved address a connection is about to use."""
        family, type_, proto, _, sockaddr = addr_info
        audit = _AUDIT.get()
        if audit is None:
            # Only post() opens connections; anything else is refused rather than trusted.
            raise AddressForbiddenError(EACCES, "connection outside a webhook request")
        if not audit.host_exempt:
            ip = parse_ip(str(sockaddr[0]))
            if ip is None:
                audit.refusals.append(f"{sockaddr[0]!s} is not an IP address")
                raise AddressForbiddenError(EACCES, audit.refusals[-1])
            verdict = audit.allowlist.ip_allowed(ip, self._own_addresses())
            if not verdict.allowed:
                audit.refusals.append(verdict.reason)
                raise AddressForbiddenError(EACCES, verdict.reason)
        audit.admitted += 1
        return socket.socket(family=family, type=type_, proto=proto)

    def _failure(self, started: float, kind: ErrorKind, message: str) -> HttpOutcome:
        return _with_duration(_outcome(0, kind, message), self._elapsed_ms(started))

    def _elapsed_ms(self, started: float) -> int:
        return int((self._clock.monotonic() - started) * 1000)


@functools.lru_cache(maxsize=64)
def _timeout(total_seconds: float, connect_seconds: float) -> aiohttp.ClientTimeout:
    """The request's time limits; immutable, and the same few for every request, so shared."""
    return aiohttp.ClientTimeout(total=total_seconds, sock_connect=connect_seconds)


@functools.lru_cache(maxsize=4096)
def _parse_target(url: str) -> tuple[URL | None, str]:
    """The URL to request, or None and the reason it cannot be requested.

    Remembered per URL string (both results are immutable): a hook sends to the same few URLs
    over and over, and parsing is a visible share of a request's CPU.
    """
    try:
        target = URL(url)
        port = target.port
    except (ValueError, TypeError) as exc:
        return None, f"invalid URL: {exc}"
    if target.scheme not in ("http", "https"):
        return None, "invalid URL: the scheme must be http or https"
    if not target.host or port is None:
        return None, "invalid URL: no host"
    return target, ""


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


def _flatten_headers(response: aiohttp.ClientResponse) -> dict[str, str]:
    """The response headers as the delivery log keeps them: one value per name, bounded.

    Repeated headers are joined with commas, as HTTP allows. At most ``MAX_LOGGED_HEADERS``
    names and ``MAX_LOGGED_HEADER_BYTES`` of names and values are kept, each value cut to
    ``MAX_LOGGED_HEADER_VALUE`` characters; what is dropped is counted under
    ``OMITTED_HEADERS``. Work is linear in the headers aiohttp already parsed (its own limits
    bound those: 8 KiB per line, 128 headers, so up to about 1 MiB before this cut).
    """
    flat: dict[str, str] = {}
    used = 0
    omitted = 0
    for raw_name, raw_value in response.headers.items():
        name = storable_header_text(raw_name)[:MAX_LOGGED_HEADER_VALUE]
        value = storable_header_text(raw_value)
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
