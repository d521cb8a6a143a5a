"""Servers and their leases; jobs owned by a server, with a send's plan, so that another
server takes over the jobs of one that stopped.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "servers",
        sa.Column("server_id", sa.String(length=32), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.String(), nullable=False),
        sa.Column("lease_until", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("server_id"),
    )
    with op.batch_alter_table("servers", schema=None) as batch_op:
        batch_op.create_index("ix_servers_lease", ["lease_until"], unique=False)
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("plan", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column("takeovers", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=False, server_default=""))
        batch_op.create_index("ix_jobs_owner", ["owner"], unique=False)
    # Jobs of the previous version ran on no recorded server: whichever server starts next
    # finds them unowned and takes them over (or fails them with a reason).


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_owner")
        batch_op.drop_column("note")
        batch_op.drop_column("takeovers")
        batch_op.drop_column("plan")
        batch_op.drop_column("owner")
    with op.batch_alter_table("servers", schema=None) as batch_op:
        batch_op.drop_index("ix_servers_lease")
    op.drop_table("servers")
