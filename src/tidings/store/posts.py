"""Queries on posts, returning domain objects."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, func, or_, select, update
from sqlalchemy.engine import Connection

from tidings.domain.posts import Post
from tidings.store.compiled import Prepared
from tidings.store.schema import posts


def _post(row: Any) -> Post:
    return Post(
        id=row.id,
        create_at=row.create_at,
        update_at=row.update_at,
        edit_at=row.edit_at,
        delete_at=row.delete_at,
        user_id=row.user_id,
        channel_id=row.channel_id,
        root_id=row.root_id,
        message=row.message,
        type=row.type,
        props=dict(row.props or {}),
        file_ids=tuple(row.file_ids or ()),
        pending_post_id=row.pending_post_id,
        is_pinned=row.is_pinned,
        webhook_depth=row.webhook_depth,
    )


def _values(post: Post) -> dict[str, Any]:
    return {
        "id": post.id,
        "create_at": post.create_at,
        "update_at": post.update_at,
        "edit_at": post.edit_at,
        "delete_at": post.delete_at,
        "user_id": post.user_id,
        "channel_id": post.channel_id,
        "root_id": post.root_id,
        "message": post.message,
        "type": post.type,
        "props": post.props,
        "file_ids": list(post.file_ids),
        "pending_post_id": post.pending_post_id,
        "is_pinned": post.is_pinned,
        "webhook_depth": post.webhook_depth,
    }


# Statements every post runs are built once: building one per call costs several times what
# executing it does.
_INSERT = posts.insert()
_FIND = select(posts).where(posts.c.id == bindparam("b_id"))


_INSERT_PREPARED = Prepared.insert(posts)


def insert_post(conn: Connection, post: Post) -> None:
    """Every post runs it: on the driver's cursor (``store/compiled.py``)."""
    _INSERT_PREPARED.run(conn, _values(post))


def insert_posts(conn: Connection, new_posts: Sequence[Post]) -> None:
    if new_posts:
        conn.execute(_INSERT, [_values(p) for p in new_posts])


def insert_posts_batch(conn: Connection, new_posts: Sequence[Post]) -> None:
    """``insert_posts`` for the worker's reply posts, written back many times a second: one
    ``executemany`` of a statement compiled once (``store/compiled.py``)."""
    _INSERT_PREPARED.run_many(conn, [_values(p) for p in new_posts])


def find_post(conn: Connection, post_id: str) -> Post | None:
    row = conn.execute(_FIND, {"b_id": post_id}).first()
    return _post(row) if row else None


def update_post(conn: Connection, post_id: str, **values: Any) -> None:
    conn.execute(update(posts).where(posts.c.id == post_id).values(**values))


def delete_post(conn: Connection, post: Post, at: int) -> None:
    """Soft delete the post and, when it is a root, its replies."""
    condition = posts.c.id == post.id
    if not post.root_id:
        condition = or_(condition, replies_of(post.id))
    conn.execute(update(posts).where(condition).values(delete_at=at, update_at=at))


def list_channel_posts(
    conn: Connection,
    channel_id: str,
    offset: int,
    limit: int,
    *,
    since: int = 0,
    before_create_at: int | None = None,
    after_create_at: int | None = None,
    include_deleted: bool = False,
) -> list[Post]:
    """Newest first. ``since`` returns posts changed after that time (for catching up)."""
    query = select(posts).where(posts.c.channel_id == channel_id)
    if not include_deleted:
        query = query.where(posts.c.delete_at == 0)
    if since:
        query = query.where(posts.c.update_at > since)
    if before_create_at is not None:
        query = query.where(posts.c.create_at < before_create_at)
    if after_create_at is not None:
        query = query.where(posts.c.create_at > after_create_at)
    query = query.order_by(posts.c.create_at.desc(), posts.c.id.desc()).offset(offset).limit(limit)
    return [_post(r) for r in (conn.execute(query)).all()]


def replies_of(root_id: str) -> ColumnElement[bool]:
    """The replies of ``root_id``, said so that the replies index (``ix_posts_root``, which
    leaves root posts out) serves it: neither database uses a partial index unless the query
    itself states the index's condition."""
    return and_(posts.c.root_id == root_id, posts.c.root_id != "")


def list_thread(conn: Connection, root_id: str) -> list[Post]:
    rows = conn.execute(
        select(posts)
        .where(or_(posts.c.id == root_id, replies_of(root_id)), posts.c.delete_at == 0)
        .order_by(posts.c.create_at.desc(), posts.c.id.desc())
    )
    return [_post(r) for r in rows]


def reply_counts(conn: Connection, root_ids: set[str]) -> dict[str, tuple[int, int]]:
    """root id → (number of live replies, time of the last one)."""
    if not root_ids:
        return {}
    rows = conn.execute(
        select(posts.c.root_id, func.count(), func.max(posts.c.create_at))
        .where(posts.c.root_id.in_(root_ids), posts.c.root_id != "", posts.c.delete_at == 0)
        .group_by(posts.c.root_id)
    )
    return {r[0]: (int(r[1]), int(r[2] or 0)) for r in rows}


def find_posts(conn: Connection, post_ids: set[str]) -> dict[str, Post]:
    if not post_ids:
        return {}
    rows = conn.execute(select(posts).where(posts.c.id.in_(post_ids)))
    return {r.id: _post(r) for r in rows}
