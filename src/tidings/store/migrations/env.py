"""Alembic environment: runs migrations on the engine Tidings uses, with its pragmas."""

from alembic import context
from sqlalchemy.engine import Connection

from tidings.store.database import create_engine
from tidings.store.schema import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
try:
    with engine.connect() as connection:
        _run(connection)
        connection.commit()
finally:
    engine.dispose()
