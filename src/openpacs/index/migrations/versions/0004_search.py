"""Search on stored headers. PostgreSQL: a GIN index over each instance's header as jsonb,
which serves equality on any attribute by containment (`openpacs.index.header_sql`), and a GIN
index over the full-text vector of the header's values (`openpacs.index.text_search`). SQLite:
an FTS5 table of the header's values, kept by triggers on `instances` and filled for the
instances already stored (its JSON functions scan headers for the rest).

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
TEXT_INDEX = "ix_instances_text"
VECTOR = (
    "jsonb_to_tsvector('simple'::regconfig, jsonb_path_query_array(header::jsonb, "
    "'lax $.*.Value[*]'::jsonpath), '[\"string\"]'::jsonb)"
)


# An instance's indexed text: the string values in its elements' Value arrays (person name
# groups included), not the tags or VRs. HEADER names the row's header column.
_VALUES = (
    "(SELECT group_concat(value, ' ') FROM json_tree(HEADER) "
    "WHERE type = 'text' AND path LIKE '%.Value%')"
)
_OLD, _NEW = _VALUES.replace("HEADER", "old.header"), _VALUES.replace("HEADER", "new.header")
_SQLITE = [
    "CREATE VIRTUAL TABLE instances_text USING fts5(text, content='', "
    "tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER instances_text_insert AFTER INSERT ON instances BEGIN "
    "INSERT INTO instances_text(rowid, text) VALUES (new.pk, NEW_TEXT); END",
    "CREATE TRIGGER instances_text_delete AFTER DELETE ON instances BEGIN "
    "INSERT INTO instances_text(instances_text, rowid, text) "
    "VALUES ('delete', old.pk, OLD_TEXT); END",
    "CREATE TRIGGER instances_text_update AFTER UPDATE OF header ON instances BEGIN "
    "INSERT INTO instances_text(instances_text, rowid, text) "
    "VALUES ('delete', old.pk, OLD_TEXT); "
    "INSERT INTO instances_text(rowid, text) VALUES (new.pk, NEW_TEXT); END",
    "INSERT INTO instances_text(rowid, text) SELECT pk, ROW_TEXT FROM instances",
]


def _statement(template: str) -> str:
    return (
        template.replace("NEW_TEXT", _NEW)
        .replace("OLD_TEXT", _OLD)
        .replace("ROW_TEXT", _VALUES.replace("HEADER", "instances.header"))
    )


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        for template in _SQLITE:
            op.execute(_statement(template))
        return
    op.create_index(
        INDEX,
        "instances",
        [sa.text("(header::jsonb) jsonb_path_ops")],
        postgresql_using="gin",
    )
    op.create_index(TEXT_INDEX, "instances", [sa.text(f"({VECTOR})")], postgresql_using="gin")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER instances_text_{name}")
        op.execute("DROP TABLE instances_text")
        return
    op.drop_index(TEXT_INDEX, table_name="instances")
    op.drop_index(INDEX, table_name="instances")
