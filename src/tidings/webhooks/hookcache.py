"""The worker's cache of hooks and their creators.

Imports ``tidings.store`` and ``tidings.domain``; used only by ``tidings.webhooks.worker``.
"""

from functools import partial

from tidings.clock import Clock
from tidings.domain.hooks import OutgoingHook
from tidings.domain.users import User
from tidings.store import hooks as hook_store
from tidings.store import users as user_store
from tidings.store.database import Connection, Database

HOOK_CACHE_SECONDS = 1.0
HOOK_CACHE_SIZE = 10_000


class HookCache:
    """Hooks and their creators, re-read at most once a second (like the configuration).

    A claim would otherwise cost two more queries; an edit or a disable still reaches the
    worker within a second. A regenerated token and secret cannot wait that second: a body
    built with the new token must be signed with the new secret, so the sender asks for a
    :meth:`reload` when a body's token is not the cached one.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._hooks: dict[str, tuple[float, OutgoingHook | None]] = {}
        self._creators: dict[str, User] = {}

    async def load(
        self, db: Database, hook_ids: set[str]
    ) -> tuple[dict[str, OutgoingHook], dict[str, User]]:
        now = self._clock.monotonic()
        stale = {
            i
            for i in hook_ids
            if now - self._hooks.get(i, (float("-inf"), None))[0] >= HOOK_CACHE_SECONDS
        }
        if stale:
            found, creators = await db.read(partial(_hooks_and_creators, hook_ids=stale))
            self._creators.update(creators)
            for hook_id in stale:
                self._hooks[hook_id] = (now, found.get(hook_id))
            if len(self._hooks) > HOOK_CACHE_SIZE:
                self._hooks = {
                    k: v for k, v in self._hooks.items() if now - v[0] < HOOK_CACHE_SECONDS
                }
        hooks = {i: h for i in hook_ids if (h := self._hooks[i][1]) is not None}
        creators = {
            h.creator_id: self._creators[h.creator_id]
            for h in hooks.values()
            if h.creator_id in self._creators
        }
        return hooks, creators

    async def reload(self, db: Database, hook_id: str) -> tuple[OutgoingHook | None, User | None]:
        """Read one hook and its creator now, whatever the cache holds: for a new token, and
        before a final "not sent" (the owner may have been reactivated a moment ago)."""
        found, creators = await db.read(partial(_hooks_and_creators, hook_ids={hook_id}))
        hook = found.get(hook_id)
        creator = creators.get(hook.creator_id) if hook is not None else None
        self._hooks[hook_id] = (self._clock.monotonic(), hook)
        if creator is not None:
            self._creators[creator.id] = creator
        return hook, creator


def _hooks_and_creators(
    conn: Connection, hook_ids: set[str]
) -> tuple[dict[str, OutgoingHook], dict[str, User]]:
    """The hooks (deleted ones too) and their creators, read in one snapshot."""
    found = hook_store.find_hooks(conn, hook_ids)
    return found, user_store.find_users(conn, {h.creator_id for h in found.values()})
