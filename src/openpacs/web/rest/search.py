"""REST search parameters: DICOM keywords (or tags) as query parameters, with the C-FIND value
syntax (wildcards, ranges, UID lists), plus `limit`, `offset`, `cursor`, `sort` and `q` (free
text). Indexed keys match their columns; any other text or UID attribute matches in the stored
headers."""

from __future__ import annotations

from collections.abc import Mapping

from openpacs.dicom.levels import COMPUTED, INDEXED_KEYS, Level
from openpacs.dicom.query import Condition, condition_for, tag_of
from openpacs.errors import InvalidQuery

CONTROL = frozenset({"limit", "offset", "sort", "cursor", "label", "q"})
MAX_LIMIT = 1000
_MAX_VALUE = 1024


def conditions(level: Level, params: Mapping[str, str]) -> list[Condition]:
    """Conditions for the search keys in `params`; 400 for any other parameter."""
    found: list[Condition] = []
    for keyword, value in params.items():
        if keyword in CONTROL:
            continue
        key = INDEXED_KEYS.get(keyword)
        computed = COMPUTED.get(keyword)
        refused = (key is not None and key.level.depth > level.depth) or (
            computed is not None and not (computed.matchable and computed.level is level)
        )
        try:
            tag = tag_of(keyword)
        except InvalidQuery:
            refused = True
        if refused:
            raise InvalidQuery(
                f"unknown search parameter {keyword[:64]!r} for {level.value.lower()} searches"
            )
        if len(value) > _MAX_VALUE:
            raise InvalidQuery(f"{keyword}: value too long")
        condition = condition_for(tag, value)
        if condition is not None:
            found.append(condition)
    return found


def sort_key(sort: str | None) -> tuple[str | None, bool]:
    if not sort:
        return None, False
    descending = sort.startswith("-")
    return sort.lstrip("-+"), descending
