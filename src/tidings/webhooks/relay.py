"""Reply posts written by a worker in another process, announced live by every server.

Why: with PostgreSQL, ``tidings worker`` processes write reply posts, but browsers are connected
to ``tidings serve``, whose in-process event hub no other process can reach. So after each
write-back a worker sends ``NOTIFY`` with the new posts' ids (delivered only on commit), and
every server ``LISTEN``s, reads those posts and publishes their ``posted`` events exactly as its
own worker would (:mod:`tidings.webhooks.announcements`). A server skips the notices of its own
process, whose worker has announced them already. SQLite has no such channel: there the worker
runs inside ``tidings serve`` (the default), and a separate worker's replies appear on reload.

Imports ``tidings.store``, ``tidings.domain``, ``tidings.events`` and ``tidings.ids``.
"""

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from functools import partial

from tidings.domain.posts import Post
from tidings.events import EventHub
from tidings.ids import new_id
from tidings.store import posts as post_store
from tidings.store.database import Database, Subscription
from tidings.webhooks.announcements import announce_posts

logger = logging.getLogger(__name__)

CHANNEL = "tidings_reply_posts"
# This process, so that a server can tell its own worker's notices from other processes'.
ORIGIN = new_id()
CHECK_EVERY_SECONDS = 5.0  # how soon a dropped listening connection is noticed
RECONNECT_AFTER_SECONDS = 1.0


def _notice(post: Post, sender_name: str) -> str:
    return json.dumps({"origin": ORIGIN, "post_id": post.id, "sender_name": sender_name})


async def notify(db: Database, posts: Sequence[tuple[Post, str]]) -> None:
    """PostgreSQL: tell every server about reply posts just committed (a no-op on SQLite)."""
    if db.is_sqlite or not posts:
        return
    await db.notify(CHANNEL, [_notice(post, sender_name) for post, sender_name in posts])


class Relay:
    """A server's listener for other processes' reply posts; start it, stop it with the server."""

    def __init__(self, db: Database, events: EventHub) -> None:
        self._db = db
        self._events = events
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if not self._db.is_sqlite:
            self._task = asyncio.create_task(self._run(), name="reply-post-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            notices: asyncio.Queue[str] = asyncio.Queue()
            subscription: Subscription | None = None
            try:
                subscription = await self._db.listen(CHANNEL, notices.put_nowait)
                while not subscription.closed:
                    try:
                        notice = await asyncio.wait_for(notices.get(), CHECK_EVERY_SECONDS)
                    except TimeoutError:
                        continue
                    await self._announce(notice)
                logger.warning("the reply-post listening connection closed; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("relaying reply posts failed; reconnecting")
            finally:
                if subscription is not None:
                    await subscription.close()
            await asyncio.sleep(RECONNECT_AFTER_SECONDS)

    async def _announce(self, notice: str) -> None:
        try:
            found = json.loads(notice)
            origin, post_id, sender_name = found["origin"], found["post_id"], found["sender_name"]
        except (ValueError, KeyError, TypeError):
            logger.warning("ignoring a malformed reply-post notice")
            return
        if origin == ORIGIN:
            return
        post = await self._db.read(partial(post_store.find_post, post_id=str(post_id)))
        if post is not None:
            await announce_posts(self._db, self._events, [(post, str(sender_name))])
