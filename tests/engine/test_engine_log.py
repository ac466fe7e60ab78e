"""The delivery engine seen through its API: the delivery log, retries, redeliver, ping,
signatures, 410, failure notices, auto-disable, metrics."""

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from support import Api, Factory, Receiver, ServerThread, wait_until

pytestmark = pytest.mark.db

FAST_RETRIES = [0.2, 0.2]


@pytest.fixture
def engine(admin: Api, webhooks_on: Api) -> Iterator[Api]:
    """Webhooks on, loopback allowed, quick retries; restored afterwards."""
    admin.put(
        "/config/patch", {"ServiceSettings": {"OutgoingWebhookRetryScheduleSeconds": FAST_RETRIES}}
    )
    yield admin
    admin.put(
        "/config/patch",
        {"ServiceSettings": {"OutgoingWebhookRetryScheduleSeconds": [5, 30, 120, 600, 1800]}},
    )


def make_hook(
    admin: Api, factory: Factory, receiver: Receiver, **extra: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    team = factory.team()
    channel = factory.channel(team)
    hook = admin.post(
        "/hooks/outgoing",
        {
            "team_id": team["id"],
            "channel_id": channel["id"],
            "callback_urls": [receiver.url],
            "display_name": "Build bot",
            **extra,
        },
        expect=201,
    )
    return hook, channel


def deliveries(api: Api, hook_id: str, **query: str) -> list[dict[str, Any]]:
    return api.get(f"/hooks/outgoing/{hook_id}/deliveries", params=query)  # type: ignore[no-any-return]


def finished(api: Api, hook_id: str, count: int = 1) -> list[dict[str, Any]]:
    """Wait until ``count`` deliveries of the hook are succeeded or failed."""

    def check() -> list[dict[str, Any]] | None:
        found = [d for d in deliveries(api, hook_id) if d["status"] in ("succeeded", "failed")]
        return found if len(found) >= count else None

    result: list[dict[str, Any]] = wait_until(check, timeout=15)
    return result


def test_a_delivery_is_logged_with_its_attempt(
    engine: Api, factory: Factory, receiver: Receiver
) -> None:
    """A delivered post leaves a succeeded delivery whose attempt shows masked headers and the reply."""
    receiver.reply = {"text": "pong"}
    hook, channel = make_hook(engine, factory, receiver)
    post = engine.post("/posts", {"channel_id": channel["id"], "message": "hello"}, expect=201)
    (delivery,) = finished(engine, hook["id"])
    assert delivery["status"] == "succeeded"
    assert delivery["post_id"] == post["id"]
    detail = engine.get(f"/hooks/outgoing/{hook['id']}/deliveries/{delivery['id']}")
    assert "token=" in detail["request_body"]
    (attempt,) = detail["attempts"]
    assert attempt["status_code"] == 200
    assert attempt["request_headers"]["webhook-signature"] == "***"
    assert attempt["request_headers"]["webhook-id"] == delivery["id"]
    assert json.loads(attempt["response_body"]) == {"text": "pong"}


def test_signatures_verify_with_the_standard_webhooks_library(
    engine: Api, factory: Factory, receiver: Receiver
) -> None:
    """The request the receiver got verifies with the independent standardwebhooks package."""
    # The library parses the verified body as JSON, so this hook sends JSON.
    hook, channel = make_hook(engine, factory, receiver, content_type="application/json")
    engine.post("/posts", {"channel_id": channel["id"], "message": "sign me"}, expect=201)
    (request,) = receiver.wait_for(1)
    headers = {k.lower(): v for k, v in request.headers.items()}
    Webhook(hook["signing_secret"]).verify(request.body, headers)
    with pytest.raises(Exception):  # noqa: B017, PT011 - the library raises its own verification error
        Webhook(hook["signing_secret"]).verify(request.body + b"x", headers)


def test_server_errors_are_retried_with_the_same_delivery_id(
    engine: Api, factory: Factory, receiver: Receiver
) -> None:
    """A 500 is retried; every attempt carries the same webhook-id; the reply posts once."""
    answers = iter([500, 503, 200])

    def reply(_request: Any) -> Any:
        receiver.status = next(answers, 200)
        return {"text": "finally"}

    receiver.reply = reply
    receiver.status = 500
    hook, channel = make_hook(engine, factory, receiver)
    engine.post("/posts", {"channel_id": channel["id"], "message": "retry me"}, expect=201)
    (delivery,) = finished(engine, hook["id"])
    requests = receiver.wait_for(3)
    assert {r.headers["webhook-id"] for r in requests} == {delivery["id"]}
    assert delivery["status"] == "succeeded"
    assert delivery["attempt_count"] == 3
    posts = engine.get(f"/channels/{channel['id']}/posts")
    replies = [p for p in posts["posts"].values() if p["props"].get("from_webhook") == "true"]
    assert [p["message"] for p in replies] == ["finally"]


def test_client_errors_are_not_retried(engine: Api, factory: Factory, receiver: Receiver) -> None:
    """A 400 fails the delivery at once and posts nothing."""
    receiver.status = 400
    hook, channel = make_hook(engine, factory, receiver)
    engine.post("/posts", {"channel_id": channel["id"], "message": "bad"}, expect=201)
    (delivery,) = finished(engine, hook["id"])
    assert delivery["status"] == "failed"
    assert delivery["attempt_count"] == 1
    assert delivery["last_status_code"] == 400
    time.sleep(0.5)
    assert len(receiver.requests) == 1


def test_retries_stop_when_the_schedule_is_spent(
    engine: Api, factory: Factory, receiver: Receiver
) -> None:
    """With two retries configured, a receiver that always fails sees three attempts."""
    receiver.status = 502
    hook, channel = make_hook(engine, factory, receiver)
    engine.post("/posts", {"channel_id": channel["id"], "message": "doomed"}, expect=201)
    (delivery,) = finished(engine, hook["id"])
    assert delivery["status"] == "failed"
    assert delivery["attempt_count"] == len(FAST_RETRIES) + 1
    assert delivery["last_error_kind"] == "http_status"


def test_retry_after_is_honoured(engine: Api, factory: Factory, receiver: Receiver) -> None:
    """A 429 with Retry-After: 2 is not retried sooner than two seconds later."""
    receiver.status = 429
    receiver.headers = {"Retry-After": "2"}
    _hook, channel = make_hook(engine, factory, receiver)
    engine.post("/posts", {"channel_id": channel["id"], "message": "slow down"}, expect=201)
    first, second = receiver.wait_for(2, timeout=10)[:2]
    assert second.at - first.at >= 1.9


def test_redeliver_sends_the_same_payload_again(
    engine: Api, factory: Factory, receiver: Receiver
) -> None:
    """Redeliver starts a new attempt chain with the same delivery id and body; the reply is not posted twice."""
    receiver.reply = {"text": "once"}
    hook, channel = make_hook(engine, factory, receiver)
    engine.post("/posts", {"channel_id": channel["id"], "message": "again"}, expect=201)
    (delivery,) = finished(engine, hook["id"])
    again = engine.post(f"/hooks/outgoing/{hook['id']}/deliveries/{delivery['id']}/redeliver")
    assert again["id"] == delivery["id"]
    first, second = receiver.wait_for(2)
    assert first.body == second.body
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery["id"]
    wait_until(
        lambda: (
            len(engine.get(f"/hooks/outgoing/{hook['id']}/deliveries/{delivery['id']}")["attempts"])
            == 2
        )
    )
    posts = engine.get(f"/channels/{channel['id']}/posts")
    assert [p["message"] for p in posts["posts"].values() if p["props"].get("from_webhook")] == [
        "once"
    ]


def test_redeliver_of_a_queued_delivery_is_refused(
    engine: Api, factory: Factory, receiver: Receiver
) -> None:
    """A delivery still being delivered cannot be redelivered (400)."""
    receiver.delay_seconds = 2
    hook, channel = make_hook(engine, factory, receiver)
    engine.post("/posts", {"channel_id": channel["id"], "message": "busy"}, expect=201)
    (delivery,) = wait_until(lambda: deliveries(engine, hook["id"]))
    response = engine.request(
        "POST", f"/hooks/outgoing/{hook['id']}/deliveries/{delivery['id']}/redeliver"
    )
    assert response.status_code == 400
    assert response.json()["id"] == "api.webhooks.redeliver.in_progress.app_error"


def test_ping_answers_with_the_result(engine: Api, factory: Factory, receiver: Receiver) -> None:
    """Ping sends a test event (empty post_id) and returns its attempt at once; no post is made."""
    receiver.reply = {"text": "would post"}
    hook, channel = make_hook(engine, factory, receiver)
    (result,) = engine.post(f"/hooks/outgoing/{hook['id']}/ping")
    assert result["status"] == "succeeded"
    assert result["is_ping"] is True
    assert result["attempts"][0]["status_code"] == 200
    (request,) = receiver.requests
    assert b"post_id=&" in request.body
    assert engine.get(f"/channels/{channel['id']}/posts")["order"] == []


def test_ping_reports_a_refused_address(engine: Api, factory: Factory, receiver: Receiver) -> None:
    """A ping to a loopback receiver that is not allowed fails with the setting named."""
    engine.put("/config/patch", {"ServiceSettings": {"AllowedUntrustedInternalConnections": ""}})
    hook, _ = make_hook(engine, factory, receiver)
    (result,) = engine.post(f"/hooks/outgoing/{hook['id']}/ping")
    assert result["status"] == "failed"
    assert result["last_error_kind"] == "forbidden_address"
    assert "AllowedUntrustedInternalConnections" in result["last_error"]
    assert receiver.requests == []


def test_log_filters_and_pages(engine: Api, factory: Factory, receiver: Receiver) -> None:
    """The log lists newest first, filters by status and pages to an empty list."""
    hook, channel = make_hook(engine, factory, receiver)
    for i in range(3):
        engine.post("/posts", {"channel_id": channel["id"], "message": f"n{i}"}, expect=201)
    finished(engine, hook["id"], 3)
    listed = deliveries(engine, hook["id"])
    assert [d["create_at"] for d in listed] == sorted(
        (d["create_at"] for d in listed), reverse=True
    )
    assert len(deliveries(engine, hook["id"], status="succeeded")) == 3
    assert deliveries(engine, hook["id"], status="failed") == []
    assert len(deliveries(engine, hook["id"], page="1", per_page="2")) == 1
    assert deliveries(engine, hook["id"], page="5", per_page="2") == []
    bad = engine.request(
        "GET", f"/hooks/outgoing/{hook['id']}/deliveries", params={"status": "nope"}
    )
    assert bad.status_code == 400


def test_the_log_is_for_the_hook_owner_and_admins(
    engine: Api, factory: Factory, receiver: Receiver
) -> None:
    """A team member who does not own the hook gets 403 from the log, ping and redeliver."""
    hook, _ = make_hook(engine, factory, receiver)
    member = factory.user()
    factory.join({"id": hook["team_id"]}, member)
    for method, path in (
        ("GET", "/deliveries"),
        ("POST", "/ping"),
        ("GET", f"/deliveries/{hook['id']}"),
    ):
        assert member.request(method, f"/hooks/outgoing/{hook['id']}{path}").status_code == 403
    assert (
        engine.request("GET", f"/hooks/outgoing/{hook['id']}/deliveries/{'x' * 26}").status_code
        == 404
    )


def test_gone_disables_the_hook_until_re_enabled(
    engine: Api, factory: Factory, receiver: Receiver
) -> None:
    """A 410 disables the hook: later posts do not fire until it is re-enabled."""
    receiver.status = 410
    hook, channel = make_hook(engine, factory, receiver)
    engine.post("/posts", {"channel_id": channel["id"], "message": "one"}, expect=201)
    disabled = wait_until(
        lambda: (h := engine.get(f"/hooks/outgoing/{hook['id']}")) and not h["enabled"] and h
    )
    assert "410" in disabled["disabled_reason"]
    time.sleep(1.1)  # the engine's hook cache lives a second
    engine.post("/posts", {"channel_id": channel["id"], "message": "two"}, expect=201)
    time.sleep(0.5)
    assert len(receiver.requests) == 1
    receiver.status = 200
    enabled = engine.post(f"/hooks/outgoing/{hook['id']}/enable")
    assert enabled["enabled"] is True
    assert enabled["disabled_reason"] == ""
    engine.post("/posts", {"channel_id": channel["id"], "message": "three"}, expect=201)
    receiver.wait_for(2)


def test_owner_is_told_about_failures_at_most_hourly(
    engine: Api, factory: Factory, receiver: Receiver
) -> None:
    """Failures bring one direct message from the system bot, not one per failure."""
    receiver.status = 404
    name = f"Notice bot {time.monotonic_ns()}"
    hook, channel = make_hook(engine, factory, receiver, display_name=name)
    for i in range(3):
        engine.post("/posts", {"channel_id": channel["id"], "message": f"fail {i}"}, expect=201)
    finished(engine, hook["id"], 3)
    bot = wait_until(
        lambda: engine.request("GET", "/users/username/tidings").status_code == 200
    ) and engine.get("/users/username/tidings")
    me = engine.user["id"]
    dm_name = "__".join(sorted((me, bot["id"])))

    def notices() -> list[dict[str, Any]]:
        teams = engine.get(f"/users/{me}/teams")
        channels = engine.get(f"/users/{me}/teams/{teams[0]['id']}/channels")
        dm = next((c for c in channels if c["name"] == dm_name), None)
        if dm is None:
            return []
        posts = engine.get(f"/channels/{dm['id']}/posts")["posts"].values()
        return [p for p in posts if name in p["message"]]

    found = wait_until(notices)
    time.sleep(0.5)
    assert len(notices()) == len(found) == 1
    assert "failing" in found[0]["message"]


def test_metrics_are_for_admins(
    engine: Api, factory: Factory, receiver: Receiver, server: ServerThread
) -> None:
    """/metrics exposes attempt counters and queue depth to system admins only."""
    hook, channel = make_hook(engine, factory, receiver)
    engine.post("/posts", {"channel_id": channel["id"], "message": "count me"}, expect=201)
    finished(engine, hook["id"])
    import httpx

    response = httpx.get(
        server.url + "/metrics", headers={"Authorization": f"Bearer {engine.token}"}
    )
    assert response.status_code == 200
    assert 'tidings_webhook_attempts_total{outcome="success"}' in response.text
    assert "tidings_webhook_queue_depth" in response.text
    member = factory.user()
    assert (
        httpx.get(
            server.url + "/metrics", headers={"Authorization": f"Bearer {member.token}"}
        ).status_code
        == 403
    )
    assert httpx.get(server.url + "/metrics").status_code == 401


def _age_hook_history(
    database_url: str, hook_id: str, channel_id: str, failures: int, hours: float
) -> None:
    """Pretend the hook was last changed, and started failing, ``hours`` ago."""
    import asyncio

    from sqlalchemy import update

    from hooks.hooks_support import failed_delivery_row
    from tidings.store.database import Connection, Database
    from tidings.store.schema import deliveries, outgoing_hooks

    then = int((time.time() - hours * 3600) * 1000)

    def age(conn: Connection) -> None:
        conn.execute(
            update(outgoing_hooks)
            .where(outgoing_hooks.c.id == hook_id)
            .values(update_at=then - 1000)
        )
        conn.execute(
            deliveries.insert(),
            [
                failed_delivery_row(
                    hook_id, channel_id, then + i, "http_status", attempts=3, error="HTTP 500"
                )
                for i in range(failures)
            ],
        )

    async def work() -> None:
        db = Database.from_url(database_url)
        try:
            await db.write(age)
        finally:
            await db.dispose()

    asyncio.run(work())


def test_sustained_failure_disables_the_hook(
    engine: Api, factory: Factory, receiver: Receiver, database_url: str
) -> None:
    """After the configured hours in which every delivery failed (and enough failed), the hook is disabled."""
    engine.put(
        "/config/patch",
        {
            "ServiceSettings": {
                "OutgoingWebhookAutoDisableHours": 1,
                "OutgoingWebhookAutoDisableMinFailures": 3,
            }
        },
    )
    try:
        receiver.status = 404
        hook, channel = make_hook(engine, factory, receiver)
        _age_hook_history(database_url, hook["id"], channel["id"], failures=3, hours=2)
        time.sleep(1.1)  # let the engine's hook cache forget the fresh update time
        engine.post("/posts", {"channel_id": channel["id"], "message": "still broken"}, expect=201)
        disabled = wait_until(
            lambda: (h := engine.get(f"/hooks/outgoing/{hook['id']}")) and not h["enabled"] and h
        )
        assert "Every delivery failed" in disabled["disabled_reason"]
    finally:
        engine.put(
            "/config/patch",
            {
                "ServiceSettings": {
                    "OutgoingWebhookAutoDisableHours": 24,
                    "OutgoingWebhookAutoDisableMinFailures": 10,
                }
            },
        )


def test_recent_failures_alone_do_not_disable(
    engine: Api, factory: Factory, receiver: Receiver
) -> None:
    """A fresh hook that fails a few times stays enabled."""
    receiver.status = 404
    hook, channel = make_hook(engine, factory, receiver)
    for i in range(3):
        engine.post("/posts", {"channel_id": channel["id"], "message": f"x{i}"}, expect=201)
    finished(engine, hook["id"], 3)
    assert engine.get(f"/hooks/outgoing/{hook['id']}")["enabled"] is True


def test_a_hanging_receiver_does_not_hold_up_others(engine: Api, factory: Factory) -> None:
    """With a per-destination cap of 2, a receiver that hangs holds two slots; another receiver keeps its pace."""
    engine.put(
        "/config/patch",
        {
            "ServiceSettings": {
                "OutgoingWebhookMaxConcurrencyPerDestination": 2,
                "OutgoingIntegrationRequestsTimeout": 3,
            }
        },
    )
    slow, fast = Receiver(), Receiver()
    try:
        slow.delay_seconds = 2.5
        slow_hook, channel = make_hook(engine, factory, slow)
        team_id = slow_hook["team_id"]
        engine.post(
            "/hooks/outgoing",
            {"team_id": team_id, "channel_id": channel["id"], "callback_urls": [fast.url]},
            expect=201,
        )
        started = time.monotonic()
        for i in range(20):
            engine.post(
                "/posts", {"channel_id": channel["id"], "message": f"burst {i}"}, expect=201
            )
        fast.wait_for(20, timeout=10)
        assert (
            time.monotonic() - started < 2.5
        )  # all 20 arrived before the slow receiver answered once
        assert len(slow.requests) <= 2
    finally:
        engine.delete(f"/hooks/outgoing/{slow_hook['id']}")  # the rest of its queue fails fast
        slow.close()
        fast.close()
        engine.put(
            "/config/patch",
            {
                "ServiceSettings": {
                    "OutgoingWebhookMaxConcurrencyPerDestination": 8,
                    "OutgoingIntegrationRequestsTimeout": 30,
                }
            },
        )
