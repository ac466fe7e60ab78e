"""Applying Alembic migrations from code (``tidings migrate`` and server start).

Alembic's environment (``migrations/env.py``) runs on the same synchronous engine as the
server, with the same pragmas.
"""

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
    """Bring the database at ``url`` to the newest schema (creating SQLite's folder if needed).

    Synchronous and short; a server calls it once before it starts serving."""
    command.upgrade(alembic_config(url), "head")
