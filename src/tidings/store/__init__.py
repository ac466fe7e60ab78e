"""Storage: the SQLAlchemy schema, queries that return domain objects, and Alembic migrations.

May import ``tidings.domain``, ``tidings.ids``, ``tidings.errors``; never services, api, web or webhooks.
"""
