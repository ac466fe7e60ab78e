"""Hot statements compiled once per dialect and run on the driver's own cursor.

Why: the post path and the worker's write-backs run a handful of statements many times a
second, and SQLAlchemy's work for each execution of a Core statement (cache key, compiled
parameters, the result object) cost more than the database itself. Measured per statement on
SQLite: ``conn.execute`` 17 µs, ``exec_driver_sql`` 8.5 µs, the driver 1.7 µs; for an 8-row
write-back about 80 µs more than the driver's own ``executemany``. A :class:`Prepared` compiles
its Core statement once for the connection's dialect, in a positional parameter style, and runs
it on the driver's cursor inside the connection's transaction: the SQL is still defined by the
schema in one place, for SQLite and PostgreSQL alike, results go through the column types' own
result processors, and driver errors become SQLAlchemy's (an ``IntegrityError`` is still one).
Each row's values are picked in C; only what the drivers cannot bind themselves is converted
here: JSON columns are serialised by :func:`json_text`, which the engines give SQLAlchemy's JSON
type as well (``store/database.create_engine``), so a value is stored the same way by either path.

Imports SQLAlchemy, orjson and the standard library.
"""

import json
import operator
from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import JSON, Table
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable, Select


def json_text(value: Any) -> str:
    """A JSON column's text: orjson's, or the standard library's where orjson refuses (a key
    that is not a string, an integer past 64 bits, a lone surrogate, which it escapes).

    Every attempt stores its request and response headers as JSON, every post its props and
    files: ``json.dumps`` cost the worker's write-back about a twentieth of its time
    (docs/performance.md). Both spell the same values; orjson writes no spaces and keeps
    non-ASCII characters as they are.
    """
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


class _Form:
    """One statement as one dialect runs it: the SQL and how a row becomes its parameters."""

    def __init__(self, statement: Executable, dialect: Dialect, json_columns: frozenset[str]):
        compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
        self.sql: str = str(compiled)
        names: tuple[str, ...] = tuple(compiled.positiontup or ())
        # Values written into the statement itself (``.values(lease_expires_at=0)``).
        self._fixed = {
            name: compiled.params[name] for name in names if not _bound_later(compiled, name)
        }
        self._json = [name for name in names if name in json_columns]
        pick = operator.itemgetter(*names)
        self._pick: Callable[[Mapping[str, Any]], tuple[Any, ...]] = (
            pick if len(names) > 1 else (lambda row: (pick(row),))
        )

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        if not (self._fixed or self._json):
            return self._pick(values)
        row = {**self._fixed, **values}
        for name in self._json:
            row[name] = json_text(row[name])
        return self._pick(row)


def _bound_later(compiled: Any, name: str) -> bool:
    """True for a ``bindparam`` each row gives a value for, False for a value in the statement."""
    return any(b.required for b, n in compiled.bind_names.items() if n == name)


def _positional(dialect: Dialect) -> Dialect:
    """``dialect``, or its twin in the ``format`` style (psycopg takes ``%s`` as well as
    ``%(name)s``), so that a row's values are one tuple picked in C."""
    if dialect.positional:
        return dialect
    twin: Dialect = type(dialect)(paramstyle="format")  # type: ignore[call-arg]
    return twin


class Prepared:
    """One hot statement run on the driver's cursor: :meth:`first` for a SELECT (a named row
    or None), :meth:`all` for all its rows, :meth:`run` for an INSERT or UPDATE,
    :meth:`run_many` for one with many rows (one ``executemany``). Values are given by bind
    name (column names for an insert)."""

    def __init__(self, statement: Executable, json_columns: Iterable[str] = ()) -> None:
        self._statement = statement
        self._json = frozenset(json_columns)
        self._forms: dict[str, tuple[_Form, _Rows | None]] = {}

    @classmethod
    def insert(cls, table: Table) -> "Prepared":
        return cls(table.insert(), [c.name for c in table.c if isinstance(c.type, JSON)])

    def first(self, conn: Connection, values: Mapping[str, Any]) -> Any | None:
        form, rows = self._form(conn)
        assert rows is not None, "first() is for a SELECT"
        found = _execute(conn, form, form.parameters(values)).fetchone()
        return rows.make(found) if found is not None else None

    def all(self, conn: Connection, values: Mapping[str, Any]) -> list[Any]:
        """Every row of a SELECT, named."""
        form, rows = self._form(conn)
        assert rows is not None, "all() is for a SELECT"
        cursor = _execute(conn, form, form.parameters(values))
        try:
            return [rows.make(found) for found in cursor.fetchall()]
        finally:
            cursor.close()

    def run(self, conn: Connection, values: Mapping[str, Any]) -> None:
        form, _ = self._form(conn)
        _execute(conn, form, form.parameters(values)).close()

    def run_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        form, _ = self._form(conn)
        _execute(conn, form, [form.parameters(row) for row in rows], many=True).close()

    def _form(self, conn: Connection) -> tuple[_Form, "_Rows | None"]:
        found = self._forms.get(conn.dialect.name)
        if found is None:
            dialect = _positional(conn.dialect)
            rows = _Rows(self._statement, dialect) if isinstance(self._statement, Select) else None
            found = self._forms[conn.dialect.name] = (
                _Form(self._statement, dialect, self._json),
                rows,
            )
        return found


class _Rows:
    """How a SELECT's driver rows become named rows, converted as SQLAlchemy would."""

    def __init__(self, statement: Select[Any], dialect: Dialect) -> None:
        columns = list(statement.selected_columns)
        self._row: Any = namedtuple("Row", [c.key for c in columns])  # type: ignore[misc]
        self._processors = [
            (i, p)
            for i, c in enumerate(columns)
            if (p := c.type.result_processor(dialect, None)) is not None
        ]

    def make(self, values: Sequence[Any]) -> Any:
        if self._processors:
            values = list(values)
            for i, process in self._processors:
                values[i] = process(values[i])
        return self._row._make(values)


def _execute(conn: Connection, form: _Form, parameters: Any, *, many: bool = False) -> Any:
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        if many:
            cursor.executemany(form.sql, parameters)
        else:
            cursor.execute(form.sql, parameters)
    except conn.dialect.loaded_dbapi.Error as exc:
        cursor.close()
        raise DBAPIError.instance(
            form.sql, parameters, exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect
        ) from exc
    return cursor
