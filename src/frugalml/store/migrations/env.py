"""Alembic environment for the frugalml store. open_store() passes the connection in."""

from __future__ import annotations

from alembic import context

from frugalml.store._schema import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
