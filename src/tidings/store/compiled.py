"""SQLAlchemy statements compiled once for the raw ``sqlite3`` connection of ``sqlite_batch``.

Why: the worker records results many times a second, and SQLAlchemy's per-execution work (cache
key, parameter processing, result wrapping) cost more than SQLite itself. Compiling the same
Core statement once to SQLite's ``?`` style keeps the SQL defined by the schema in one place, while
each execution is a plain ``executemany`` on the driver. Only what the driver cannot bind itself
is converted here: JSON columns are serialised as SQLAlchemy's JSON type would (``json.dumps``).
"""

import json
import operator
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import JSON, Table
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql import Executable

_DIALECT = sqlite.dialect(paramstyle="qmark")


class CompiledStatement:
    """One INSERT or UPDATE in SQLite's positional form, with its parameter order."""

    def __init__(self, statement: Executable, json_columns: Iterable[str] = ()) -> None:
        compiled = statement.compile(dialect=_DIALECT)  # type: ignore[attr-defined]
        self.sql: str = str(compiled)
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        self._json = frozenset(json_columns)
        # Values written into the statement itself (``.values(lease_expires_at=0)``).
        self._fixed: dict[str, Any] = dict(compiled.params)
        # The values in placeholder order, picked in C: this runs for every row of every batch.
        pick = operator.itemgetter(*self.names)
        self._pick: Callable[[Mapping[str, Any]], tuple[Any, ...]] = (
            pick if len(self.names) > 1 else (lambda row: (pick(row),))
        )

    @classmethod
    def insert(cls, table: Table) -> "CompiledStatement":
        """``INSERT INTO table`` with every column, named by column."""
        json_columns = [c.name for c in table.c if isinstance(c.type, JSON)]
        return cls(table.insert(), json_columns)

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        row = {**self._fixed, **values}
        for name in self._json:
            row[name] = json.dumps(row[name])
        return self._pick(row)

    def execute_many(self, conn: sqlite3.Connection, rows: Iterable[Mapping[str, Any]]) -> None:
        conn.executemany(self.sql, [self.parameters(row) for row in rows])
