"""Build C-FIND responses (PS3.4 C.4.1.1.3.2) from index matches.

Indexed keys come from their columns, computed keys from the index, and every other requested
attribute from the stored header. Text is Unicode internally, so responses that carry any
non-ASCII value declare UTF-8 (SpecificCharacterSet ISO_IR 192).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.valuerep import PersonName

from openpacs.dicom.levels import COMPUTED_KEYS, INDEXED_KEYS, Level
from openpacs.dicom.query import Query
from openpacs.index.records import Match

UTF8 = "ISO_IR 192"
_RETRIEVE_AE_TITLE = 0x00080054  # returned always: where to C-MOVE or C-GET this from


def find_response(query: Query, match: Match, *, retrieve_aet: str) -> Dataset:
    response = Dataset()
    response.QueryRetrieveLevel = match.level.value
    tags = set(query.return_tags) | {_RETRIEVE_AE_TITLE}
    for level in match.level.at_or_above():
        if level is not Level.PATIENT or match.level is Level.PATIENT:
            tags.add(_tag(level.unique_key))
    for tag in sorted(tags):
        element = _element(tag, match, retrieve_aet)
        if element is not None:
            response.add(element)
    if query.charset_requested or _has_non_ascii(response):
        response.SpecificCharacterSet = UTF8
    return response


def _element(tag: int, match: Match, retrieve_aet: str) -> DataElement | None:
    keyword = _keyword(tag)
    vr = _vr(tag)
    if keyword == "RetrieveAETitle":
        return DataElement(tag, "AE", retrieve_aet)
    if keyword == "InstanceAvailability":
        return DataElement(tag, "CS", "ONLINE")
    if keyword in match.values:
        return DataElement(tag, vr, _column_value(keyword, match.values[keyword]))
    if keyword in INDEXED_KEYS or keyword in COMPUTED_KEYS:
        return DataElement(tag, vr, None)  # a key of a lower level: returned empty
    stored = (match.header or {}).get(f"{tag:08X}")
    value_key = next((k for k in ("Value", "InlineBinary") if k in (stored or {})), None)
    if stored and value_key:
        return DataElement.from_json(
            Dataset, f"{tag:08X}", stored["vr"], stored[value_key], value_key
        )
    return DataElement(tag, stored["vr"] if stored else vr, None)


def _column_value(keyword: str, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, list):
        return value
    kind = INDEXED_KEYS[keyword].kind if keyword in INDEXED_KEYS else "int"
    if kind == "time":
        return render_time(value)
    if kind == "int":
        return str(value)
    return value


def render_time(normalized: str) -> str:
    """HHMMSS.FFFFFF without a zero fraction: the stored time at its given precision."""
    whole, _, fraction = normalized.partition(".")
    fraction = fraction.rstrip("0")
    return f"{whole}.{fraction}" if fraction else whole


def _has_non_ascii(dataset: Dataset) -> bool:
    for element in dataset.iterall():
        values = element.value if isinstance(element.value, list | MultiValue) else [element.value]
        for value in values:
            if isinstance(value, str | PersonName) and not str(value).isascii():
                return True
    return False


@cache
def _keyword(tag: int) -> str:
    return keyword_for_tag(tag)


@cache  # dictionary look-ups cost more than building the element; a query repeats them
def _vr(tag: int) -> str:
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return "UN"
    return vr.split(" or ")[0]


def _tag(keyword: str) -> int:
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(keyword)
    if tag is None:  # pragma: no cover - the unique keys are dictionary keywords
        raise KeyError(keyword)
    return int(tag)
