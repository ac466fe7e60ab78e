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

from enum import StrEnum

from tidings.domain.values import value_object


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
