"""Evaluate query conditions on values from a stored header (DICOM JSON model, PS3.18 F.2).

The index matches indexed columns in SQL; this module matches everything else with the same
semantics, and is the reference the SQL rendering is tested against.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

from openpacs.dicom.query import Alternative, Condition, Equals, MatchKind, Pattern, Range
from openpacs.dicom.values import (
    normalize_date,
    normalize_datetime,
    normalize_int,
    normalize_name,
    normalize_time,
)

JsonHeader = Mapping[str, Any]


def json_values(header: JsonHeader, tag: int) -> list[Any]:
    """The values of one attribute in a DICOM JSON header; PN values as DICOM strings."""
    element = header.get(f"{tag:08X}")
    if not element:
        return []
    values = element.get("Value") or []
    if element.get("vr") == "PN":
        return [person_name_text(v) for v in values if isinstance(v, Mapping)]
    return list(values)


def person_name_text(value: Mapping[str, str]) -> str:
    groups = [value.get(key, "") for key in ("Alphabetic", "Ideographic", "Phonetic")]
    while groups and not groups[-1]:
        groups.pop()
    return "=".join(groups)


def header_matches(header: JsonHeader, conditions: Sequence[Condition]) -> bool:
    return all(matches(c, json_values(header, c.tag)) for c in conditions)


def matches(condition: Condition, values: Sequence[Any]) -> bool:
    """PS3.4 C.2.2.2: a multi-valued attribute matches when any of its values matches."""
    if condition.kind == "sequence":  # C.2.2.2.6: some item matches all the item's keys
        return any(
            isinstance(item, Mapping) and header_matches(item, condition.items) for item in values
        )
    normalized = [n for n in (normalize_stored(condition.kind, v) for v in values) if n is not None]
    alternatives = condition.alternatives
    if condition.kind == "name":
        alternatives = tuple(a for alt in alternatives for a in name_alternatives(alt))
    return any(_matches_one(alt, value) for value in normalized for alt in alternatives)


def name_alternatives(alternative: Alternative) -> tuple[Alternative, ...]:
    """A PN value without component groups also matches a name's alphabetic group
    (PS3.5 6.2.1: "Doe^John" names the person stored as "Doe^John=ド^ジョン")."""
    if isinstance(alternative, Equals) and "=" not in str(alternative.value):
        # PN values with `*` or `?` were compiled to Patterns, so this one is literal.
        return (alternative, Pattern(f"{alternative.value}=*"))
    if isinstance(alternative, Pattern) and "=" not in alternative.pattern:
        return (alternative, Pattern(alternative.pattern + "=*"))
    return (alternative,)


def normalize_stored(kind: MatchKind, value: Any) -> str | int | float | None:
    """The comparison form of a stored value, as the index keeps it in its columns."""
    if value is None:
        return None
    if kind in ("int", "number"):
        if isinstance(value, int | float):
            return value
        return normalize_int(str(value)) if kind == "int" else _float(str(value))
    text = str(value)
    if kind == "name":
        return normalize_name(text)
    if kind == "date":
        return normalize_date(text)
    if kind == "time":
        return normalize_time(text)
    if kind == "datetime":
        return normalize_datetime(text)
    return text.strip()


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _matches_one(alternative: object, value: str | int | float) -> bool:
    if isinstance(alternative, Equals):
        if isinstance(alternative.value, int) or isinstance(value, int | float):
            return _float(str(alternative.value)) == _float(str(value))
        return value == alternative.value
    if isinstance(alternative, Pattern):
        return wildcard_regex(alternative.pattern).fullmatch(str(value)) is not None
    if isinstance(alternative, Range):
        text = str(value)
        return (alternative.low is None or text >= alternative.low) and (
            alternative.high is None or text <= alternative.high
        )
    raise TypeError(f"unknown alternative {alternative!r}")


@functools.lru_cache(maxsize=256)
def wildcard_regex(pattern: str) -> re.Pattern[str]:
    """PS3.4 C.2.2.2.4: `*` matches any sequence of characters, `?` any single character."""
    parts = (".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile("".join(parts), re.DOTALL)
