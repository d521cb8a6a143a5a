"""Search speed on PostgreSQL: each instance's header is also kept parsed, as a stored
generated `jsonb` column (`header_jsonb`), and the search indexes of 0004_search are rebuilt
over it. Containment through the jsonb GIN index is lossy and rechecks every candidate row,
and a wildcard reads the element's values: over the text column each did a JSON parse of the
whole header per row, the larger part of an any-attribute search. The database computes the
column, so writes of `header` need no change. Adding it rewrites `instances` (each stored
header parsed once) under an exclusive lock, and PostgreSQL then keeps each header twice.
SQLite: nothing changes.

Revision ID: 0007_search_speed
Revises: 0006_lazy_headers
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_search_speed"
down_revision = "0006_lazy_headers"
branch_labels = None
depends_on = None

INDEX = "ix_instances_header_jsonb"
TEXT_INDEX = "ix_instances_text"
COLUMN = "header_jsonb"


def _vector(document: str) -> str:
    return (
        f"jsonb_to_tsvector('simple'::regconfig, jsonb_path_query_array({document}, "
        "'lax $.*.Value[*]'::jsonpath), '[\"string\"]'::jsonb)"
    )


def _indexes(document: str) -> None:
    op.create_index(
        INDEX, "instances", [sa.text(f"({document}) jsonb_path_ops")], postgresql_using="gin"
    )
    op.create_index(
        TEXT_INDEX, "instances", [sa.text(f"({_vector(document)})")], postgresql_using="gin"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index(TEXT_INDEX, table_name="instances")
    op.drop_index(INDEX, table_name="instances")
    op.execute(
        f"ALTER TABLE instances ADD COLUMN {COLUMN} jsonb "
        "GENERATED ALWAYS AS (header::jsonb) STORED"
    )
    _indexes(COLUMN)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index(TEXT_INDEX, table_name="instances")
    op.drop_index(INDEX, table_name="instances")
    op.drop_column("instances", COLUMN)
    _indexes("header::jsonb")
