"""The outbox's rules without a database: fencing by lease, replying once, unstorable results,
the claim's skip budget, destinations."""

import dataclasses

from tidings.domain.deliveries import Attempt, Delivery, DeliveryStatus, ErrorKind
from tidings.domain.outbox import (
    INTERRUPTED_MESSAGE,
    DueFloor,
    Finish,
    Ownership,
    SkipLists,
    destination,
    interrupted_attempt,
    latest_by_channel,
    pick_within_room,
    plan_write_back,
    unstorable,
)
from tidings.domain.posts import Post

LEASE = 1_900_000_060_000


def _delivery(delivery_id: str, **changes: object) -> Delivery:
    delivery = Delivery(
        id=delivery_id,
        hook_id="hook",
        post_id="post",
        channel_id="channel",
        url="http://receiver.test/hook",
        status=DeliveryStatus.IN_FLIGHT,
        content_type="application/json",
        body=b"{}",
        trigger_word="go",
        create_at=1,
        update_at=2,
        next_attempt_at=1,
        attempt_count=2,
        lease_expires_at=LEASE,
        last_status_code=503,
        last_error_kind="http_status",
        last_error="HTTP 503 the first time",
    )
    return dataclasses.replace(delivery, **changes)  # type: ignore[arg-type]


def _attempt(delivery_id: str, status_code: int = 200, kind: str = "") -> Attempt:
    return Attempt(
        id=f"attempt-{delivery_id}",
        delivery_id=delivery_id,
        number=2,
        started_at=10,
        duration_ms=3,
        status_code=status_code,
        error_kind=kind,
        error_message=f"HTTP {status_code}" if kind else "",
        request_headers={"Content-Type": "application/json"},
        response_headers={"X-Seen": "yes"},
        response_excerpt='{"text": "hi"}',
    )


def _post(post_id: str, channel_id: str = "channel", create_at: int = 100) -> Post:
    return Post(
        id=post_id,
        create_at=create_at,
        update_at=create_at,
        edit_at=0,
        delete_at=0,
        user_id="owner",
        channel_id=channel_id,
        root_id="post",
        message="hi",
    )


def _succeeded(delivery: Delivery, *posts: Post) -> Finish:
    return Finish(
        delivery=delivery,
        status=DeliveryStatus.SUCCEEDED,
        attempt=_attempt(delivery.id),
        reply_posts=posts,
    )


def test_a_result_under_its_own_lease_is_written_with_its_reply() -> None:
    """Still in flight under the claimed lease: the new state, the attempt's code, the reply."""
    reply = _post("reply")
    writes, inserted = plan_write_back(
        [_succeeded(_delivery("d1"), reply)], {"d1": Ownership(LEASE, reply_posted=False)}
    )
    assert inserted == [[reply]]
    [write] = writes
    assert (write.delivery_id, write.status, write.uncount) == ("d1", DeliveryStatus.SUCCEEDED, 0)
    assert (write.status_code, write.error_kind, write.error_message) == (200, "", "")
    assert write.reply_posted is True


def test_a_result_whose_lease_was_taken_over_is_dropped() -> None:
    """A newer owner (another lease) or a row no longer in flight wins: nothing is written."""
    late = _succeeded(_delivery("d1"), _post("r1"))
    gone = _succeeded(_delivery("d2"), _post("r2"))
    writes, inserted = plan_write_back(
        [late, gone], {"d1": Ownership(LEASE + 5_000, reply_posted=False)}
    )
    assert writes == []
    assert inserted == [[], []]


def test_a_reply_is_posted_once_per_delivery() -> None:
    """A retry after a committed reply records its attempt but posts nothing again."""
    writes, inserted = plan_write_back(
        [_succeeded(_delivery("d1"), _post("again"))], {"d1": Ownership(LEASE, reply_posted=True)}
    )
    assert inserted == [[]]
    assert writes[0].reply_posted is True


def test_a_delivery_given_back_unsent_is_no_attempt() -> None:
    """No attempt: the claim is uncounted and the last attempt's code and error stay."""
    given_back = Finish(
        delivery=_delivery("d1"), status=DeliveryStatus.PENDING, attempt=None, next_attempt_at=77
    )
    [write], inserted = plan_write_back([given_back], {"d1": Ownership(LEASE, False)})
    assert inserted == [[]]
    assert (write.status, write.next_attempt_at, write.uncount) == (DeliveryStatus.PENDING, 77, 1)
    assert (write.status_code, write.error_kind, write.error_message) == (
        503,
        "http_status",
        "HTTP 503 the first time",
    )
    assert write.reply_posted is False


def test_results_are_planned_in_order() -> None:
    """Inserted posts line up with the results, owned or not."""
    a, c = _post("a"), _post("c")
    results = [
        _succeeded(_delivery("d1"), a),
        _succeeded(_delivery("d2"), _post("b")),
        _succeeded(_delivery("d3"), c),
    ]
    owned = {"d1": Ownership(LEASE, False), "d3": Ownership(LEASE, False)}
    writes, inserted = plan_write_back(results, owned)
    assert [w.delivery_id for w in writes] == ["d1", "d3"]
    assert inserted == [[a], [], [c]]


def test_an_unstorable_result_fails_without_what_could_not_be_stored() -> None:
    """Failed, not retried, no reply, no headers or excerpt, and the error's type named."""
    result = _succeeded(_delivery("d1"), _post("reply"))
    reduced = unstorable(result, UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates"))
    assert (reduced.status, reduced.next_attempt_at, reduced.reply_posts) == (
        DeliveryStatus.FAILED,
        0,
        (),
    )
    assert reduced.attempt is not None
    assert reduced.attempt.error_kind == ErrorKind.UNSTORABLE.value
    assert "UnicodeEncodeError" in reduced.attempt.error_message
    assert (reduced.attempt.request_headers, reduced.attempt.response_headers) == ({}, {})
    assert reduced.attempt.response_excerpt == ""
    assert (reduced.attempt.id, reduced.attempt.status_code) == ("attempt-d1", 200)


def test_an_unstorable_give_back_stays_a_give_back() -> None:
    """No attempt to blame: the state is kept (pending, due when it was), only posts go."""
    given_back = Finish(
        delivery=_delivery("d1"), status=DeliveryStatus.PENDING, attempt=None, next_attempt_at=9
    )
    reduced = unstorable(given_back, ValueError("bad"))
    assert (reduced.status, reduced.attempt, reduced.next_attempt_at) == (
        DeliveryStatus.PENDING,
        None,
        9,
    )


def test_skip_lists_share_one_budget_destinations_first() -> None:
    """Destinations, then owners, then teams, until the budget is spent."""
    skip = SkipLists.within_budget(5, ["d1", "d2"], ["o1", "o2", "o3", "o4"], ["t1"])
    assert skip == SkipLists(destinations=["d1", "d2"], owners=["o1", "o2", "o3"], teams=[])
    assert SkipLists.within_budget(10) == SkipLists([], [], [])
    assert SkipLists.within_budget(0, ["d"], ["o"], ["t"]) == SkipLists([], [], [])


def test_destination_is_scheme_host_and_port() -> None:
    """Default ports are spelled out; a bad port counts as the default."""
    assert destination("https://Example.test/a?b") == "https://example.test:443"
    assert destination("http://example.test:8080/x") == "http://example.test:8080"
    assert destination("http://example.test/x") == "http://example.test:80"
    assert destination("http://example.test:99999/x") == "http://example.test:80"


def test_an_interrupted_attempt_starts_at_the_claim_and_says_why() -> None:
    """The cut-off try: started when claimed, no duration, no response, the reason written."""
    attempt = interrupted_attempt("a1", "d1", 3, 1234)
    assert (attempt.number, attempt.started_at, attempt.duration_ms, attempt.status_code) == (
        3,
        1234,
        0,
        0,
    )
    assert (attempt.error_kind, attempt.error_message) == (
        ErrorKind.INTERRUPTED.value,
        INTERRUPTED_MESSAGE,
    )


def test_channel_counters_take_the_newest_post_and_the_count() -> None:
    """Per channel: the latest create_at and how many posts."""
    posts = [_post("a", "c1", 5), _post("b", "c2", 7), _post("c", "c1", 3)]
    assert latest_by_channel(posts) == {"c1": (5, 2), "c2": (7, 1)}


def test_pick_within_room_keeps_order_rooms_and_limit() -> None:
    candidates = [("a1", "A"), ("a2", "A"), ("a3", "A"), ("b1", "B"), ("c1", "C"), ("b2", "B")]
    assert pick_within_room(candidates, {"A": 1}, 5, 10) == ["a1", "b1", "c1", "b2"]
    assert pick_within_room(candidates, {"A": 0, "B": 1}, 5, 10) == ["b1", "c1"]
    assert pick_within_room(candidates, {}, 1, 10) == ["a1", "b1", "c1"]
    assert pick_within_room(candidates, {}, 5, 2) == ["a1", "a2"]
    assert pick_within_room([], {"A": 3}, 5, 2) == []


def test_a_due_floor_holds_for_the_same_skip_lists_until_it_is_old() -> None:
    hung = SkipLists(["http://hung.test:80"], [], [])
    floor = DueFloor(max_age_ms=1_000)
    assert floor.start(hung, 0) == 0
    floor.found(hung, 500, now_ms=10_000)
    assert floor.start(hung, 10_000) == 500
    floor.found(hung, 700, now_ms=10_400)  # the same chain: its age runs from 10,000
    assert floor.start(hung, 10_999) == 700
    assert floor.start(hung, 11_000) == 0  # old: the next claim reads the whole range
    assert floor.start(hung, 9_000) == 0  # the clock went back
    assert floor.start(SkipLists(["http://other.test:80"], [], []), 10_500) == 0
    assert floor.start(SkipLists([], [], []), 10_500) == 0
    floor.found(SkipLists([], [], []), 900, now_ms=10_500)  # nothing passed over: no floor
    assert floor.start(hung, 10_500) == 0
