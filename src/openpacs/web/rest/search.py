"""REST search parameters: DICOM keywords of indexed attributes as query parameters, with the
C-FIND value syntax (wildcards, ranges, UID lists), plus `limit`, `offset` and `sort`."""

from __future__ import annotations

from collections.abc import Mapping

from openpacs.dicom.levels import INDEXED_KEYS, Level
from openpacs.dicom.query import Condition, Equals, condition_for, tag_of
from openpacs.errors import InvalidQuery

CONTROL = frozenset({"limit", "offset", "sort", "label"})
MAX_LIMIT = 1000
_STUDY_ONLY = frozenset({"ModalitiesInStudy"})
_MAX_VALUE = 1024


def conditions(level: Level, params: Mapping[str, str]) -> list[Condition]:
    """Conditions for the search keys in `params`; 400 for any other parameter."""
    found: list[Condition] = []
    for keyword, value in params.items():
        if keyword in CONTROL:
            continue
        key = INDEXED_KEYS.get(keyword)
        allowed = (key is not None and key.level.depth <= level.depth) or (
            keyword in _STUDY_ONLY and level is Level.STUDY
        )
        if not allowed:
            raise InvalidQuery(
                f"unknown search parameter {keyword[:64]!r} for {level.value.lower()} searches"
            )
        if len(value) > _MAX_VALUE:
            raise InvalidQuery(f"{keyword}: value too long")
        condition = condition_for(tag_of(keyword), value)
        if condition is not None:
            found.append(condition)
    return found


def sort_key(sort: str | None) -> tuple[str | None, bool]:
    if not sort:
        return None, False
    descending = sort.startswith("-")
    return sort.lstrip("-+"), descending


def unique(level: Level, uid: str) -> Condition:
    """The condition selecting one entity by its unique key."""
    keyword = level.unique_key
    kind = "text" if level is Level.PATIENT else "uid"
    return Condition(keyword, int(tag_of(keyword)), kind, (Equals(uid),))
