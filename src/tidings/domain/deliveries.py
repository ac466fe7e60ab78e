"""Deliveries and attempts: the delivery log as data.

A delivery is one (post, hook, callback URL). Its status moves only along these edges, and
``tidings.store.deliveries`` is the only writer:

    pending ──claim──▶ in_flight ──2xx──────────────▶ succeeded
       ▲                  │ ├──retryable, budget left──▶ pending (next_attempt_at in the future)
       │                  │ └──permanent / budget spent─▶ failed
       └──lease expired───┘            (a worker died mid-attempt: the same delivery id is retried,
                                        and the cut-off try is logged as an ``interrupted`` attempt)
    succeeded | failed ──redeliver──▶ pending (a new attempt chain, same delivery id)

Pure; no I/O.
"""

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from tidings.domain.values import value_object

_SPAN = re.compile(r"(\d{1,9})([smhdw])", re.ASCII)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SPAN_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class ErrorKind(StrEnum):
    """Why an attempt failed, as a value the log and the retry policy can read."""

    NONE = ""
    CONNECT = "connect"
    TIMEOUT = "timeout"
    FORBIDDEN_ADDRESS = "forbidden_address"
    INVALID_URL = "invalid_url"
    HTTP_STATUS = "http_status"
    REDIRECT = "redirect"
    TOO_LARGE = "response_too_large"
    BAD_REPLY = "bad_reply"
    REPLY_REJECTED = "reply_rejected"
    PROTOCOL = "protocol"
    INTERRUPTED = "interrupted"
    UNSTORABLE = "unstorable"
    NOT_SENT = "not_sent"
    """No request was made: the hook was deleted, disabled or stopped (a private channel's hook
    whose creator left it), or its owner deactivated. Says
    nothing about the receiver, so it neither counts towards auto-disable nor brings a notice."""


@value_object
class Delivery:
    id: str
    hook_id: str
    post_id: str
    channel_id: str
    url: str
    status: DeliveryStatus
    content_type: str
    body: bytes
    trigger_word: str
    create_at: int
    update_at: int
    next_attempt_at: int
    attempt_count: int
    lease_expires_at: int = 0
    reply_posted: bool = False
    last_status_code: int = 0
    last_error_kind: str = ""
    last_error: str = ""
    root_id: str = ""
    # How often its response_url has posted a deferred reply (hooks with extended_payload).
    response_uses: int = 0
    # The triggering post's ``webhook_depth``: its reply posts are one deeper (a chain's length,
    # which ``OutgoingWebhookMaxChainDepth`` bounds).
    post_depth: int = 0


@value_object
class Attempt:
    id: str
    delivery_id: str
    number: int
    started_at: int
    duration_ms: int
    status_code: int
    error_kind: str
    error_message: str
    request_headers: dict[str, str]
    response_headers: dict[str, str]
    response_excerpt: str


def since_ms(text: str, now_ms: int) -> int:
    """A bulk redeliver's starting point as people write it, in Unix ms: ``1764662400000``
    (Unix ms), ``2026-12-02T09:00:00Z`` (ISO 8601 with its offset) or a span back from
    ``now_ms`` (``30m``, ``2h``, ``1d``, ``1w``, ``1h30m``). ``ValueError`` says what is wrong.

    An ISO time without an offset is refused rather than guessed: the server's zone and the
    writer's may differ by hours, and so would the deliveries sent again.
    """
    text = text.strip()
    if text.isascii() and text.isdigit():
        return int(text)
    spans = _SPAN.findall(text)
    if spans and "".join(n + unit for n, unit in spans) == text:
        back = sum(int(n) * _SPAN_MS[unit] for n, unit in spans)
        return max(0, now_ms - back)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text[:40]!r} is neither Unix ms, an ISO 8601 time nor a span like 30m, 2h, 1d"
        ) from None
    if moment.tzinfo is None:
        raise ValueError(f"{text[:40]!r} has no time zone: add Z or an offset like +01:00")
    return max(0, (moment - _EPOCH) // timedelta(milliseconds=1))


RESPONSE_URL_KIND = "response_url"
"""The ``error_kind`` of an attempt row that records a use of a delivery's ``response_url`` (a
deferred reply posted, or refused for its body): not a request Tidings made, so its ``number``
is the use's (1–5), its ``status_code`` what Tidings answered, and its ``response_excerpt``
the body the receiver posted."""


@value_object
class ResponseTarget:
    """What a deferred reply through a delivery's ``response_url`` needs of that delivery."""

    delivery_id: str
    hook_id: str
    post_id: str
    root_id: str
    channel_id: str
    create_at: int
    post_depth: int
    response_uses: int
