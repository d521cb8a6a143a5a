"""Conditions on attributes of the stored header (DICOM JSON) rendered to SQL: SQLite's JSON
functions (`json_each`), PostgreSQL's `jsonb` (a GIN index serves equality by containment).

Text and UID conditions (single values, lists, wildcards) on any attribute, private ones by
tag included, are rendered: a stored value matches when one of the element's values, with
its space padding trimmed, equals a value or matches a pattern, case-sensitively, as
`openpacs.dicom.matching` matches it. On PostgreSQL conditions read the parsed header column
(`header_jsonb`), and equality is `jsonb` containment, which the GIN index on it serves;
pydicom strips padding before values are stored, so a value with leading spaces (not padding)
is found there by a wildcard only. Other kinds (names, dates, times, numbers, sequences) need
normal forms SQL does not have: they give None and stay with the header matcher alone.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import ColumnElement, cast, exists, func, literal, literal_column, or_, select
from sqlalchemy.dialects.postgresql import JSONB

from openpacs.dicom.query import Condition, Equals, Pattern
from openpacs.index.matching_sql import pattern_clause
from openpacs.index.schema import HEADER_JSONB

_RENDERED_KINDS = frozenset({"text", "uid"})


def renders(condition: Condition) -> bool:
    """Whether `header_clause` renders this condition."""
    return condition.kind in _RENDERED_KINDS and all(
        isinstance(a, Equals | Pattern) for a in condition.alternatives
    )


def header_clause(header: Any, condition: Condition, dialect: str) -> ColumnElement[bool] | None:
    """SQL true for a row whose header (a JSON text column) meets `condition`; None when the
    condition is not one SQL renders."""
    if not renders(condition) or not condition.alternatives:
        return None
    key = f"{condition.tag:08X}"
    equals = [str(a.value) for a in condition.alternatives if isinstance(a, Equals)]
    patterns = [a.pattern for a in condition.alternatives if isinstance(a, Pattern)]
    if dialect == "postgresql":
        # The header as PostgreSQL keeps it parsed (`schema.HEADER_JSONB`): no JSON parse of
        # the text per row, and the column the GIN index covers.
        document = literal_column(f"{header.table.name}.{HEADER_JSONB}", JSONB)
        values = func.jsonb_array_elements_text(document[key]["Value"]).table_valued("value")
        value = values.c.value
    else:
        values = func.json_each(header, f'$."{key}".Value').table_valued("value")
        value = values.c.value
    trimmed = func.trim(value)
    alternatives: list[ColumnElement[bool]] = []
    if dialect == "postgresql":
        # Containment, which a GIN index on the header serves: values are stored without
        # their space padding (pydicom strips it), so this is the trimmed comparison.
        alternatives += [
            document.op("@>")(cast(literal(json.dumps({key: {"Value": [v]}})), JSONB))
            for v in equals
        ]
    elif equals:
        alternatives.append(exists(select(1).select_from(values).where(trimmed.in_(equals))))
    for pattern in patterns:
        alternatives.append(
            exists(select(1).select_from(values).where(pattern_clause(trimmed, pattern, dialect)))
        )
    return alternatives[0] if len(alternatives) == 1 else or_(*alternatives)
