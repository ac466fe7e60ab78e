"""The in-process event hub: services and the worker publish, websocket connections listen.

Publishing never blocks: each listener has a bounded queue, and a listener that falls too far
behind is dropped (its websocket is closed and the client reconnects), so one slow client never
slows posting. A listener belongs to one session: when sessions end, :meth:`EventHub.end_sessions`
closes their listeners at once.

With several processes (PostgreSQL), the hub has an *outlet*: :meth:`EventHub.publish` hands
the event to it (``tidings.services.cluster``), which carries it to every process, this one
included, and each hands it to its hub's :meth:`EventHub.deliver`, which delivers here only.
Imports nothing from the rest of the package.
"""

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
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


# Websocket close codes a listener can end with.
CLOSE_FELL_BEHIND = 1013  # "try again later": the client reconnects and catches up
CLOSE_SESSION_ENDED = 1008  # policy violation: the session is over, reconnecting will not help


class Listener:
    """One websocket connection's inbox, and the session it was opened with.

    ``next_event`` returns None once the listener is closed, however full its queue was, so a
    revoked session gets no further event even if many were already queued for it.
    """

    def __init__(self, user_id: str, token_hash: str = "") -> None:
        self.user_id = user_id
        self.token_hash = token_hash
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(QUEUE_SIZE)
        self.close_code: int | None = None

    @property
    def dropped(self) -> bool:
        return self.close_code is not None

    def close(self, code: int) -> None:
        """Stop delivering: queued events are discarded and the waiting reader wakes at once."""
        if self.close_code is not None:
            return
        self.close_code = code
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)

    async def next_event(self, wait_seconds: float) -> Event | None:
        """The next event, or None when closed or when ``wait_seconds`` pass without one."""
        if self.close_code is not None:
            return None
        try:
            return await asyncio.wait_for(self.queue.get(), wait_seconds)
        except TimeoutError:
            return None


# Where published events go besides this process's listeners: (event, the users it is for).
Outlet = Callable[[Event, frozenset[str]], None]


class EventHub:
    """Fan-out of events to the listeners of the users they concern."""

    def __init__(self) -> None:
        self._listeners: dict[str, set[Listener]] = defaultdict(set)
        self.outlet: Outlet | None = None

    def subscribe(self, user_id: str, token_hash: str = "") -> Listener:
        listener = Listener(user_id, token_hash)
        self._listeners[user_id].add(listener)
        return listener

    def unsubscribe(self, listener: Listener) -> None:
        listeners = self._listeners.get(listener.user_id)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self._listeners[listener.user_id]

    def publish(self, event: Event, user_ids: Iterable[str]) -> None:
        """Queue ``event`` for every listener of ``user_ids``, here and, through the outlet, in
        every other process (the outlet then delivers here too, in the order all processes
        share); never waits."""
        if self.outlet is None:
            self.deliver(event, user_ids)
        else:
            self.outlet(event, frozenset(user_ids))

    def deliver(self, event: Event, user_ids: Iterable[str]) -> None:
        """Queue ``event`` for this process's listeners of ``user_ids`` only."""
        for user_id in set(user_ids):
            for listener in list(self._listeners.get(user_id, ())):
                try:
                    listener.queue.put_nowait(event)
                except asyncio.QueueFull:
                    logger.warning(
                        "dropping a websocket listener that fell behind", extra={"user_id": user_id}
                    )
                    listener.close(CLOSE_FELL_BEHIND)
                    self.unsubscribe(listener)

    def end_sessions(self, user_id: str, token_hashes: Iterable[str]) -> int:
        """Close the listeners of ``user_id`` opened with one of ``token_hashes``; how many."""
        ended = set(token_hashes)
        closed = 0
        for listener in list(self._listeners.get(user_id, ())):
            if listener.token_hash in ended:
                listener.close(CLOSE_SESSION_ENDED)
                self.unsubscribe(listener)
                closed += 1
        return closed

    def close_all(self, code: int) -> int:
        """Close every listener (their clients reconnect and fetch afresh); how many."""
        closed = 0
        for listeners in list(self._listeners.values()):
            for listener in list(listeners):
                listener.close(code)
                self.unsubscribe(listener)
                closed += 1
        return closed

    def has_listeners(self) -> bool:
        """Whether anyone may listen: with no one here and no other process to tell, an event
        need not even be built."""
        return bool(self._listeners) or self.outlet is not None
