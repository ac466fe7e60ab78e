"""Alembic migrations from an empty database produce exactly ``tidings.store.schema``."""

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from support import fresh_database
from tidings.store.database import create_engine
from tidings.store.schema import metadata

pytestmark = pytest.mark.db


def _differences(url: str) -> tuple[list[Any], set[str]]:
    def compare(connection: Connection) -> tuple[list[Any], set[str]]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        return compare_metadata(context, metadata), set(inspect(connection).get_table_names())

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return compare(conn)
    finally:
        engine.dispose()


def _is_backfill_default(difference: Any) -> bool:
    """A server default that only the database has, on a column schema.py fills from Python.

    A migration that adds a NOT NULL column to a table that may hold rows gives it a server
    default to backfill with; schema.py, which always inserts whole rows, declares none. That is
    the one difference tolerated: a default schema.py declares must exist and match.
    """
    changes = difference if isinstance(difference, list) else [difference]
    for change in changes:
        if change[0] != "modify_default":
            return False
        _, _, table, column, _, database_default, declared_default = change
        declared = metadata.tables[table].c[column]
        if declared_default is not None or database_default is None or declared.default is None:
            return False
    return True


def test_migrations_build_exactly_the_declared_schema() -> None:
    """Migrating an empty database (SQLite or PostgreSQL) yields exactly schema.py."""
    with fresh_database() as url:
        differences, tables = _differences(url)
    assert [d for d in differences if not _is_backfill_default(d)] == []
    assert set(metadata.tables) | {"alembic_version"} == tables
