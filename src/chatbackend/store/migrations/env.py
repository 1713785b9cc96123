"""Alembic environment: runs on the connection ``Database.migrate`` passes in (its transaction,
already holding the migration lock), so a programmatic upgrade is the only entry point."""

from __future__ import annotations

from alembic import context

from chatbackend.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("migrations run through chatbackend.store.Database.migrate()")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
