"""Receivers cannot hurt the server: hanging ones time out without slowing posts, loopback
addresses are refused until allow-listed, redirects are not followed, 410 disables the hook."""

import socket
import time
from collections.abc import Iterator

import pytest
from hooks_support import (
    Scene,
    attempt_rows,
    delivery_rows,
    finished_deliveries,
    make_hook,
    send,
    service_settings,
    webhook_posts,
)

from support import Api, Receiver, ServerThread, running_receiver

pytestmark = [pytest.mark.db, pytest.mark.usefixtures("no_retries")]


@pytest.fixture
def hanging() -> Iterator[Receiver]:
    receiver = Receiver(cancel_on_disconnect=True)
    receiver.delay_seconds = 4.0
    yield receiver
    receiver.close()


def test_a_hanging_receiver_times_out_and_posting_stays_fast(
    server: ServerThread, scene: Scene, hanging: Receiver, admin: Api
) -> None:
    """OutgoingIntegrationRequestsTimeout cuts a hanging request; posts answer meanwhile at once."""
    make_hook(scene.owner, scene.team, [hanging.url], channel_id=scene.channel["id"])
    with service_settings(admin, OutgoingIntegrationRequestsTimeout=1):
        first = send(scene.poster, scene.channel, "first")
        hanging.wait_for(1, timeout=5)
        latencies = []
        for i in range(3):
            started = time.monotonic()
            send(scene.poster, scene.channel, f"while hanging {i}")
            latencies.append(time.monotonic() - started)
        assert max(latencies) < 0.5, latencies
        (delivery,) = finished_deliveries(server, timeout=5, post_id=first["id"])
    assert delivery["status"] == "failed"
    assert delivery["last_error_kind"] == "timeout"
    (attempt,) = attempt_rows(server, delivery["id"])
    assert 900 <= attempt["duration_ms"] < 3000
    assert "OutgoingIntegrationRequestsTimeout" in attempt["error_message"]
    assert webhook_posts(scene.poster, scene.channel["id"]) == []


@pytest.fixture
def slow() -> Iterator[Receiver]:
    """Answers after 3 s (and stops when the client gives up)."""
    receiver = Receiver(cancel_on_disconnect=True)
    receiver.delay_seconds = 3.0
    yield receiver
    receiver.close()


def test_a_hooks_own_timeout_cuts_while_the_default_waits(
    server: ServerThread, scene: Scene, hanging: Receiver, slow: Receiver, admin: Api
) -> None:
    """timeout_seconds=1 cuts a receiver that answers after 3 s at about 1 s (a timeout in the
    log); a hook left at 0 waits for the server's 10 s and gets the answer at about 3 s."""
    hanging.delay_seconds = 3.0
    with service_settings(admin, OutgoingIntegrationRequestsTimeout=10):
        cut = make_hook(
            scene.owner,
            scene.team,
            [hanging.url],
            channel_id=scene.channel["id"],
            timeout_seconds=1,
        )
        kept = make_hook(scene.owner, scene.team, [slow.url], channel_id=scene.channel["id"])
        assert (cut["timeout_seconds"], kept["timeout_seconds"]) == (1, 0)
        post = send(scene.poster, scene.channel, "go")
        rows = finished_deliveries(server, timeout=15, count=2, post_id=post["id"])
    by_hook = {row["hook_id"]: row for row in rows}

    assert by_hook[cut["id"]]["status"] == "failed"
    assert by_hook[cut["id"]]["last_error_kind"] == "timeout"
    (attempt,) = attempt_rows(server, by_hook[cut["id"]]["id"])
    assert attempt["error_kind"] == "timeout"
    assert 900 <= attempt["duration_ms"] < 2500, attempt["duration_ms"]
    assert "within 1 s" in attempt["error_message"]

    assert by_hook[kept["id"]]["status"] == "succeeded"
    (attempt,) = attempt_rows(server, by_hook[kept["id"]]["id"])
    assert attempt["status_code"] == 200
    assert 2900 <= attempt["duration_ms"] < 9000, attempt["duration_ms"]
    assert [p["message"] for p in webhook_posts(scene.poster, scene.channel["id"])] == ["ok"]


def _loopback_hostname() -> str:
    """A name other than localhost that resolves to a loopback address on this machine."""
    name = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, 80, socket.AF_INET)}
    except OSError:
        addresses = set()
    if name == "localhost" or not addresses or not all(a.startswith("127.") for a in addresses):
        pytest.skip("this machine's hostname does not resolve to loopback")
    return name


@pytest.mark.parametrize(
    ("host", "refusing", "admitting"),
    [
        ("127.0.0.1", ["", "localhost", "10.0.0.0/8"], "127.0.0.1"),
        ("localhost", ["", "127.0.0.1"], "localhost"),
        ("localhost", [], "127.0.0.0/8"),
        ("<hostname>", ["", "127.0.0.1", "localhost"], "127.0.0.1/32"),
    ],
)
def test_loopback_is_refused_until_allow_listed(
    server: ServerThread,
    scene: Scene,
    receiver: Receiver,
    admin: Api,
    host: str,
    refusing: list[str],
    admitting: str,
) -> None:
    """A loopback callback fails as forbidden_address, never reaching the receiver, until
    AllowedUntrustedInternalConnections names its host or a CIDR holding its address."""
    if host == "<hostname>":
        host = _loopback_hostname()
    url = receiver.url.replace("127.0.0.1", host)
    make_hook(scene.owner, scene.team, [url], channel_id=scene.channel["id"])
    for allowlist in refusing:
        with service_settings(admin, AllowedUntrustedInternalConnections=allowlist):
            post = send(scene.poster, scene.channel, f"refused with {allowlist!r}")
            (delivery,) = finished_deliveries(server, post_id=post["id"])
        assert delivery["status"] == "failed", allowlist
        assert delivery["last_error_kind"] == "forbidden_address"
        assert "AllowedUntrustedInternalConnections" in delivery["last_error"]
    assert receiver.requests == []
    with service_settings(admin, AllowedUntrustedInternalConnections=admitting):
        post = send(scene.poster, scene.channel, "admitted")
        (delivery,) = finished_deliveries(server, post_id=post["id"])
    assert delivery["status"] == "succeeded"
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_are_not_followed(
    server: ServerThread, scene: Scene, receiver: Receiver, status: int
) -> None:
    """A 3xx is a failed attempt whose log names the redirect; its target sees nothing."""
    with running_receiver() as target:
        receiver.status = status
        receiver.headers = {"Location": target.url}
        receiver.reply = {"text": "should not post"}
        make_hook(scene.owner, scene.team, [receiver.url], channel_id=scene.channel["id"])
        post = send(scene.poster, scene.channel, "go")
        (delivery,) = finished_deliveries(server, post_id=post["id"])
        assert target.requests == []
    assert delivery["status"] == "failed"
    assert delivery["last_error_kind"] == "redirect"
    assert "redirect not followed" in delivery["last_error"]
    assert len(receiver.requests) == 1
    assert webhook_posts(scene.poster, scene.channel["id"]) == []


def test_410_gone_disables_the_hook_until_re_enabled(
    server: ServerThread, scene: Scene, receiver: Receiver
) -> None:
    """A 410 fails the delivery and disables the hook (with a reason); re-enabling restores it."""
    hook = make_hook(scene.owner, scene.team, [receiver.url], channel_id=scene.channel["id"])
    receiver.status = 410
    post = send(scene.poster, scene.channel, "go")
    (delivery,) = finished_deliveries(server, post_id=post["id"])
    assert delivery["status"] == "failed"
    path = f"/hooks/outgoing/{hook['id']}"

    def disabled() -> bool:
        return scene.owner.get(path)["enabled"] is False

    deadline = time.monotonic() + 5
    while not disabled():
        assert time.monotonic() < deadline, "the hook was not disabled"
        time.sleep(0.05)
    assert "410" in scene.owner.get(path)["disabled_reason"]
    assert delivery_rows(server, post_id=send(scene.poster, scene.channel, "again")["id"]) == []
    enabled = scene.owner.post(f"{path}/enable", expect=200)
    assert enabled["enabled"] is True
    assert enabled["disabled_reason"] == ""
    receiver.status = 200
    post = send(scene.poster, scene.channel, "back")
    (delivery,) = finished_deliveries(server, post_id=post["id"])
    assert delivery["status"] == "succeeded"
