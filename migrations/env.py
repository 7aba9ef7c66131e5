"""Alembic environment: runs on the connection the gateway hands over (see store/migrate.py)."""

from __future__ import annotations

from alembic import context

from gateway.store.tables import built_on, metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("run migrations with `mail2sms db upgrade`, not the alembic command")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,
    compare_type=True,
    include_object=built_on(connection.dialect.name),
)
with context.begin_transaction():
    context.run_migrations()
