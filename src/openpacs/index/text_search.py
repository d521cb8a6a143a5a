"""Free-text search over the text values of stored headers: every word given must begin a
word of some value of an instance's header (names, descriptions, protocol, institution, ...).

PostgreSQL: a full-text vector of the header's values (`jsonb_to_tsvector` over
`$.*.Value[*]`, the "simple" configuration: no stemming, no stop words) under a GIN expression
index over the parsed header column `header_jsonb`. SQLite: an FTS5 table of the same values
(`instances_text`), kept by triggers on `instances`. Made by migrations `0004_search` and
`0007_search_speed`.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, Select, String, func, literal, literal_column, select, table

from openpacs.errors import InvalidQuery
from openpacs.index import schema

MAX_WORDS = 8
_WORD = re.compile(r"[^\W_]+")
_MAX_WORD = 64

# The indexed expression, as migration 0007_search_speed creates it (over the parsed header
# column): queries repeat it verbatim so that the planner recognises the index.
POSTGRESQL_VECTOR = (
    "jsonb_to_tsvector('simple'::regconfig, jsonb_path_query_array(instances.header_jsonb, "
    "'lax $.*.Value[*]'::jsonpath), '[\"string\"]'::jsonb)"
)


def words(query: str) -> list[str]:
    """The words of a free-text query (letters and digits; anything else separates)."""
    found = [w.lower() for w in _WORD.findall(query)]
    if len(found) > MAX_WORDS:
        raise InvalidQuery(f"q: at most {MAX_WORDS} words")
    if any(len(w) > _MAX_WORD for w in found):
        raise InvalidQuery(f"q: words of at most {_MAX_WORD} characters")
    return found


def instance_clause(found: list[str], dialect: str) -> ColumnElement[bool]:
    """SQL true for an instance row whose header has a word starting with each of `found`."""
    if dialect == "postgresql":
        query = " & ".join(f"{w}:*" for w in found)
        to_query = func.to_tsquery(literal_column("'simple'::regconfig"), literal(query, String))
        return literal_column(POSTGRESQL_VECTOR).op("@@")(to_query)
    match = " AND ".join(f'"{w}"*' for w in found)
    rowids: Select[tuple[Any]] = (
        select(literal_column("rowid"))
        .select_from(table("instances_text"))
        .where(literal_column("instances_text").op("MATCH")(literal(match, String)))
    )
    return schema.instances.c.pk.in_(rowids.scalar_subquery())
