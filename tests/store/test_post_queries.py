"""The replies index (``ix_posts_root``) holds replies only, and the thread queries still find
them: through the index on SQLite, whose plans are stable enough to hold a test to."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine

from support import fresh_database
from tidings.domain.posts import Post
from tidings.ids import new_id
from tidings.store import posts as store
from tidings.store.database import create_engine

pytestmark = pytest.mark.db


@pytest.fixture
def engine() -> Iterator[Engine]:
    with fresh_database() as url:
        made = create_engine(url)
        try:
            yield made
        finally:
            made.dispose()


def _post(at: int, root_id: str = "", channel_id: str = "c" * 26) -> Post:
    return Post(new_id(), at, at, 0, 0, "u" * 26, channel_id, root_id, f"post {at}")


def _index_is_partial(conn: Connection) -> bool:
    if conn.dialect.name == "sqlite":
        listed = conn.execute(text("PRAGMA index_list(posts)")).mappings().all()
        return any(row["name"] == "ix_posts_root" and row["partial"] == 1 for row in listed)
    definition = conn.execute(
        text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_posts_root'")
    ).scalar_one()
    return "WHERE" in str(definition)


def test_the_replies_index_leaves_root_posts_out_and_threads_are_still_whole(
    engine: Engine,
) -> None:
    root, other = _post(1), _post(2)
    replies = [_post(10 + n, root.id) for n in range(3)]
    with engine.begin() as conn:
        store.insert_posts(conn, [root, other, *replies])
    with engine.begin() as conn:
        assert _index_is_partial(conn)
        thread = store.list_thread(conn, root.id)
        assert [p.id for p in thread] == [p.id for p in reversed([root, *replies])]
        assert store.reply_counts(conn, {root.id, other.id}) == {root.id: (3, 12)}
        store.delete_post(conn, root, 99)
    with engine.begin() as conn:
        assert store.list_thread(conn, root.id) == []
        assert store.reply_counts(conn, {root.id}) == {}
        assert store.list_thread(conn, other.id)[0].id == other.id


def _plans(engine: Engine, run: Callable[[Connection], Any]) -> list[str]:
    """What SQLite's planner says of every statement ``run`` sends."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if not statement.startswith("BEGIN"):  # the engine's own (store/database.py)
            sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        with engine.begin() as conn:
            run(conn)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        return [
            " / ".join(row[3] for row in raw.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            for sql, params in sent
        ]


def test_the_thread_queries_read_the_replies_index_not_the_table(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL picks plans by table statistics: SQLite's are the ones to hold")
    root = _post(1)
    with engine.begin() as conn:
        store.insert_posts(conn, [root, *(_post(n) for n in range(2, 200))])
    for run in (
        lambda conn: store.list_thread(conn, root.id),
        lambda conn: store.reply_counts(conn, {root.id}),
        lambda conn: store.delete_post(conn, root, 5),
    ):
        (plan,) = _plans(engine, run)
        assert "ix_posts_root" in plan, plan
        assert "SCAN posts" not in plan, plan
