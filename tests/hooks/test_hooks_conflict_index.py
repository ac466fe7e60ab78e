"""Hook conflicts found by the conflict index (not by reading the team's hooks), exactly as the
old rule found them, and the match index that follows hook changes without a rebuild."""

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import pytest

from support import fresh_database
from tidings.config import Settings
from tidings.domain.hooks import OutgoingHook
from tidings.domain.teams import Channel, ChannelMember, ChannelType, Team, TeamMember, TeamType
from tidings.domain.users import User
from tidings.errors import BadRequest
from tidings.ids import new_id
from tidings.services import hooks as hook_service
from tidings.services import posts as post_service
from tidings.services.hooks import HookInput
from tidings.services.runtime import Runtime
from tidings.store import hooks as hook_store
from tidings.store import teams as team_store
from tidings.store import users as user_store
from tidings.store.database import Connection, Database
from tidings.store.schema import hook_conflict_keys, wide_hooks
from tidings.webhooks.signing import new_signing_secret

pytestmark = pytest.mark.db

CREATE_CONFLICT = "api.webhook.create_outgoing.intersect.app_error"
UPDATE_CONFLICT = "api.webhook.update_outgoing.intersect.app_error"


@dataclass
class World:
    rt: Runtime
    admin: User
    team: Team
    channel: Channel
    other_channel: Channel


def _channel(team: Team, name: str) -> Channel:
    return Channel(
        id=new_id(),
        create_at=1,
        update_at=1,
        delete_at=0,
        team_id=team.id,
        type=ChannelType.PUBLIC,
        name=name,
        display_name=name,
    )


@pytest.fixture
async def world() -> AsyncIterator[World]:
    """A system admin, a team they belong to and two public channels, made in the store."""
    with fresh_database() as url:
        rt = Runtime(settings=Settings(database_url=url), db=Database.from_url(url))
        admin = User(
            id=new_id(),
            create_at=1,
            update_at=1,
            delete_at=0,
            username="boss",
            email="boss@example.test",
            roles="system_admin system_user",
        )
        team = Team(
            id=new_id(),
            create_at=1,
            update_at=1,
            delete_at=0,
            name="team",
            display_name="Team",
            type=TeamType.OPEN,
        )
        channel, other = _channel(team, "builds"), _channel(team, "other")

        def seed(conn: Connection) -> None:
            user_store.insert_user(conn, admin, "")
            team_store.insert_team(conn, team)
            team_store.upsert_team_member(conn, TeamMember(team.id, admin.id, "team_user"))
            for made in (channel, other):
                team_store.insert_channel(conn, made)
                team_store.insert_channel_member(conn, ChannelMember(made.id, admin.id, ""))

        await rt.db.write(seed)
        try:
            yield World(rt, admin, team, channel, other)
        finally:
            await rt.db.dispose()


async def _create(world: World, **fields: object) -> OutgoingHook:
    values: dict[str, object] = {
        "team_id": world.team.id,
        "channel_id": world.channel.id,
        "callback_urls": ("http://127.0.0.1:9/a",),
        **fields,
    }
    return await hook_service.create_hook(world.rt, world.admin, HookInput(**values))  # type: ignore[arg-type]


async def _refused(world: World, error_id: str, **fields: object) -> None:
    with pytest.raises(BadRequest) as caught:
        await _create(world, **fields)
    assert caught.value.id == error_id


async def _update_refused(
    world: World, hook: OutgoingHook, error_id: str, **fields: object
) -> None:
    with pytest.raises(BadRequest) as caught:
        await hook_service.update_hook(world.rt, world.admin, hook.id, HookInput(**fields))  # type: ignore[arg-type]
    assert caught.value.id == error_id


async def _index_rows(world: World) -> tuple[int, int]:
    """(rows in hook_conflict_keys, rows in wide_hooks)."""

    def count(conn: Connection) -> tuple[int, int]:
        keys = conn.execute(hook_conflict_keys.select()).all()
        wide = conn.execute(wide_hooks.select()).all()
        return len(keys), len(wide)

    return await world.rt.db.read(count)


URL_A, URL_B = "http://127.0.0.1:9/a", "http://127.0.0.1:9/b"


async def test_a_shared_word_and_url_in_one_channel_conflicts(world: World) -> None:
    """Same channel, a shared word and a shared URL: 400; any one of them different: no conflict."""
    await _create(world, trigger_words=("deploy", "ship"), callback_urls=(URL_A, URL_B))
    await _refused(world, CREATE_CONFLICT, trigger_words=("ship",), callback_urls=(URL_B,))
    await _create(world, trigger_words=("ship",), callback_urls=("http://127.0.0.1:9/c",))
    await _create(world, trigger_words=("other",), callback_urls=(URL_A,))
    await _create(world, trigger_words=("ship",), channel_id=world.other_channel.id)
    # Team-wide hooks conflict with team-wide hooks, not with channel hooks.
    await _create(world, trigger_words=("deploy",), channel_id="")
    await _refused(world, CREATE_CONFLICT, trigger_words=("deploy",), channel_id="")
    # No words: never a conflict.
    await _create(world)
    await _create(world)


async def test_a_conflict_wins_over_a_validation_error(world: World) -> None:
    """A hook both conflicting and invalid is refused for the conflict, as before the index."""
    await _create(world, trigger_words=("deploy",))
    await _refused(world, CREATE_CONFLICT, trigger_words=("deploy",), display_name="x" * 65)
    with pytest.raises(BadRequest) as caught:
        await _create(world, trigger_words=("free",), display_name="x" * 65)
    assert caught.value.id == "model.outgoing_hook.is_valid.display_name.app_error"
    # Far more words than a valid hook may have, one of them taken: still the conflict.
    many = (*(f"w{i}" for i in range(2_000)), "deploy")
    await _refused(world, CREATE_CONFLICT, trigger_words=many)


async def test_wide_hooks_conflict_both_ways(world: World) -> None:
    """A hook with more pairs than are stored as keys is compared one by one, in both directions."""
    words = tuple(f"w{i}" for i in range(30))
    urls = tuple(f"http://127.0.0.1:9/{i}" for i in range(10))
    assert hook_store.is_wide(replace(_any_hook(world), trigger_words=words, callback_urls=urls))
    await _create(world, trigger_words=words, callback_urls=urls)
    assert await _index_rows(world) == (0, 1)
    await _refused(world, CREATE_CONFLICT, trigger_words=("w7",), callback_urls=(urls[3],))
    small = await _create(world, trigger_words=("solo",), callback_urls=(URL_A,))
    await _refused(
        world, CREATE_CONFLICT, trigger_words=(*words[1:], "solo"), callback_urls=(*urls, URL_A)
    )
    await _update_refused(world, small, UPDATE_CONFLICT, trigger_words=("w0",), callback_urls=urls)


async def test_updates_and_deletes_move_the_keys(world: World) -> None:
    """A hook moved to another channel, given other words, or deleted frees its old pairs."""
    hook = await _create(world, trigger_words=("deploy",))
    other = await _create(world, trigger_words=("build",))
    await _update_refused(world, other, UPDATE_CONFLICT, trigger_words=("build", "deploy"))
    # Its own pairs never conflict with the hook itself.
    await hook_service.update_hook(world.rt, world.admin, hook.id, HookInput(display_name="again"))
    await hook_service.update_hook(
        world.rt, world.admin, hook.id, HookInput(channel_id=world.other_channel.id)
    )
    await hook_service.update_hook(
        world.rt, world.admin, other.id, HookInput(trigger_words=("build", "deploy"))
    )
    await hook_service.update_hook(world.rt, world.admin, other.id, HookInput(trigger_words=("x",)))
    moved = await _create(world, trigger_words=("build", "deploy"))
    await hook_service.delete_hook(world.rt, world.admin, moved.id)
    await _create(world, trigger_words=("build", "deploy"))
    # Disabling keeps the pairs: a disabled hook still conflicts, as it always did.
    await hook_service.set_hook_enabled(world.rt, world.admin, other.id, False)
    await _refused(world, CREATE_CONFLICT, trigger_words=("x",))


def _any_hook(world: World) -> OutgoingHook:
    return OutgoingHook(
        id=new_id(),
        token=new_id(),
        create_at=1,
        update_at=1,
        delete_at=0,
        creator_id=world.admin.id,
        channel_id=world.channel.id,
        team_id=world.team.id,
        trigger_words=(),
        trigger_when=0,
        callback_urls=(URL_A,),
        signing_secret=new_signing_secret(),
    )


async def test_the_match_index_follows_hook_changes_without_a_rebuild(world: World) -> None:
    """After a post built the index, hook changes update it in place, version by version."""
    rt = world.rt
    await post_service.create_post(rt, world.admin, world.channel.id, "warm up")
    version, built = rt.hook_indexes[world.team.id]
    hook = await _create(world, trigger_words=("deploy",))
    after_create = rt.hook_indexes[world.team.id]
    assert after_create[0] == version + 1
    assert after_create[1] is not built
    assert [m.hook.id for m in after_create[1].match(world.channel.id, "deploy now")] == [hook.id]
    # The post finds the index current: the same object serves it.
    await post_service.create_post(rt, world.admin, world.channel.id, "deploy now")
    assert rt.hook_indexes[world.team.id] is after_create
    await hook_service.update_hook(rt, world.admin, hook.id, HookInput(trigger_words=("ship",)))
    index = rt.hook_indexes[world.team.id][1]
    assert index.match(world.channel.id, "deploy") == []
    assert [m.hook.id for m in index.match(world.channel.id, "ship it")] == [hook.id]
    await hook_service.set_hook_enabled(rt, world.admin, hook.id, False)
    assert rt.hook_indexes[world.team.id][1].match(world.channel.id, "ship it") == []
    await hook_service.set_hook_enabled(rt, world.admin, hook.id, True)
    assert len(rt.hook_indexes[world.team.id][1]) == 1
    await hook_service.delete_hook(rt, world.admin, hook.id)
    assert rt.hook_indexes[world.team.id][0] == version + 5
    assert len(rt.hook_indexes[world.team.id][1]) == 0


async def test_a_change_elsewhere_makes_the_next_post_rebuild(world: World) -> None:
    """A version moved by something else (here: another process) is not patched but rebuilt."""
    rt = world.rt
    hook = await _create(world, trigger_words=("deploy",))
    await post_service.create_post(rt, world.admin, world.channel.id, "warm up")
    version, _ = rt.hook_indexes[world.team.id]

    def disable_elsewhere(conn: Connection) -> None:
        hook_store.disable_hook(conn, hook.id, "by hand", 5)
        team_store.bump_hooks_version(conn, world.team.id)

    await rt.db.write(disable_elsewhere)
    other = await _create(world, trigger_words=("ship",))
    assert rt.hook_indexes[world.team.id][0] == version  # not patched: a version was skipped
    await post_service.create_post(rt, world.admin, world.channel.id, "ship")
    version_now, index = rt.hook_indexes[world.team.id]
    assert version_now == version + 2
    assert [m.hook.id for m in index.match(world.channel.id, "ship")] == [other.id]
    assert index.match(world.channel.id, "deploy") == []


async def test_a_deactivated_creators_hook_stays_out_of_the_index(world: World) -> None:
    """Changing the hook of a deactivated owner does not put it back into the match index."""
    rt = world.rt
    owner = User(
        id=new_id(), create_at=1, update_at=1, delete_at=5, username="gone", email="g@x.test"
    )
    await rt.db.write(lambda conn: user_store.insert_user(conn, owner, ""))
    hook = await _create(world, trigger_words=("deploy",), creator_id=owner.id)
    await post_service.create_post(rt, world.admin, world.channel.id, "warm up")
    assert len(rt.hook_indexes[world.team.id][1]) == 0
    await hook_service.update_hook(rt, world.admin, hook.id, HookInput(trigger_words=("ship",)))
    assert len(rt.hook_indexes[world.team.id][1]) == 0


def _bulk(world: World, count: int) -> list[OutgoingHook]:
    base = _any_hook(world)
    return [
        replace(
            base,
            id=new_id(),
            channel_id=(world.channel.id, world.other_channel.id, "")[i % 3],
            trigger_words=(f"word{i}", "shared"),
            callback_urls=(f"http://127.0.0.1:9/{i}",),
        )
        for i in range(count)
    ]


async def _median_create_seconds(world: World, label: str) -> float:
    timings = []
    for i in range(9):
        started = time.perf_counter()
        url = f"http://127.0.0.1:9/{label}{i}"
        await _create(world, trigger_words=(f"{label}{i}", "shared"), callback_urls=(url,))
        timings.append(time.perf_counter() - started)
    return sorted(timings)[len(timings) // 2]


async def test_creating_a_hook_costs_the_same_among_ten_thousand(world: World) -> None:
    """Creating a hook in a team of 10,000 hooks (all sharing a word) costs what it did in an
    empty one: no conflict check reads the team's hooks."""
    rt = world.rt
    await post_service.create_post(rt, world.admin, world.channel.id, "warm up")
    first = await _median_create_seconds(world, "first")

    def load(conn: Connection) -> None:
        hook_store.insert_hooks(conn, _bulk(world, 10_000))
        team_store.bump_hooks_version(conn, world.team.id)

    await rt.db.write(load)
    await post_service.create_post(rt, world.admin, world.channel.id, "warm up")
    among = await _median_create_seconds(world, "later")
    # Generous for a shared machine; reading every hook made it over 50 times slower.
    assert among < 3 * first + 0.002, (first, among)
