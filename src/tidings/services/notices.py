"""Direct messages from the system bot, e.g. to tell a hook's owner it is failing."""

from collections.abc import Awaitable, Callable

from tidings.domain.hooks import OutgoingHook
from tidings.services.posts import create_post
from tidings.services.runtime import Runtime
from tidings.services.teams import get_or_create_direct
from tidings.services.users import ensure_system_bot


async def notify_user(rt: Runtime, user_id: str, text: str) -> None:
    """Post ``text`` in the DM between the system bot and ``user_id``."""
    bot = await ensure_system_bot(rt)
    channel = await get_or_create_direct(rt, None, bot.id, user_id)
    await create_post(rt, bot, channel.id, text)


def hook_owner_notifier(rt: Runtime) -> Callable[[OutgoingHook, str], Awaitable[None]]:
    """The callback the webhook worker uses to reach a hook's owner."""

    async def notify(hook: OutgoingHook, text: str) -> None:
        await notify_user(rt, hook.creator_id, text)

    return notify
