"""Free-text search over the text values of stored headers: every word given must begin a
word of some value of an instance's header (names, descriptions, protocol, institution, ...).

PostgreSQL: a full-text vector of the header's values (`jsonb_to_tsvector` over
`$.*.Value[*]`, the "simple" configuration: no stemming, no stop words), stored in a generated
column (`text_vector`) under a GIN index, so that no search computes a vector. SQLite: an FTS5
table of the same values (`instances_text`), kept by triggers on `instances`. Made by
migrations `0004_search` and `0008_text_vector`.
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
        return literal_column(f"instances.{schema.TEXT_VECTOR}").op("@@")(to_query)
    match = " AND ".join(f'"{w}"*' for w in found)
    rowids: Select[tuple[Any]] = (
        select(literal_column("rowid"))
        .select_from(table("instances_text"))
        .where(literal_column("instances_text").op("MATCH")(literal(match, String)))
    )
    return schema.instances.c.pk.in_(rowids.scalar_subquery())
