"""The stored run-time configuration document (System Console settings)."""

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.store.schema import system_config

_KEY = "config"


async def load_config(conn: AsyncConnection) -> Any:
    """The stored document, or None before the first save."""
    return (
        await conn.execute(select(system_config.c.value).where(system_config.c.key == _KEY))
    ).scalar()


async def save_config(conn: AsyncConnection, document: dict[str, Any], at: int) -> None:
    result = await conn.execute(
        update(system_config)
        .where(system_config.c.key == _KEY)
        .values(value=document, update_at=at)
    )
    if result.rowcount == 0:
        await conn.execute(system_config.insert().values(key=_KEY, value=document, update_at=at))
