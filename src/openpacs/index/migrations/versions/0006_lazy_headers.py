"""Headers built after ingest: an instance is indexed with a summary of its indexed elements
and `header_ready` false; the whole header replaces the summary soon after. Existing rows
already have their whole header. A plain ADD COLUMN, not a table rebuild, so SQLite keeps the
full-text triggers on `instances`.

Revision ID: 0006_lazy_headers
Revises: 0005_access
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_lazy_headers"
down_revision = "0005_access"
branch_labels = None
depends_on = None

_INDEX = "ix_instances_header_pending"


def upgrade() -> None:
    op.add_column(
        "instances",
        sa.Column("header_ready", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    # The predicate as the model renders it, so that the planner matches its queries to it.
    pending = ~sa.column("header_ready", sa.Boolean())
    op.create_index(_INDEX, "instances", ["pk"], sqlite_where=pending, postgresql_where=pending)


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="instances")
    op.drop_column("instances", "header_ready")
