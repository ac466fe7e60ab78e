"""Reading and changing the System Console configuration."""

import copy

from sqlalchemy.exc import IntegrityError

from tidings.domain import server_config
from tidings.domain.permissions import MANAGE_SYSTEM, can_manage_system
from tidings.domain.server_config import ConfigDocument
from tidings.domain.users import User
from tidings.errors import permission_error
from tidings.services.runtime import Runtime
from tidings.store.settings import load_config, save_config


async def get_config(rt: Runtime, actor: User) -> ConfigDocument:
    if not can_manage_system(actor):
        raise permission_error(actor.id, MANAGE_SYSTEM)
    return copy.deepcopy(await rt.config())


async def patch_config(rt: Runtime, actor: User | None, patch: object) -> ConfigDocument:
    """Merge, validate, save. ``actor`` None means the local CLI, which is trusted."""
    if actor is not None and not can_manage_system(actor):
        raise permission_error(actor.id, MANAGE_SYSTEM)
    try:
        merged = await _merge_and_save(rt, patch)
    except IntegrityError:
        # The very first save raced another one; the document exists now, so merge into it.
        merged = await _merge_and_save(rt, patch)
    rt.forget_config()
    return merged


async def _merge_and_save(rt: Runtime, patch: object) -> ConfigDocument:
    async with rt.db.transaction() as conn:
        current = server_config.with_defaults(await load_config(conn, for_update=True))
        merged = server_config.merge(current, patch)
        await save_config(conn, merged, rt.clock.now_ms())
    return merged
