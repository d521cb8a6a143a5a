"""WADO-RS metadata (PS3.18 10.4.1.1.2) from the header the index keeps for each instance.

The stored header is the DICOM JSON model with bulk data left out and marked by its tag
(`openpacs.dicom.header`). Here each marker becomes a BulkDataURI the WADO-RS service answers:
Pixel Data points at the instance's frames resource, any other value at
`{instance}/bulk/{path}`, where the path names the element through sequences
(`00089215/0/00091010`: an element in the first item of a sequence).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydicom.dataset import Dataset

from openpacs.dicom.json_model import normalized
from openpacs.dicom.query import Query
from openpacs.dicom.unique_keys import path_query
from openpacs.errors import InvalidQuery, NotFound

# Pixel Data, Float Pixel Data, Double Float Pixel Data.
_PIXEL_TAGS = frozenset({("7FE00010",), ("7FE00008",), ("7FE00009",)})
_NUMBER_OF_FRAMES = "00280008"
_HEX_TAG = re.compile(r"[0-9A-Fa-f]{8}")
_MAX_DEPTH = 8


def headers_query(
    study_uid: str, series_uid: str | None = None, sop_uid: str | None = None
) -> Query:
    """The instances of a study, series or instance, with their whole stored headers."""
    return path_query(study_uid, series_uid, sop_uid, whole_headers=True)


def instance_metadata(header: Mapping[str, Any], *, instance_url: str) -> dict[str, Any]:
    """The metadata of one instance: its header with bulk data markers turned into URIs."""
    frames = _frame_count(header)
    pixel_uri = f"{instance_url}/frames/{','.join(str(n) for n in range(1, frames + 1))}"
    return _rewrite(header, f"{instance_url}/bulk", pixel_uri, ())


def _rewrite(
    dataset: Mapping[str, Any], bulk_url: str, pixel_uri: str, path: tuple[str, ...]
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for tag, element in dataset.items():
        if not isinstance(element, Mapping):
            continue
        here = (*path, tag)
        if here in _PIXEL_TAGS:  # frames, even when small enough to have been kept inline
            result[tag] = {"vr": element.get("vr", "OW"), "BulkDataURI": pixel_uri}
        elif "BulkDataURI" in element:
            uri = f"{bulk_url}/{'/'.join(here)}"
            result[tag] = {"vr": element.get("vr", "UN"), "BulkDataURI": uri}
        elif element.get("vr") == "SQ" and element.get("Value"):
            items = [
                _rewrite(item, bulk_url, pixel_uri, (*here, str(index)))
                for index, item in enumerate(element["Value"])
                if isinstance(item, Mapping)
            ]
            result[tag] = {"vr": "SQ", "Value": items}
        else:  # headers stored by older versions may hold "" or {} values
            result[tag] = normalized(dict(element))
    return result


def _frame_count(header: Mapping[str, Any]) -> int:
    values = (header.get(_NUMBER_OF_FRAMES) or {}).get("Value") or [1]
    try:
        return max(int(values[0]), 1)
    except (TypeError, ValueError):
        return 1


def parse_bulk_path(text: str) -> tuple[int | str, ...]:
    """`7FE00010` or `00540016/0/00181072` into tags and item indices, alternating."""
    parts = text.strip("/").split("/")
    if not parts or len(parts) % 2 == 0 or len(parts) > 2 * _MAX_DEPTH + 1:
        raise InvalidQuery(f"bulk data path {text[:64]!r} is malformed")
    steps: list[int | str] = []
    for position, part in enumerate(parts):
        if position % 2 == 0:
            if not _HEX_TAG.fullmatch(part):
                raise InvalidQuery(f"bulk data path {text[:64]!r}: {part[:16]!r} is not a tag")
            steps.append(part.upper())
        else:
            if not part.isdigit() or len(part) > 6:
                raise InvalidQuery(f"bulk data path {text[:64]!r}: {part[:16]!r} is not an index")
            steps.append(int(part))
    return tuple(steps)


def bulk_value(ds: Dataset, steps: tuple[int | str, ...]) -> bytes:
    """The raw value of the element the path names (NotFound when there is none)."""
    current: Any = ds
    for position, step in enumerate(steps):
        if position % 2 == 0:
            tag = int(str(step), 16)
            if not isinstance(current, Dataset) or tag not in current:
                raise NotFound(f"no element {step} in the instance")
            current = current[tag].value
        else:
            index = int(step)
            if not isinstance(current, list | tuple) and not hasattr(current, "__getitem__"):
                raise NotFound("the bulk data path does not name a sequence item")
            if index >= len(current):
                raise NotFound(f"the sequence has no item {index}")
            current = current[index]
    if isinstance(current, bytes):
        return current
    raise NotFound("the bulk data path does not name a binary value")
