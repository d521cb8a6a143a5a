"""Elements in the DICOM JSON model (PS3.18 F.2) with empty values in their standard form.

pydicom's `DataElement.to_json_dict` does the conversion; this module fixes what it gets wrong
about empty values, which clients trip over (OHIF reads `Value` whenever an element has one):

- F.2.5: an element without a value has no "Value"; an empty value among several is `null`.
  pydicom keeps `""` in a multi-valued string and raises on an empty value in a multi-valued
  PN, DS or IS, which would leave the whole element out.
- F.2.2: a Person Name is an object of its non-empty component groups; an empty name is
  `null`, never `{}` or `{"Alphabetic": ""}`.

Sequences are converted item by item here, so an element inside an item gets the same care.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

BulkHandler = Callable[[DataElement], str]

_PN_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")
_JSON_INTEGERS = frozenset({"IS", "SL", "SS", "UL", "US", "SV", "UV"})
_JSON_FLOATS = frozenset({"DS", "FL", "FD"})


def element_json(
    element: DataElement, *, bulk_handler: BulkHandler | None, bulk_threshold: int
) -> dict[str, Any]:
    """One element as a DICOM JSON attribute object, empty values as PS3.18 F.2.5 says."""
    if element.VR == "SQ":
        items = element.value or []
        return {
            "vr": "SQ",
            "Value": [dataset_json_items(item, bulk_handler, bulk_threshold) for item in items],
        }
    try:
        converted = element.to_json_dict(bulk_handler, bulk_threshold)
    except (IndexError, TypeError, ValueError):
        if element.VR not in ("PN", *_JSON_INTEGERS, *_JSON_FLOATS):
            raise
        raw = element.value if element.VM > 1 else [element.value]
        converted = {"vr": element.VR, "Value": [_plain(element.VR, v) for v in raw]}
    return normalized(converted)


def dataset_json_items(
    dataset: Dataset, bulk_handler: BulkHandler | None, bulk_threshold: int
) -> dict[str, Any]:
    """A sequence item as a DICOM JSON object (group lengths left out, as at the top level)."""
    return {
        f"{element.tag:08X}": element_json(
            element, bulk_handler=bulk_handler, bulk_threshold=bulk_threshold
        )
        for element in dataset
        if element.tag.element != 0x0000
    }


def normalized(attribute: dict[str, Any]) -> dict[str, Any]:
    """`attribute` with empty values as F.2.5 wants them: null in a list, no Value if none.

    Most attributes have no empty value: they are returned as they are, checked at C speed
    (this runs for every element of every stored instance).
    """
    vr = attribute.get("vr")
    values = attribute.get("Value")
    if vr == "SQ" or not isinstance(values, list):
        return attribute
    if vr != "PN" and values and "" not in values:
        return attribute
    cleaned = [json_value(vr, value) for value in values]
    result = {key: item for key, item in attribute.items() if key != "Value"}
    if any(value is not None for value in cleaned) or len(cleaned) > 1:
        result["Value"] = cleaned
    return result


def value_array(vr: str, values: Iterable[Any]) -> list[Any] | None:
    """Python values as a JSON "Value" array, or None when the attribute has no value."""
    cleaned = [json_value(vr, value) for value in values]
    if not cleaned or (len(cleaned) == 1 and cleaned[0] is None):
        return None
    return cleaned


def json_value(vr: str | None, value: Any) -> Any:
    """One value in its JSON form (F.2.3); None for an empty one."""
    if value is None:
        return None
    if vr == "PN":
        groups = _name_groups(value)
        return groups or None
    if isinstance(value, str):
        if value == "":
            return None
        if vr in _JSON_INTEGERS or vr in _JSON_FLOATS:
            return _plain(vr, value)
    return value


def _name_groups(value: Any) -> dict[str, str]:
    """F.2.2: the non-empty component groups of a person name (an object or `A=I=P` text)."""
    if isinstance(value, dict):
        return {group: value[group] for group in _PN_GROUPS if value.get(group)}
    parts = str(value).split("=")
    return {group: part for group, part in zip(_PN_GROUPS, parts, strict=False) if part}


def _plain(vr: str, value: Any) -> Any:
    """A value pydicom could not convert: empty is None, numbers become JSON numbers."""
    text = "" if value is None else str(value).strip()
    if text == "":
        return None
    if vr == "PN":
        return _name_groups(text) or None
    if vr in _JSON_INTEGERS:
        return int(float(text)) if vr == "IS" else int(text)
    return float(text)
