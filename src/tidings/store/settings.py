"""The stored run-time configuration document (System Console settings)."""

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from tidings.store.schema import system_config

_KEY = "config"


def load_config(conn: Connection, *, for_update: bool = False) -> Any:
    """The stored document, or None before the first save. ``for_update`` locks the row until
    the transaction ends (PostgreSQL; SQLite's writer lock already serialises), so concurrent
    read-merge-save patches cannot lose each other's changes."""
    query = select(system_config.c.value).where(system_config.c.key == _KEY)
    if for_update:
        query = query.with_for_update()
    return (conn.execute(query)).scalar()


def save_config(conn: Connection, document: dict[str, Any], at: int) -> None:
    result = conn.execute(
        update(system_config)
        .where(system_config.c.key == _KEY)
        .values(value=document, update_at=at)
    )
    if result.rowcount == 0:
        conn.execute(system_config.insert().values(key=_KEY, value=document, update_at=at))
