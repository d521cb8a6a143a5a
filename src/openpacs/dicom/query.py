"""The query model shared by C-FIND and QIDO-RS (PS3.4 C.2.2.2).

A query is a level, a set of conditions and the attributes to return. Each condition is a list
of alternatives (equal, wildcard pattern, range) over one attribute; the index renders them to
SQL for indexed columns and `openpacs.dicom.matching` evaluates them on stored headers for every
other attribute, with the same semantics.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag, Tag

from openpacs.dicom.levels import INDEXED_KEYS, QUERY_CONTROL_KEYS, Level, only_returned
from openpacs.dicom.uids import is_valid_uid
from openpacs.dicom.values import (
    Bound,
    normalize_date,
    normalize_datetime,
    normalize_int,
    normalize_name,
    normalize_time,
)
from openpacs.errors import InvalidQuery

MatchKind = Literal["text", "name", "date", "time", "datetime", "uid", "int", "number", "sequence"]

# PS3.4 C.2.2.2.4: wildcard matching applies to these VRs only.
_WILDCARD_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})
_NUMERIC_VRS = frozenset({"DS", "FL", "FD", "SL", "SS", "UL", "US", "SV", "UV"})
_KIND_BY_VR: dict[str, MatchKind] = {
    "PN": "name",
    "DA": "date",
    "TM": "time",
    "DT": "datetime",
    "UI": "uid",
    "IS": "int",
}


@dataclass(frozen=True)
class Equals:
    value: str | int


@dataclass(frozen=True)
class Pattern:
    """A DICOM wildcard pattern: `*` any run of characters, `?` exactly one."""

    pattern: str


@dataclass(frozen=True)
class Range:
    """Inclusive range over normalised values; a missing end is open (PS3.4 C.2.2.2.5)."""

    low: str | None
    high: str | None


Alternative = Equals | Pattern | Range


@dataclass(frozen=True)
class Condition:
    """A value matches when it matches any alternative.

    A sequence condition (kind "sequence", PS3.4 C.2.2.2.6) has no alternatives but the
    conditions of its one query item: it matches when some item of the stored sequence
    matches all of them."""

    keyword: str
    tag: int
    kind: MatchKind
    alternatives: tuple[Alternative, ...]
    items: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class Query:
    level: Level
    conditions: tuple[Condition, ...] = ()
    return_tags: tuple[int, ...] = ()
    """Attributes to include in each result, beyond the level's unique keys."""
    fuzzy: bool = False
    limit: int | None = None
    offset: int = 0
    charset_requested: bool = field(default=False, compare=False)
    whole_headers: bool = False
    """Each match carries its entity's whole stored header (WADO-RS metadata, QIDO-RS
    `includefield=all` of instances); otherwise only the elements its return keys and header
    conditions read."""

    @property
    def return_keywords(self) -> frozenset[str]:
        return frozenset(keyword_of(tag) for tag in self.return_tags)

    def condition(self, keyword: str) -> Condition | None:
        return next((c for c in self.conditions if c.keyword == keyword), None)


def keyword_of(tag: int) -> str:
    """The attribute's keyword, or its tag in hex (a private or unknown attribute)."""
    return keyword_for_tag(tag) or f"{tag:08X}"


def match_kind(keyword: str, vr: str) -> MatchKind:
    indexed = INDEXED_KEYS.get(keyword)
    if indexed is not None:
        return indexed.kind
    if vr in _NUMERIC_VRS:
        return "number"
    return _KIND_BY_VR.get(vr, "text")


def condition_for(tag: int, raw: str | Iterable[str], *, fuzzy: bool = False) -> Condition | None:
    """Compile a query value for one attribute; None means universal matching (PS3.4 C.2.2.2.3).

    `raw` is the value as given: one string (backslash-separated values allowed) or a list of
    values. Raises InvalidQuery when the value cannot be a value of the attribute's VR.
    """
    tag = Tag(tag)
    keyword = keyword_of(tag)
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        vr = "UN"
    values = raw.split("\\") if isinstance(raw, str) else list(raw)
    values = [v.strip() if vr not in ("LT", "ST", "UT") else v.rstrip() for v in values]
    if vr == "PN":
        # "=" or "^^" are empty names: empty component groups mean no value at all.
        values = [v for v in values if normalize_name(v) != ""]
    values = [v for v in values if v != ""]
    if not values or any(v == "*" for v in values):
        return None
    kind = match_kind(keyword, vr)
    alternatives = tuple(_alternative(keyword, vr, kind, value) for value in values)
    return Condition(keyword, int(tag), kind, alternatives)


def sequence_condition(tag: int, item: Iterable[Condition]) -> Condition | None:
    """The condition on a sequence whose query item holds `item`; None (universal matching,
    the sequence only a return key) when the item has no matching key."""
    conditions = tuple(item)
    if not conditions:
        return None
    keyword = keyword_of(tag)
    return Condition(keyword, int(tag), "sequence", (), items=conditions)


def _alternative(keyword: str, vr: str, kind: MatchKind, value: str) -> Alternative:
    if kind == "date":
        return _date_alternative(keyword, value)
    if kind in ("time", "datetime"):
        return _time_alternative(keyword, kind, value)
    if kind == "name":
        value = normalize_name(value) if "*" not in value else _normalize_pattern_name(value)
    if vr in _WILDCARD_VRS and ("*" in value or "?" in value):
        return Pattern(value)
    if kind == "int":
        number = normalize_int(value)
        if number is None:
            raise InvalidQuery(f"{keyword}: {value!r} is not an integer")
        return Equals(number)
    if kind == "uid" and not is_valid_uid(value):
        raise InvalidQuery(f"{keyword}: {value[:80]!r} is not a valid UID")
    if kind == "number":
        try:
            float(value)
        except ValueError:
            raise InvalidQuery(f"{keyword}: {value!r} is not a number") from None
    return Equals(value)


def _normalize_pattern_name(value: str) -> str:
    # Trailing empty components must not swallow a final wildcard: "DOE^*" stays as it is.
    return value.upper()


def _date_alternative(keyword: str, value: str) -> Alternative:
    if "-" in value:
        low_text, _, high_text = value.partition("-")
        low = normalize_date(low_text) if low_text else None
        high = normalize_date(high_text) if high_text else None
        if (low_text and low is None) or (high_text and high is None) or (low is high is None):
            raise InvalidQuery(f"{keyword}: {value!r} is not a date range (YYYYMMDD-YYYYMMDD)")
        return Range(low, high)
    date = normalize_date(value)
    if date is None:
        raise InvalidQuery(f"{keyword}: {value!r} is not a date (YYYYMMDD)")
    return Equals(date)


_RANGE_SPLIT = re.compile(r"-")


def _time_alternative(keyword: str, kind: MatchKind, value: str) -> Alternative:
    normalize = normalize_time if kind == "time" else normalize_datetime
    low_text: str | None
    high_text: str | None
    if kind == "datetime" and normalize(value) is not None:
        low_text = high_text = value  # a single DT value, perhaps with a "-hhmm" offset
    elif "-" in value:
        low_text, high_text = _split_range(value, normalize)
        if low_text is None:
            raise InvalidQuery(f"{keyword}: {value!r} is not a valid range")
    else:
        low_text = high_text = value
    low = normalize(low_text, "low") if low_text else None
    high = normalize(high_text, "high") if high_text else None
    if (low_text and low is None) or (high_text and high is None) or (low is high is None):
        raise InvalidQuery(f"{keyword}: {value!r} is not a valid {kind} value or range")
    return Range(low, high)


def _split_range(
    value: str, normalize: Callable[[str, Bound], str | None]
) -> tuple[str | None, str | None]:
    """Split "A-B" at the hyphen that leaves two valid ends (DT ends may carry -hhmm)."""
    for match in _RANGE_SPLIT.finditer(value):
        low, high = value[: match.start()], value[match.end() :]
        if (not low or normalize(low, "low") is not None) and (
            not high or normalize(high, "high") is not None
        ):
            return low, high
    return None, None


def query_from_identifier(identifier: Dataset) -> Query:
    """Build a query from a C-FIND identifier (PS3.4 C.4.1.1.3)."""
    level_text = str(identifier.get("QueryRetrieveLevel", "") or "").strip().upper()
    try:
        level = Level(level_text)
    except ValueError:
        raise InvalidQuery(f"QueryRetrieveLevel: {level_text!r} is not a valid level") from None
    conditions: list[Condition] = []
    return_tags: list[int] = []
    for element in identifier:
        keyword = element.keyword
        if keyword in QUERY_CONTROL_KEYS or element.tag.group in (0x0000, 0x0002):
            continue
        return_tags.append(int(element.tag))
        if only_returned(keyword):
            continue
        condition = _identifier_condition(element)
        if condition is not None:
            conditions.append(condition)
    return Query(
        level=level,
        conditions=tuple(conditions),
        return_tags=tuple(return_tags),
        charset_requested="SpecificCharacterSet" in identifier,
    )


def _identifier_condition(element: DataElement) -> Condition | None:
    """The condition of one identifier element; a sequence's from its single item."""
    if element.VR != "SQ":
        return condition_for(element.tag, _element_text(element.value))
    items = list(element.value or [])
    if len(items) > 1:
        raise InvalidQuery(f"{element.keyword or element.tag}: a query sequence holds one item")
    if not items:
        return None  # a return key: every item is returned
    item_conditions = (
        _identifier_condition(inner)
        for inner in items[0]
        if inner.tag.group not in (0x0000, 0x0002) and inner.keyword != "SpecificCharacterSet"
    )
    return sequence_condition(element.tag, (c for c in item_conditions if c is not None))


def _element_text(value: object) -> list[str]:
    if value is None:
        return []
    # Only lists of values are multi-valued: PersonName and str are iterable too.
    items = list(value) if isinstance(value, MultiValue | list | tuple) else [value]
    return [item.decode("latin-1") if isinstance(item, bytes) else str(item) for item in items]


def tag_of(keyword_or_tag: str) -> BaseTag:
    """A tag from a keyword (`PatientName`) or hex (`00100010`); InvalidQuery otherwise."""
    # pydicom's dictionary holds entries with an empty keyword: "" must not name one.
    tag = tag_for_keyword(keyword_or_tag) if keyword_or_tag else None
    if tag is not None:
        return Tag(tag)
    if re.fullmatch(r"[0-9A-Fa-f]{8}", keyword_or_tag):
        return Tag(int(keyword_or_tag, 16))
    raise InvalidQuery(f"{keyword_or_tag!r} is not a DICOM attribute keyword or tag")


def export_conditions(pairs: Iterable[str]) -> list[Condition]:
    """Conditions from ``KEYWORD=VALUE`` pairs on indexed keys, with the C-FIND value syntax
    (what `openpacs export` selects with); InvalidQuery names a bad pair."""
    found: list[Condition] = []
    for pair in pairs:
        keyword, separator, value = pair.partition("=")
        keyword = keyword.strip()
        if not separator or keyword not in INDEXED_KEYS:
            indexed = ", ".join(INDEXED_KEYS)
            raise InvalidQuery(f"{pair[:64]!r}: give KEYWORD=VALUE with one of {indexed}")
        condition = condition_for(tag_of(keyword), value)
        if condition is not None:
            found.append(condition)
    return found
