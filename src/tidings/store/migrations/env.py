"""Alembic environment: runs migrations on the connection ``store.migration.upgrade`` opened
(the engine Tidings uses, with its pragmas, holding the migration lock on PostgreSQL)."""

from alembic import context
from sqlalchemy.engine import Connection

from tidings.store.schema import metadata

connection: Connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
connection.commit()
