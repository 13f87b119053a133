"""Alembic environment for the frugalml store. open_store() passes the connection in."""

from __future__ import annotations

from alembic import context

from frugalml.store._schema import Base

# Our own version table: Optuna keeps its studies in the same database (the search resumes from the
# store URL) and uses Alembic's default ``alembic_version`` table for its own schema.
VERSION_TABLE = "frugal_alembic_version"

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                  version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
