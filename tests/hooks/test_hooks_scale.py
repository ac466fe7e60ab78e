"""A team with 10,000 hooks: a post still fires exactly the right one, without a slow post API."""

import time

import pytest
from hooks_support import Scene, delivery_rows, form, send

from support import Receiver, ServerThread
from tidings.domain.hooks import OutgoingHook
from tidings.ids import new_id
from tidings.store.database import Connection
from tidings.store.hooks import insert_hooks
from tidings.store.teams import bump_hooks_version
from tidings.webhooks.signing import new_signing_secret

pytestmark = pytest.mark.db

HOOKS = 10_000


def _hooks(scene: Scene, elsewhere_id: str, url: str) -> list[OutgoingHook]:
    """A mix: team-wide exact words, prefix words, channel hooks here and in another channel."""
    now = int(time.time() * 1000)
    made = []
    for i in range(HOOKS):
        kind = i % 4
        made.append(
            OutgoingHook(
                id=new_id(),
                token=new_id(),
                create_at=now,
                update_at=now,
                delete_at=0,
                creator_id=scene.owner.user["id"],
                channel_id={0: "", 1: "", 2: scene.channel["id"], 3: elsewhere_id}[kind],
                team_id=scene.team["id"],
                trigger_words=(f"w{i}", f"alt{i}"),
                trigger_when=1 if kind == 1 else 0,
                callback_urls=(f"{url}?i={i}",),
                signing_secret=new_signing_secret(),
            )
        )
    return made


def _scan(hooks: list[OutgoingHook], channel_id: str, message: str) -> set[str]:
    """The slow, obvious matcher (REF §2.2) as an oracle for the indexed one."""
    first = message.split(maxsplit=1)[0] if message.split() else ""
    found = set()
    for hook in hooks:
        if hook.channel_id not in ("", channel_id):
            continue
        if hook.trigger_when == 0 and first in hook.trigger_words:
            found.add(hook.id)
        if hook.trigger_when == 1 and any(first.startswith(w) for w in hook.trigger_words):
            found.add(hook.id)
    return found


def test_ten_thousand_hooks_still_fire_the_right_one(
    server: ServerThread, scene: Scene, receiver: Receiver
) -> None:
    """Exact, prefix and channel-bound words among 10,000 hooks each fire only their own hook."""
    elsewhere = scene.owner.post(
        "/channels",
        {"team_id": scene.team["id"], "name": "elsewhere", "display_name": "E", "type": "O"},
        expect=201,
    )
    hooks = _hooks(scene, elsewhere["id"], receiver.url)

    def insert(conn: Connection) -> None:
        insert_hooks(conn, hooks)
        bump_hooks_version(conn, scene.team["id"])

    server.run(server.runtime.db.write(insert), timeout=60)

    cases = {
        "w4444 exact": 4444,  # team-wide, equals
        "w2221zzz prefix": 2221,  # team-wide, starts with
        "alt6666 channel": 6666,  # bound to this channel
        # None: the oracle alone decides (w7779 is bound to the other channel, but shorter
        # prefix words such as w77 fire team-wide).
        "w7779 other channel": None,
        "w9999 xyz": None,
        "nothing": None,
    }
    send(scene.poster, scene.channel, "warm the index")
    fired: set[str] = set()
    for message, index in cases.items():
        expected = _scan(hooks, scene.channel["id"], message)
        assert expected == ({hooks[index].id} if index is not None else expected)
        started = time.monotonic()
        post = send(scene.poster, scene.channel, message)
        elapsed = time.monotonic() - started
        assert elapsed < 0.5, f"posting took {elapsed:.3f} s with {HOOKS} hooks"
        assert {r["hook_id"] for r in delivery_rows(server, post_id=post["id"])} == expected
        fired |= expected
    requests = receiver.wait_for(len(fired))
    by_id = {hook.id: i for i, hook in enumerate(hooks)}
    assert sorted(int(r.path.rsplit("=", 1)[1]) for r in requests) == sorted(
        by_id[hook_id] for hook_id in fired
    )
    assert {"w4444", "w2221", "alt6666"} <= {form(r.body)["trigger_word"] for r in requests}
