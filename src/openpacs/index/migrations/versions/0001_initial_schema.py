"""Initial schema: patients, studies, series, instances.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# 64-bit keys, but SQLite only auto-increments an INTEGER PRIMARY KEY.
PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Matching columns compare code points: bytewise "C" collation on PostgreSQL.
KEY = sa.String().with_variant(sa.String(collation="C"), "postgresql")

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "patients",
        sa.Column("pk", PK, autoincrement=True, nullable=False),
        sa.Column("patient_id", KEY, nullable=False),
        sa.Column("patient_name", KEY, nullable=False),
        sa.Column("patient_name_norm", KEY, nullable=False),
        sa.Column("patient_birth_date", KEY, nullable=True),
        sa.Column("patient_sex", KEY, nullable=True),
        sa.Column("created_at", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("patient_id"),
    )
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.create_index("ix_patients_birth_date", ["patient_birth_date"], unique=False)
        batch_op.create_index("ix_patients_name_norm", ["patient_name_norm"], unique=False)

    op.create_table(
        "studies",
        sa.Column("pk", PK, autoincrement=True, nullable=False),
        sa.Column("patient_pk", PK, nullable=False),
        sa.Column("study_uid", KEY, nullable=False),
        sa.Column("study_date", KEY, nullable=True),
        sa.Column("study_time", KEY, nullable=True),
        sa.Column("accession_number", KEY, nullable=True),
        sa.Column("study_id", KEY, nullable=True),
        sa.Column("referring_physician_name", KEY, nullable=False),
        sa.Column("referring_physician_name_norm", KEY, nullable=False),
        sa.Column("study_description", KEY, nullable=True),
        sa.Column("created_at", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_pk"],
            ["patients.pk"],
        ),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("study_uid"),
    )
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.create_index("ix_studies_accession", ["accession_number"], unique=False)
        batch_op.create_index("ix_studies_created", ["created_at"], unique=False)
        batch_op.create_index("ix_studies_date", ["study_date"], unique=False)
        batch_op.create_index("ix_studies_patient", ["patient_pk"], unique=False)
        batch_op.create_index(
            "ix_studies_referring_norm", ["referring_physician_name_norm"], unique=False
        )

    op.create_table(
        "series",
        sa.Column("pk", PK, autoincrement=True, nullable=False),
        sa.Column("study_pk", PK, nullable=False),
        sa.Column("series_uid", KEY, nullable=False),
        sa.Column("modality", KEY, nullable=True),
        sa.Column("series_number", sa.Integer(), nullable=True),
        sa.Column("series_description", KEY, nullable=True),
        sa.Column("body_part_examined", KEY, nullable=True),
        sa.Column("series_date", KEY, nullable=True),
        sa.Column("series_time", KEY, nullable=True),
        sa.Column("created_at", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["study_pk"],
            ["studies.pk"],
        ),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("series_uid"),
    )
    with op.batch_alter_table("series", schema=None) as batch_op:
        batch_op.create_index("ix_series_study", ["study_pk", "modality"], unique=False)

    op.create_table(
        "instances",
        sa.Column("pk", PK, autoincrement=True, nullable=False),
        sa.Column("series_pk", PK, nullable=False),
        sa.Column("sop_uid", KEY, nullable=False),
        sa.Column("sop_class_uid", KEY, nullable=False),
        sa.Column("instance_number", sa.Integer(), nullable=True),
        sa.Column("transfer_syntax", sa.String(length=64), nullable=False),
        sa.Column("blob_key", sa.String(length=512), nullable=False),
        sa.Column("blob_size", sa.BigInteger(), nullable=False),
        sa.Column("blob_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.String(), nullable=False),
        sa.Column("header", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["series_pk"],
            ["series.pk"],
        ),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("blob_key"),
        sa.UniqueConstraint("sop_uid"),
    )
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.create_index("ix_instances_series", ["series_pk", "instance_number"], unique=False)
        batch_op.create_index("ix_instances_sop_class", ["sop_class_uid"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_index("ix_instances_sop_class")
        batch_op.drop_index("ix_instances_series")

    op.drop_table("instances")
    with op.batch_alter_table("series", schema=None) as batch_op:
        batch_op.drop_index("ix_series_study")

    op.drop_table("series")
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.drop_index("ix_studies_referring_norm")
        batch_op.drop_index("ix_studies_patient")
        batch_op.drop_index("ix_studies_date")
        batch_op.drop_index("ix_studies_created")
        batch_op.drop_index("ix_studies_accession")

    op.drop_table("studies")
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.drop_index("ix_patients_name_norm")
        batch_op.drop_index("ix_patients_birth_date")

    op.drop_table("patients")
