"""A GIN index over each instance's header as jsonb (PostgreSQL), which serves equality on
any attribute of the stored header by containment (`openpacs.index.header_sql`). SQLite has no
such index: its JSON functions scan the headers.

Revision ID: 0004_search
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_search"
down_revision = "0003"
branch_labels = None
depends_on = None

INDEX = "ix_instances_header_jsonb"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_index(
        INDEX,
        "instances",
        [sa.text("(header::jsonb) jsonb_path_ops")],
        postgresql_using="gin",
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index(INDEX, table_name="instances")
