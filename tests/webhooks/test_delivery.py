"""One delivery's attempt without a database: send → classify → reply → outcome, with a fake
poster and fake storage (and once against a real receiver on 127.0.0.1)."""

import dataclasses
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from tidings.clock import FakeClock
from tidings.domain import server_config
from tidings.domain.deliveries import Delivery, DeliveryStatus, ErrorKind
from tidings.domain.hooks import OutgoingHook
from tidings.domain.users import User
from tidings.webhooks.client import HttpOutcome, WebhookClient
from tidings.webhooks.delivery import GIVE_BACK_DELAY_MS, Batch, Courier
from tidings.webhooks.payloads import carries_token
from tidings.webhooks.policy import Outcome
from tidings.webhooks.signing import MASK, new_signing_secret, verify

START_MS = 1_900_000_000_000
OWNER = User(
    id="owner", create_at=1, update_at=1, delete_at=0, username="alice", email="a@example.test"
)


def _hook(**changes: object) -> OutgoingHook:
    values: dict[str, object] = {
        "id": "hook",
        "token": "token-now",
        "create_at": 1,
        "update_at": 1,
        "delete_at": 0,
        "creator_id": OWNER.id,
        "channel_id": "channel",
        "team_id": "team",
        "trigger_words": ("deploy",),
        "trigger_when": 0,
        "callback_urls": ("http://receiver.test/hook",),
        "signing_secret": new_signing_secret(),
        **changes,
    }
    return OutgoingHook(**values)  # type: ignore[arg-type]


def _delivery(token: str = "token-now", **changes: object) -> Delivery:  # noqa: S107 - a test value
    values: dict[str, object] = {
        "id": "delivery",
        "hook_id": "hook",
        "post_id": "post",
        "channel_id": "channel",
        "url": "http://receiver.test/hook",
        "status": DeliveryStatus.IN_FLIGHT,
        "content_type": "application/json",
        "body": json.dumps({"token": token, "text": "deploy now"}, separators=(",", ":")).encode(),
        "trigger_word": "deploy",
        "create_at": START_MS,
        "update_at": START_MS,
        "next_attempt_at": START_MS,
        "attempt_count": 1,
        "lease_expires_at": START_MS + 60_000,
        **changes,
    }
    return Delivery(**values)  # type: ignore[arg-type]


def _batch(hook: OutgoingHook, **settings: object) -> Batch:
    defaults = server_config.webhook_settings(server_config.defaults())
    webhook_settings = dataclasses.replace(defaults, **settings)  # type: ignore[arg-type]
    return Batch(settings=webhook_settings, hooks={hook.id: hook}, creators={OWNER.id: OWNER})


def _outcome(status: int, body: bytes = b"", **changes: object) -> HttpOutcome:
    kind = ErrorKind.NONE if 200 <= status <= 299 else ErrorKind.HTTP_STATUS
    values: dict[str, object] = {
        "status_code": status,
        "headers": {"Content-Type": "application/json"},
        "body": body,
        "truncated": False,
        "duration_ms": 12,
        "error_kind": kind,
        "error_message": "" if kind is ErrorKind.NONE else f"HTTP {status}",
        "retry_after": None,
        **changes,
    }
    return HttpOutcome(**values)  # type: ignore[arg-type]


@dataclass
class FakePoster:
    """Answers every request with ``outcome`` (or raises ``error``) and records it."""

    outcome: HttpOutcome = field(default_factory=lambda: _outcome(200))
    error: Exception | None = None
    sent: list[tuple[str, bytes, dict[str, str], float]] = field(default_factory=list)

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout_seconds: float
    ) -> HttpOutcome:
        self.sent.append((url, body, dict(headers), timeout_seconds))
        if self.error is not None:
            raise self.error
        return self.outcome


@dataclass
class FakeStorage:
    """The hook as stored now, the bodies saved, and the users a reply may mention."""

    hook: OutgoingHook | None = None
    creator: User | None = OWNER
    users: dict[str, str] = field(default_factory=dict)
    failing: bool = False
    saved: list[tuple[str, bytes]] = field(default_factory=list)
    reloads: int = 0

    async def reload_hook(self, hook_id: str) -> tuple[OutgoingHook | None, User | None]:
        self.reloads += 1
        if self.failing:
            raise ConnectionError("database is away")
        return self.hook, self.creator

    async def save_body(self, delivery_id: str, body: bytes) -> None:
        self.saved.append((delivery_id, body))

    async def usernames(self, user_ids: set[str]) -> dict[str, str]:
        return {i: name for i, name in self.users.items() if i in user_ids}


def _courier(poster: FakePoster, storage: FakeStorage | None = None) -> Courier:
    return Courier(poster, storage or FakeStorage(), FakeClock(START_MS), rand=lambda: 0.5)


async def test_a_2xx_with_a_reply_succeeds_and_makes_the_reply_post() -> None:
    """Signed with the hook's secret, sent once; the reply becomes the owner's post."""
    hook = _hook()
    poster = FakePoster(_outcome(200, b'{"text": "on it"}'))
    result = await _courier(poster).deliver(_delivery(), _batch(hook))
    [(url, body, headers, timeout)] = poster.sent
    assert (url, timeout) == ("http://receiver.test/hook", 30.0)
    assert verify(hook.signing_secret, headers, body, START_MS / 1000)
    assert headers["webhook-id"] == "delivery"
    finish = result.finish
    assert (finish.status, result.verdict, result.sender_name) == (
        DeliveryStatus.SUCCEEDED,
        Outcome.SUCCESS,
        "@alice",
    )
    [post] = finish.reply_posts
    assert (post.message, post.user_id, post.channel_id) == ("on it", "owner", "channel")
    assert finish.attempt is not None
    assert (finish.attempt.number, finish.attempt.status_code, finish.attempt.error_kind) == (
        1,
        200,
        "",
    )
    assert finish.attempt.request_headers["webhook-signature"] == MASK
    assert finish.attempt.response_excerpt == '{"text": "on it"}'


@pytest.mark.parametrize("post_depth", [0, 2])
async def test_reply_posts_are_one_deeper_than_their_trigger(post_depth: int) -> None:
    """Every post of a reply carries the chain depth of the delivery's post plus one."""
    poster = FakePoster(_outcome(200, json.dumps({"text": "x" * 20_000}).encode()))
    delivery = _delivery(post_depth=post_depth)
    result = await _courier(poster).deliver(delivery, _batch(_hook()))
    assert len(result.finish.reply_posts) == 2  # split: both parts are one deeper
    assert {p.webhook_depth for p in result.finish.reply_posts} == {post_depth + 1}


async def test_a_retryable_failure_is_rescheduled_by_the_policy() -> None:
    """A 503 on the first attempt: pending again, due after the first scheduled wait."""
    poster = FakePoster(_outcome(503))
    result = await _courier(poster).deliver(_delivery(), _batch(_hook()))
    assert (result.finish.status, result.verdict) == (DeliveryStatus.PENDING, Outcome.RETRY)
    assert result.finish.next_attempt_at == START_MS + 5_000  # 5 s, jitter centred by rand 0.5
    assert result.finish.reply_posts == []


async def test_the_last_retryable_failure_fails_the_delivery() -> None:
    """With the schedule spent, a retryable answer is final."""
    poster = FakePoster(_outcome(503))
    batch = _batch(_hook(), retry_schedule_seconds=(5.0,))
    result = await _courier(poster).deliver(_delivery(attempt_count=2), batch)
    assert (result.finish.status, result.finish.next_attempt_at) == (DeliveryStatus.FAILED, 0)


async def test_a_ping_is_answered_at_once_not_retried() -> None:
    """A delivery without a post (a ping) fails at once on a retryable answer."""
    poster = FakePoster(_outcome(500))
    result = await _courier(poster).deliver(_delivery(post_id=""), _batch(_hook()))
    assert result.finish.status is DeliveryStatus.FAILED


async def test_gone_fails_and_says_so() -> None:
    """410: failed, with the verdict the failure watch disables the hook on."""
    result = await _courier(FakePoster(_outcome(410))).deliver(_delivery(), _batch(_hook()))
    assert (result.finish.status, result.verdict) == (DeliveryStatus.FAILED, Outcome.GONE)


async def test_a_reply_already_posted_is_not_posted_again() -> None:
    """A delivery whose reply was posted by an earlier attempt makes no new post."""
    poster = FakePoster(_outcome(200, b'{"text": "again"}'))
    result = await _courier(poster).deliver(_delivery(reply_posted=True), _batch(_hook()))
    assert result.finish.status is DeliveryStatus.SUCCEEDED
    assert result.finish.reply_posts == []


async def test_a_reply_that_cannot_be_posted_is_recorded_not_retried() -> None:
    """A refused reply still counts as delivered; the attempt says why nothing was posted."""
    poster = FakePoster(
        _outcome(200, json.dumps({"text": "x", "type": "custom_" + "y" * 40}).encode())
    )
    result = await _courier(poster).deliver(_delivery(), _batch(_hook()))
    assert result.finish.status is DeliveryStatus.SUCCEEDED
    assert result.finish.reply_posts == []
    assert result.finish.attempt is not None
    assert result.finish.attempt.error_kind == ErrorKind.BAD_REPLY.value
    assert "reply not posted" in result.finish.attempt.error_message


async def test_mentions_in_a_reply_are_looked_up() -> None:
    """User ids a reply mentions are turned into @names through storage."""
    poster = FakePoster(_outcome(200, b'{"text": "ask <@u1>"}'))
    storage = FakeStorage(users={"u1": "bob"})
    result = await _courier(poster, storage).deliver(_delivery(), _batch(_hook()))
    [post] = result.finish.reply_posts
    assert post.message == "ask @bob"


async def test_a_body_with_an_old_token_is_sent_with_the_new_one_and_saved() -> None:
    """The hook's token was regenerated after queueing: re-read the hook, re-encode, store the
    body, then sign with the new secret."""
    cached = _hook(token="token-now")  # the cache has the new token, with a secret as old
    fresh = _hook(token="token-now")
    storage = FakeStorage(hook=fresh)
    poster = FakePoster()
    delivery = _delivery(token="token-then")
    result = await _courier(poster, storage).deliver(delivery, _batch(cached))
    [(_, body, headers, _)] = poster.sent
    assert carries_token(body, "application/json", "token-now")
    assert storage.saved == [("delivery", body)]
    assert verify(fresh.signing_secret, headers, body, START_MS / 1000)
    assert not verify(cached.signing_secret, headers, body, START_MS / 1000)
    assert result.finish.delivery.body == body


async def test_storage_failing_before_the_send_gives_the_delivery_back() -> None:
    """No request, no attempt counted, due again shortly."""
    storage = FakeStorage(failing=True)
    poster = FakePoster()
    result = await _courier(poster, storage).deliver(_delivery(token="token-then"), _batch(_hook()))
    assert poster.sent == []
    assert (result.finish.status, result.finish.attempt) == (DeliveryStatus.PENDING, None)
    assert result.finish.next_attempt_at == START_MS + GIVE_BACK_DELAY_MS


async def test_a_hook_disabled_meanwhile_is_not_sent() -> None:
    """Found disabled on the fresh read: failed ``not_sent``, and no request made."""
    storage = FakeStorage(hook=_hook(token="token-now", enabled=False))
    poster = FakePoster()
    result = await _courier(poster, storage).deliver(_delivery(token="token-then"), _batch(_hook()))
    assert poster.sent == []
    assert result.finish.status is DeliveryStatus.FAILED
    assert result.finish.attempt is not None
    assert result.finish.attempt.error_kind == ErrorKind.NOT_SENT.value
    assert result.finish.attempt.error_message == "not sent: the hook is disabled"


async def test_a_crash_is_a_failed_attempt_not_an_exception() -> None:
    """A bug while sending becomes a ``protocol`` attempt, retried like one."""
    poster = FakePoster(error=RuntimeError("bug"))
    result = await _courier(poster).deliver(_delivery(), _batch(_hook()))
    assert result.finish.attempt is not None
    assert result.finish.attempt.error_kind == ErrorKind.PROTOCOL.value
    assert result.finish.attempt.error_message == "internal error: RuntimeError"
    assert result.finish.status is DeliveryStatus.PENDING


async def test_given_back_is_no_attempt() -> None:
    """A delivery returned unsent: pending after the delay, no attempt, nothing to watch."""
    result = _courier(FakePoster()).given_back(_delivery(), 250)
    assert (result.finish.status, result.finish.attempt, result.finish.next_attempt_at) == (
        DeliveryStatus.PENDING,
        None,
        START_MS + 250,
    )
    assert (result.verdict, result.hook) == (Outcome.RETRY, None)


@pytest.fixture
async def replying_receiver() -> AsyncIterator[str]:
    """A receiver on 127.0.0.1 that answers every POST with a reply naming the body's length."""

    async def answer(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response({"text": f"got {len(body)} bytes"})

    app = web.Application()
    app.router.add_post("/hook", answer)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    await runner.cleanup()


async def test_an_attempt_against_a_real_receiver(replying_receiver: str) -> None:
    """Through the real client: the reply comes back as a post, the response in the log."""
    delivery = _delivery(url=replying_receiver)
    async with WebhookClient("127.0.0.1") as client:
        courier = Courier(client, FakeStorage(), FakeClock(START_MS))
        result = await courier.deliver(delivery, _batch(_hook()))
    assert result.finish.status is DeliveryStatus.SUCCEEDED
    [post] = result.finish.reply_posts
    assert post.message == f"got {len(delivery.body)} bytes"
    assert result.finish.attempt is not None
    assert result.finish.attempt.status_code == 200
