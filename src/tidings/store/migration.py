"""Applying Alembic migrations from code (``tidings migrate`` and server start).

Alembic's environment starts its own event loop; when ``upgrade`` is called from inside a
running loop it does the work on a helper thread, so it is safe to call from anywhere.
"""

import asyncio
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config

from tidings.store.database import normalise_url

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at our scripts and ``url``, with no ini file needed."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    """Bring the database at ``url`` to the newest schema (creating SQLite's folder if needed)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        command.upgrade(alembic_config(url), "head")
        return
    failure: list[BaseException] = []

    def work() -> None:
        try:
            command.upgrade(alembic_config(url), "head")
        except BaseException as exc:  # handed to the caller's thread below
            failure.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
