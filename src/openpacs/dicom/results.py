"""The content of query results, shared by C-FIND responses and QIDO-RS (PS3.4 C.4.1.1.3.2).

A result holds the requested attributes of one matched entity: indexed keys from their
columns, computed keys from the index, the archive's own keys (RetrieveAETitle,
InstanceAvailability) and every other attribute from the stored header. The unique keys of the
entity's level and of its ancestors (the patient's only at PATIENT level) are always included.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.valuerep import DSfloat, PersonName

from openpacs.dicom.json_model import normalized, value_array
from openpacs.dicom.levels import COMPUTED_KEYS, INDEXED_KEYS, Level


class MatchedEntity(Protocol):
    """What the index returns for one match (`openpacs.archive.records.Match`)."""

    @property
    def level(self) -> Level: ...

    @property
    def values(self) -> Mapping[str, Any]: ...

    @property
    def header(self) -> Mapping[str, Any] | None: ...


def result_tags(level: Level, requested: Iterable[int]) -> list[int]:
    """The requested tags plus the unique keys of the level and its ancestors, in order."""
    tags = set(requested)
    for above in level.at_or_above():
        if above is not Level.PATIENT or level is Level.PATIENT:
            tags.add(_tag(above.unique_key))
    return sorted(tags)


def result_dataset(
    match: MatchedEntity, requested: Iterable[int], *, retrieve_aet: str | None = None
) -> Dataset:
    """One result as a dataset (a C-FIND response); attributes without a value are empty."""
    result = Dataset()
    for tag in result_tags(match.level, requested):
        source = source_of(tag, match, retrieve_aet)
        if source is None:
            continue
        vr, value, stored = source
        if stored is not None:
            result.add(_stored_element(tag, vr, stored))
        else:
            result.add(DataElement(tag, vr, value))
    return result


def _stored_element(tag: int, vr: str, stored: Mapping[str, Any]) -> DataElement:
    """A stored DICOM JSON element as a DataElement to encode.

    pydicom turns a null among IS or DS values (an empty value, PS3.18 F.2.5) into None and
    then writes "None": such values are given as the text they came from instead.
    """
    value_key = next(k for k in ("Value", "InlineBinary") if k in stored)
    values = stored[value_key]
    if vr in ("IS", "DS") and None in values:
        text = "\\".join("" if v is None else _number_text(vr, v) for v in values)
        return DataElement(tag, vr, text)
    return DataElement.from_json(Dataset, f"{tag:08X}", vr, values, value_key)


def _number_text(vr: str, value: Any) -> str:
    if vr == "DS":
        return str(DSfloat(value, auto_format=True))
    return str(int(value))


def result_json(
    match: MatchedEntity, requested: Iterable[int], *, retrieve_aet: str | None = None
) -> dict[str, Any]:
    """The same result in the DICOM JSON model (PS3.18 F.2), built without pydicom objects:
    QIDO-RS answers many results, and stored header values are JSON already."""
    result: dict[str, Any] = {}
    for tag in result_tags(match.level, requested):
        source = source_of(tag, match, retrieve_aet)
        if source is None:
            continue
        vr, value, stored = source
        if stored is not None:
            result[f"{tag:08X}"] = normalized(dict(stored))
        else:
            values = value_array(vr, value if isinstance(value, list) else [value])
            result[f"{tag:08X}"] = {"vr": vr} if values is None else {"vr": vr, "Value": values}
    return result


Source = tuple[str, Any, Mapping[str, Any] | None]


def source_of(tag: int, match: MatchedEntity, retrieve_aet: str | None) -> Source | None:
    """Where a result attribute comes from: (VR, value, stored JSON element or None).

    The archive's own keys, then indexed and computed keys from the index, then the stored
    header; None leaves the attribute out.
    """
    keyword, vr = _describe(tag)
    if keyword == "RetrieveAETitle":
        return ("AE", retrieve_aet, None) if retrieve_aet else None
    if keyword == "InstanceAvailability":
        return "CS", "ONLINE", None
    if keyword in match.values:
        return vr, _column_value(keyword, match.values[keyword]), None
    if keyword in INDEXED_KEYS or keyword in COMPUTED_KEYS:
        return vr, None, None  # a key of a lower level: returned empty
    stored = (match.header or {}).get(f"{tag:08X}")
    if stored and ("Value" in stored or "InlineBinary" in stored):
        return stored["vr"], None, stored
    return (stored["vr"] if stored else vr), None, None


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


def has_non_ascii(dataset: Dataset) -> bool:
    for element in dataset.iterall():
        values = element.value if isinstance(element.value, list | MultiValue) else [element.value]
        for value in values:
            if isinstance(value, str | PersonName) and not str(value).isascii():
                return True
    return False


@functools.lru_cache(maxsize=4096)
def _describe(tag: int) -> tuple[str, str]:
    return keyword_for_tag(tag), _vr(tag)


def _vr(tag: int) -> str:
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return "UN"
    return vr.split(" or ")[0]


def _tag(keyword: str) -> int:
    tag = tag_for_keyword(keyword)
    if tag is None:  # pragma: no cover - the unique keys are dictionary keywords
        raise KeyError(keyword)
    return int(tag)
