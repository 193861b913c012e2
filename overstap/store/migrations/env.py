"""Alembic environment: runs on the connection handed over by overstap.store.migrate."""

from alembic import context

from overstap.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite can only ALTER by copying
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
