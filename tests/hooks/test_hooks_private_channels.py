"""Hooks that watch private channels (issue #13 item 1), end to end with real receivers: the
System Console switch, the creator's membership (a leaving creator stops the hook, saying why;
rejoining resumes it), team-wide hooks kept out, and queued deliveries of a stopped hook.

Whether a post fired is read from the outbox: its delivery rows commit with the post, so "no
rows" right after the API answered means "never fires"."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hooks_support import (
    NO_RETRIES,
    Cast,
    delivery_rows,
    error_of,
    finished_deliveries,
    form,
    join_channel,
    make_hook,
    send,
    service_settings,
)

from support import Api, Factory, Receiver, ServerThread, wait_until
from tidings.store import teams as team_store

pytestmark = pytest.mark.db

SWITCH = "EnableOutgoingWebhooksInPrivateChannels"


@dataclass
class Secret:
    """A team with a private channel: its creator owns the hooks, a member posts."""

    team: dict[str, Any]
    channel: dict[str, Any]
    owner: Api
    poster: Api
    outsider: Api  # in the team, not in the channel


@pytest.fixture
def private_on(webhooks_on: Api) -> Iterator[Api]:
    """The switch on, and team members (not only admins) allowed to make hooks."""
    with service_settings(webhooks_on, **{SWITCH: True, "EnableMemberOutgoingWebhooks": True}):
        yield webhooks_on


@pytest.fixture
def secret(factory: Factory, cast: Cast, private_on: Api) -> Secret:
    team = factory.team(cast.owner)
    channel = factory.channel(team, cast.owner, private=True)
    factory.join(team, cast.poster)
    join_channel(factory.admin, channel, cast.poster)
    outsider = factory.user()
    factory.join(team, outsider)
    return Secret(team, channel, cast.owner, cast.poster, outsider)


def fired(server: ServerThread, post: dict[str, Any]) -> list[str]:
    return [row["hook_id"] for row in delivery_rows(server, post_id=post["id"])]


def leave(api: Api, channel: dict[str, Any], user: Api) -> None:
    api.delete(f"/channels/{channel['id']}/members/{user.user['id']}")


def channel_hook(secret: Secret, receiver: Receiver, **fields: Any) -> dict[str, Any]:
    return make_hook(
        secret.owner,
        secret.team,
        [receiver.url],
        channel_id=secret.channel["id"],
        display_name="Build bot",
        **fields,
    )


def test_a_private_channel_hook_fires_for_members_posts(
    server: ServerThread, secret: Secret, receiver: Receiver
) -> None:
    """With the switch on, a member's hook on their private channel fires for members' posts,
    and the receiver gets the channel's own name in the body."""
    hook = channel_hook(secret, receiver, trigger_words=["#build"])
    assert hook["stopped_reason"] == ""
    post = send(secret.poster, secret.channel, "#build main")
    assert fired(server, post) == [hook["id"]]
    (request,) = receiver.wait_for(1)
    body = form(request.body)
    assert (body["channel_id"], body["channel_name"]) == (
        secret.channel["id"],
        secret.channel["name"],
    )
    assert body["post_id"] == post["id"]
    assert fired(server, send(secret.poster, secret.channel, "chatter")) == []


def test_the_hook_stops_when_its_creator_leaves_and_resumes_on_rejoin(
    server: ServerThread, secret: Secret, receiver: Receiver, admin: Api
) -> None:
    """Leaving stops the creator's hook there (GET says why; posts fire nothing); being added
    back resumes it. Removal by someone else stops it as well."""
    hook = channel_hook(secret, receiver)
    path = f"/hooks/outgoing/{hook['id']}"
    assert len(fired(server, send(secret.poster, secret.channel, "before"))) == 1

    leave(secret.owner, secret.channel, secret.owner)
    reason = f"@{secret.owner.user['username']} is no longer a member of ~{secret.channel['name']}"
    stopped = secret.owner.get(path)
    assert stopped["stopped_reason"] == reason
    assert stopped["enabled"] is True
    assert fired(server, send(secret.poster, secret.channel, "while away")) == []

    join_channel(admin, secret.channel, secret.owner)
    assert secret.owner.get(path)["stopped_reason"] == ""
    assert fired(server, send(secret.poster, secret.channel, "back")) == [hook["id"]]

    # Removed by a member of the channel (the poster is no admin; the system admin is).
    admin.delete(f"/channels/{secret.channel['id']}/members/{secret.owner.user['id']}")
    assert secret.owner.get(path)["stopped_reason"] == reason
    assert fired(server, send(secret.poster, secret.channel, "removed")) == []
    join_channel(admin, secret.channel, secret.owner)
    assert fired(server, send(secret.poster, secret.channel, "again")) == [hook["id"]]
    receiver.wait_for(3)


def test_a_stopped_hook_stays_editable_and_stopped(
    server: ServerThread, secret: Secret, receiver: Receiver, admin: Api, factory: Factory
) -> None:
    """The creator who left may still edit their hook (it stays stopped); moving it to a public
    channel clears the stop, moving it back into a private channel they are not in is refused."""
    hook = channel_hook(secret, receiver)
    path = f"/hooks/outgoing/{hook['id']}"
    leave(secret.owner, secret.channel, secret.owner)
    edited = secret.owner.put(path, {"display_name": "Renamed"})
    assert edited["display_name"] == "Renamed"
    assert edited["stopped_reason"].startswith(f"@{secret.owner.user['username']} ")
    assert fired(server, send(secret.poster, secret.channel, "still stopped")) == []

    public = factory.channel(secret.team, secret.owner)
    moved = secret.owner.put(path, {"channel_id": public["id"]})
    assert moved["stopped_reason"] == ""
    assert fired(server, send(secret.owner, public, "public now")) == [hook["id"]]
    # Back into the private channel the creator left: refused as for any channel they are not
    # in (a system admin sees it, so gets the 403 rather than the 404).
    assert error_of(admin, "PUT", path, {"channel_id": secret.channel["id"]}) == (
        403,
        "api.webhook.create_outgoing.not_open.app_error",
    )
    assert error_of(secret.owner, "PUT", path, {"channel_id": secret.channel["id"]}) == (
        404,
        "app.channel.get.existing.app_error",
    )
    receiver.wait_for(1)


def test_the_switch_off_refuses_creation_and_stops_firing(
    server: ServerThread, secret: Secret, receiver: Receiver, admin: Api
) -> None:
    """With the switch off a private channel is refused as before the feature (403, the same
    ids), and a hook made while it was on fires no more, with no change to the hook."""
    hook = channel_hook(secret, receiver)
    with service_settings(admin, **{SWITCH: False}):
        body = {
            "team_id": secret.team["id"],
            "channel_id": secret.channel["id"],
            "callback_urls": [receiver.url],
        }
        assert error_of(secret.owner, "POST", "/hooks/outgoing", body) == (
            403,
            "api.outgoing_webhook.disabled.app_error",
        )
        assert error_of(
            secret.owner, "PUT", f"/hooks/outgoing/{hook['id']}", {"display_name": "x"}
        ) == (403, "api.webhook.create_outgoing.not_open.app_error")
        assert fired(server, send(secret.poster, secret.channel, "switched off")) == []
        assert secret.owner.get(f"/hooks/outgoing/{hook['id']}")["stopped_reason"] == ""
    assert fired(server, send(secret.poster, secret.channel, "switched on")) == [hook["id"]]
    receiver.wait_for(1)


def test_a_creator_outside_the_channel_is_refused(
    server: ServerThread, secret: Secret, receiver: Receiver, admin: Api
) -> None:
    """A team member outside the private channel finds it missing (no oracle); a system admin,
    who may read it but is not in it, gets the 403 of a channel no hook may watch; naming as
    creator someone outside it is refused the same way."""
    body = {
        "team_id": secret.team["id"],
        "channel_id": secret.channel["id"],
        "callback_urls": [receiver.url],
    }
    assert error_of(secret.outsider, "POST", "/hooks/outgoing", body) == (
        404,
        "app.channel.get.existing.app_error",
    )
    forbidden = (403, "api.outgoing_webhook.disabled.app_error")
    assert error_of(admin, "POST", "/hooks/outgoing", body) == forbidden
    for_outsider = {**body, "creator_id": secret.outsider.user["id"]}
    assert error_of(admin, "POST", "/hooks/outgoing", for_outsider) == forbidden
    for_member = admin.post(
        "/hooks/outgoing", {**body, "creator_id": secret.poster.user["id"]}, expect=201
    )
    assert for_member["creator_id"] == secret.poster.user["id"]
    assert fired(server, send(secret.owner, secret.channel, "hello")) == [for_member["id"]]
    # A plain member of the team and channel (no admin) makes their own.
    own = secret.poster.post("/hooks/outgoing", {**body, "trigger_words": ["#mine"]}, expect=201)
    assert sorted(fired(server, send(secret.owner, secret.channel, "#mine"))) == sorted(
        [for_member["id"], own["id"]]
    )
    receiver.wait_for(3)


def test_team_wide_hooks_never_fire_in_a_private_channel(
    server: ServerThread, secret: Secret, receiver: Receiver
) -> None:
    """A trigger-word hook with no channel fires in the team's public channels only, even with
    the switch on; DMs fire nothing either."""
    team_wide = make_hook(secret.owner, secret.team, [receiver.url], trigger_words=["#deploy"])
    assert fired(server, send(secret.poster, secret.channel, "#deploy now")) == []
    direct = secret.owner.post(
        "/channels/direct", [secret.owner.user["id"], secret.poster.user["id"]], expect=201
    )
    assert fired(server, send(secret.owner, direct, "#deploy dm")) == []
    town = secret.owner.get(f"/teams/{secret.team['id']}/channels/name/town-square")
    assert fired(server, send(secret.owner, town, "#deploy public")) == [team_wide["id"]]
    # The private channel's own trigger-word hook does fire there.
    own = channel_hook(secret, receiver, trigger_words=["#deploy"])
    assert fired(server, send(secret.poster, secret.channel, "#deploy now")) == [own["id"]]
    receiver.wait_for(2)


def test_queued_deliveries_of_a_stopped_hook_are_not_sent(
    server: ServerThread, secret: Secret, receiver: Receiver, admin: Api
) -> None:
    """A delivery waiting for its retry when the creator leaves is answered ``not_sent``: the
    receiver hears nothing more."""
    hook = channel_hook(secret, receiver)
    receiver.status = 500
    with service_settings(admin, OutgoingWebhookRetryScheduleSeconds=[2]):
        post = send(secret.poster, secret.channel, "fails once")
        receiver.wait_for(1)
        wait_until(
            lambda: [r for r in delivery_rows(server, post_id=post["id"]) if r["attempt_count"]],
            timeout=10,
        )
        leave(secret.owner, secret.channel, secret.owner)
        (row,) = finished_deliveries(server, timeout=15, post_id=post["id"])
    assert (row["status"], row["last_error_kind"]) == ("failed", "not_sent")
    assert "no longer a member" in row["last_error"]
    assert len(receiver.requests) == 1
    assert secret.owner.get(f"/hooks/outgoing/{hook['id']}")["enabled"] is True


def test_the_index_checks_the_creators_membership_itself(
    server: ServerThread, secret: Secret, receiver: Receiver
) -> None:
    """A private channel's hook whose creator is not a member never fires, even if nothing
    stopped it (a membership gone behind the services' back): the rebuilt index asks."""
    hook = channel_hook(secret, receiver)
    assert fired(server, send(secret.poster, secret.channel, "first")) == [hook["id"]]

    async def drop_membership() -> None:
        def work(conn: Any) -> None:
            team_store.delete_channel_member(conn, secret.channel["id"], secret.owner.user["id"])
            team_store.bump_hooks_version(conn, secret.team["id"])

        await server.runtime.db.write(work)

    server.run(drop_membership())
    assert secret.owner.get(f"/hooks/outgoing/{hook['id']}")["stopped_reason"] == ""
    assert fired(server, send(secret.poster, secret.channel, "second")) == []
    receiver.wait_for(1)


def test_a_stopped_hook_is_not_redelivered_until_it_runs_again(
    server: ServerThread, secret: Secret, receiver: Receiver, admin: Api
) -> None:
    """While the creator is away, a redelivery (single or bulk) is refused with 400 saying why,
    and the failed delivery stays as it was; back in the channel, it goes again."""
    hook = channel_hook(secret, receiver)
    receiver.status = 500
    with service_settings(admin, OutgoingWebhookRetryScheduleSeconds=NO_RETRIES):
        post = send(secret.poster, secret.channel, "fails")
        (row,) = finished_deliveries(server, post_id=post["id"])
    assert row["status"] == "failed"
    receiver.status = 200
    leave(secret.owner, secret.channel, secret.owner)
    single = f"/hooks/outgoing/{hook['id']}/deliveries/{row['id']}/redeliver"
    bulk = f"/hooks/outgoing/{hook['id']}/redeliver"
    stopped = (400, "api.webhooks.redeliver.stopped.app_error")
    assert error_of(secret.owner, "POST", single) == stopped
    assert error_of(secret.owner, "POST", bulk, {"since": 0, "status": "failed"}) == stopped
    response = secret.owner.request("POST", bulk, {"since": 0, "status": "failed"})
    assert "no longer a member" in response.json()["message"]
    assert delivery_rows(server, id=row["id"])[0]["status"] == "failed"
    assert len(receiver.requests) == 1

    join_channel(admin, secret.channel, secret.owner)
    assert secret.owner.post(bulk, {"since": 0, "status": "failed"}) == {"count": 1, "more": False}
    (again,) = finished_deliveries(server, timeout=10, id=row["id"])
    assert again["status"] == "succeeded"
    assert len(receiver.wait_for(2)) == 2
