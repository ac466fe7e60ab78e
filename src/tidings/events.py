"""The in-process event hub: services and the worker publish, websocket connections listen.

Publishing never blocks: each listener has a bounded queue, and a listener that falls too far
behind is dropped (its websocket is closed and the client reconnects), so one slow client never
slows posting. Imports nothing from the rest of the package.
"""

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

QUEUE_SIZE = 1024


@dataclass(frozen=True, slots=True)
class Event:
    """A websocket event: name, data, and the broadcast scope Mattermost clients expect."""

    event: str
    data: dict[str, Any]
    broadcast: dict[str, Any] = field(default_factory=dict)


class Listener:
    """One websocket connection's inbox."""

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE_SIZE)
        self.dropped = False


class EventHub:
    """Fan-out of events to the listeners of the users they concern."""

    def __init__(self) -> None:
        self._listeners: dict[str, set[Listener]] = defaultdict(set)

    def subscribe(self, user_id: str) -> Listener:
        listener = Listener(user_id)
        self._listeners[user_id].add(listener)
        return listener

    def unsubscribe(self, listener: Listener) -> None:
        listeners = self._listeners.get(listener.user_id)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self._listeners[listener.user_id]

    def publish(self, event: Event, user_ids: Iterable[str]) -> None:
        """Queue ``event`` for every listener of ``user_ids``; never waits."""
        for user_id in set(user_ids):
            for listener in list(self._listeners.get(user_id, ())):
                try:
                    listener.queue.put_nowait(event)
                except asyncio.QueueFull:
                    logger.warning(
                        "dropping a websocket listener that fell behind", extra={"user_id": user_id}
                    )
                    listener.dropped = True
                    self.unsubscribe(listener)

    def listener_count(self) -> int:
        return sum(len(v) for v in self._listeners.values())
