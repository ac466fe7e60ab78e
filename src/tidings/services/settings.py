"""Reading and changing the System Console configuration."""

import copy
from collections.abc import Callable

from tidings.domain import server_config
from tidings.domain.permissions import MANAGE_SYSTEM, can_manage_system
from tidings.domain.server_config import ConfigDocument
from tidings.domain.users import User
from tidings.errors import permission_error
from tidings.services.runtime import Runtime
from tidings.store.database import Connection, IntegrityError
from tidings.store.settings import load_config, save_config


async def get_config(rt: Runtime, actor: User) -> ConfigDocument:
    if not can_manage_system(actor):
        raise permission_error(actor.id, MANAGE_SYSTEM)
    return copy.deepcopy(await rt.config())


async def patch_config(rt: Runtime, actor: User | None, patch: object) -> ConfigDocument:
    """Merge, validate, save. ``actor`` None means the local CLI, which is trusted."""
    return await _change(rt, actor, lambda current: server_config.merge(current, patch))


async def replace_config(rt: Runtime, actor: User | None, document: object) -> ConfigDocument:
    """The full update: every setting the document leaves out goes back to its default."""
    return await _change(rt, actor, lambda _current: server_config.replace(document))


async def _change(
    rt: Runtime, actor: User | None, change: Callable[[ConfigDocument], ConfigDocument]
) -> ConfigDocument:
    if actor is not None and not can_manage_system(actor):
        raise permission_error(actor.id, MANAGE_SYSTEM)
    try:
        changed = await _change_and_save(rt, change)
    except IntegrityError:
        # The very first save raced another one; the document exists now, so change that.
        changed = await _change_and_save(rt, change)
    rt.forget_config()
    return changed


async def _change_and_save(
    rt: Runtime, change: Callable[[ConfigDocument], ConfigDocument]
) -> ConfigDocument:
    now = rt.clock.now_ms()

    def work(conn: Connection) -> ConfigDocument:
        current = server_config.with_defaults(load_config(conn, for_update=True))
        changed = change(current)
        save_config(conn, changed, now)
        return changed

    return await rt.db.write(work)
