"""Free-text search on PostgreSQL reads a stored vector: each instance's full-text vector (the
words of its header's values) is kept in a stored generated `tsvector` column
(`text_vector`), computed once when the header is written, and the full-text GIN index covers
that column instead of the expression. A search then never computes a vector at query time:
before, every row a plan filtered on the words (the instances of the studies a page walks in
key order) and every row of a lossy bitmap (a broad match on a large archive) rebuilt the
vector from the whole parsed header, a cost that grows with the header (a CT header holds a
few hundred elements). A generated column cannot read another one, so the database parses
`header` for it once more at each write of a header. Adding it rewrites `instances` under an
exclusive lock (each header parsed once more). SQLite: nothing changes (its FTS5 table is
already a stored index of the words).

Revision ID: 0008_text_vector
Revises: 0007_search_speed
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_text_vector"
down_revision = "0007_search_speed"
branch_labels = None
depends_on = None

TEXT_INDEX = "ix_instances_text"
COLUMN = "text_vector"


def _vector(document: str) -> str:
    return (
        f"jsonb_to_tsvector('simple'::regconfig, jsonb_path_query_array({document}, "
        "'lax $.*.Value[*]'::jsonpath), '[\"string\"]'::jsonb)"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index(TEXT_INDEX, table_name="instances")
    op.execute(
        f"ALTER TABLE instances ADD COLUMN {COLUMN} tsvector "
        f"GENERATED ALWAYS AS ({_vector('header::jsonb')}) STORED"
    )
    op.create_index(TEXT_INDEX, "instances", [sa.text(COLUMN)], postgresql_using="gin")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index(TEXT_INDEX, table_name="instances")
    op.drop_column("instances", COLUMN)
    op.create_index(
        TEXT_INDEX,
        "instances",
        [sa.text(f"({_vector('header_jsonb')})")],
        postgresql_using="gin",
    )
