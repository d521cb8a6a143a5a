"""Render query conditions to SQL, with the semantics of `openpacs.dicom.matching`.

Wildcards are case-sensitive (PS3.4 C.2.2.2.4); person names are matched on their upper-cased
`_norm` column, which makes PN matching case-insensitive. SQLite's GLOB has DICOM's `*` and `?`
and is case-sensitive, where its LIKE is not; PostgreSQL's LIKE is case-sensitive. A literal
prefix before the first wildcard also becomes a range, so the column's index narrows the scan.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Table, and_, false, literal, or_

from openpacs.dicom.levels import INDEXED_KEYS
from openpacs.dicom.matching import name_alternatives
from openpacs.dicom.query import Condition, Equals, Pattern, Range


def condition_clause(table: Table, condition: Condition, dialect: str) -> ColumnElement[bool]:
    key = INDEXED_KEYS[condition.keyword]
    column = table.c[f"{key.column}_norm" if key.kind == "name" else key.column]
    alternatives = condition.alternatives
    if key.kind == "name":
        alternatives = tuple(a for alt in alternatives for a in name_alternatives(alt))
    equals = [a.value for a in alternatives if isinstance(a, Equals)]
    clauses: list[ColumnElement[bool]] = []
    if len(equals) == 1:
        clauses.append(column == equals[0])
    elif equals:
        clauses.append(column.in_(equals))
    for alternative in alternatives:
        if isinstance(alternative, Pattern):
            clauses.append(pattern_clause(column, alternative.pattern, dialect))
        elif isinstance(alternative, Range):
            bounds = []
            if alternative.low is not None:
                bounds.append(column >= alternative.low)
            if alternative.high is not None:
                bounds.append(column <= alternative.high)
            clauses.append(and_(*bounds))
    if not clauses:
        return false()
    return clauses[0] if len(clauses) == 1 else or_(*clauses)


def pattern_clause(column: ColumnElement[str], pattern: str, dialect: str) -> ColumnElement[bool]:
    prefix = _literal_prefix(pattern)
    if dialect == "sqlite":
        glob = "".join("[[]" if ch == "[" else "[]]" if ch == "]" else ch for ch in pattern)
        match = column.op("GLOB")(literal(glob))
    else:
        like = "".join(
            "%" if ch == "*" else "_" if ch == "?" else "\\" + ch if ch in "%_\\" else ch
            for ch in pattern
        )
        match = column.like(like, escape="\\")
    if not prefix:
        return match
    return and_(column >= prefix, column < _successor(prefix), match)


def _literal_prefix(pattern: str) -> str:
    for position, ch in enumerate(pattern):
        if ch in "*?":
            return pattern[:position]
    return pattern


def _successor(prefix: str) -> str:
    """The smallest string greater than every string that starts with `prefix`."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)
