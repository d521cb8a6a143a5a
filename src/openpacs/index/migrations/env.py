"""Alembic environment: openpacs passes the connection in, nothing is read from alembic.ini."""

from __future__ import annotations

from alembic import context

from openpacs.index.schema import compared, metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
    transactional_ddl=True,  # SQLite and PostgreSQL both roll DDL back on failure
    compare_type=True,
    include_object=lambda item, name, type_, reflected, _: compared(name, type_, reflected),
)
with context.begin_transaction():
    context.run_migrations()
