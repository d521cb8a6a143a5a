"""Study visibility: where each study came from (institution, calling and called AE), labels
on studies, and the provider groups of single sign-on users.

Revision ID: 0005_access
Revises: 0004_search
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_access"
down_revision = "0004_search"
branch_labels = None
depends_on = None

_KEY = sa.String().with_variant(sa.String(collation="C"), "postgresql")
_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("institution_name", _KEY, nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column("source_aet", sa.String(length=16), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("received_aet", sa.String(length=16), nullable=False, server_default="")
        )
    op.create_table(
        "study_labels",
        sa.Column("pk", _PK, autoincrement=True, nullable=False),
        sa.Column("study_pk", _PK, nullable=False),
        sa.Column("label", _KEY, nullable=False),
        sa.Column("created_at", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["study_pk"], ["studies.pk"]),
        sa.PrimaryKeyConstraint("pk"),
    )
    with op.batch_alter_table("study_labels", schema=None) as batch_op:
        batch_op.create_index("ux_study_labels", ["study_pk", "label"], unique=True)
        batch_op.create_index("ix_study_labels_label", ["label"], unique=False)
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("groups", sa.Text(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("groups")
    with op.batch_alter_table("study_labels", schema=None) as batch_op:
        batch_op.drop_index("ix_study_labels_label")
        batch_op.drop_index("ux_study_labels")
    op.drop_table("study_labels")
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.drop_column("received_aet")
        batch_op.drop_column("source_aet")
        batch_op.drop_column("institution_name")
