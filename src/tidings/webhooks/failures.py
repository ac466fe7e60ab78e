"""Looking after failing hooks: 410 disables at once, sustained failure disables, and the owner
hears about it from the system bot at most once an hour per hook.

Imports ``tidings.store`` and ``tidings.domain``; the notice itself goes through a callback the
process injects (the worker must not import services). Used only by ``tidings.webhooks.worker``.
"""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

from tidings.clock import Clock
from tidings.domain import server_config
from tidings.domain.deliveries import Attempt
from tidings.domain.hooks import OutgoingHook
from tidings.domain.server_config import ConfigDocument
from tidings.domain.storable import storable_text
from tidings.store import deliveries as delivery_store
from tidings.store import hooks as hook_store
from tidings.store import teams as team_store
from tidings.store.database import Connection, Database
from tidings.webhooks.policy import Outcome

logger = logging.getLogger(__name__)

NOTICE_EVERY_MS = 3600 * 1000
STREAK_CHECK_EVERY_SECONDS = 60.0
GONE_REASON = "The receiver answered 410 Gone."

Notify = Callable[[OutgoingHook, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Failure:
    """A delivery of ``hook`` that ended failed, and how its last attempt went."""

    hook: OutgoingHook
    verdict: Outcome
    attempt: Attempt


class FailureWatch:
    """Decides, per batch of final failures, which hooks to disable and whom to tell."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        config: Callable[[], Awaitable[ConfigDocument]],
        notify: Notify | None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._config = config
        self._notify = notify
        self._streak_checked: dict[str, float] = {}

    async def observe(self, failures: list[Failure]) -> None:
        latest: dict[str, Failure] = {}
        for failure in failures:
            latest[failure.hook.id] = failure
            if failure.verdict == Outcome.GONE:
                await self._disable(failure.hook, GONE_REASON)
        for hook_id, failure in latest.items():
            try:
                await self._check_streak(failure.hook)
                await self._notice(failure.hook, failure.attempt)
            except Exception:
                logger.exception("looking after failing hook %s failed", hook_id)

    async def _disable(self, hook: OutgoingHook, reason: str) -> None:
        now = self._clock.now_ms()
        changed = await self._db.write(partial(_disable_hook, hook=hook, reason=reason, now_ms=now))
        if changed:
            logger.warning("disabled hook %s: %s", hook.id, reason)
            await self._send(
                hook,
                f"Your outgoing webhook **{_name(hook)}** was disabled: {reason} "
                "Re-enable it on the Integrations page once the receiver works again.",
            )

    async def _check_streak(self, hook: OutgoingHook) -> None:
        """Disable after ``OutgoingWebhookAutoDisableHours`` in which every delivery failed."""
        now_s = self._clock.monotonic()
        if now_s - self._streak_checked.get(hook.id, float("-inf")) < STREAK_CHECK_EVERY_SECONDS:
            return
        self._streak_checked[hook.id] = now_s
        settings = server_config.webhook_settings(await self._config())
        now = self._clock.now_ms()
        failures, oldest = await self._db.read(
            partial(delivery_store.failure_streak, hook_id=hook.id, since_ms=hook.update_at)
        )
        window_ms = settings.auto_disable_hours * 3600 * 1000
        if failures >= settings.auto_disable_min_failures and oldest and oldest <= now - window_ms:
            await self._disable(
                hook,
                f"Every delivery failed for {settings.auto_disable_hours} hours ({failures} failures).",
            )

    async def _notice(self, hook: OutgoingHook, attempt: Attempt) -> None:
        now = self._clock.now_ms()
        allowed = await self._db.write(
            partial(
                hook_store.claim_failure_notice,
                hook_id=hook.id,
                now_ms=now,
                every_ms=NOTICE_EVERY_MS,
            )
        )
        if allowed:
            # The message may quote what a receiver sent; the notice is a post, so store-safe.
            why = storable_text(attempt.error_message, 1024) or f"HTTP {attempt.status_code}"
            await self._send(
                hook,
                f"Deliveries of your outgoing webhook **{_name(hook)}** are failing. "
                f"Latest: {why}. See its delivery log on the Integrations page.",
            )

    async def _send(self, hook: OutgoingHook, text: str) -> None:
        if self._notify is not None:
            try:
                await self._notify(hook, text)
            except Exception:
                logger.exception("could not notify the owner of hook %s", hook.id)


def _disable_hook(conn: Connection, hook: OutgoingHook, reason: str, now_ms: int) -> bool:
    """Disable the hook and, if that changed it, move its team's hook version (which the post
    path's match index follows); False if it was disabled or gone already."""
    changed = hook_store.disable_hook(conn, hook.id, reason, now_ms)
    if changed:
        team_store.bump_hooks_version(conn, hook.team_id)
    return changed


def _name(hook: OutgoingHook) -> str:
    return hook.display_name or hook.id
