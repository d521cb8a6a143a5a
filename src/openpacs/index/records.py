"""What the index hands to the archive: plain values, no database types."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from openpacs.dicom.levels import Level

DuplicatePolicy = Literal["keep", "overwrite", "reject"]


@dataclass(frozen=True)
class Match:
    level: Level
    values: dict[str, Any]
    """Indexed keys of the level and its ancestors, and requested computed keys, by keyword."""
    header: dict[str, Any] | None = field(default=None)
    """The stored header of a representative instance, when the query needs it."""


@dataclass(frozen=True)
class StoredInstance:
    sop_uid: str
    sop_class_uid: str
    transfer_syntax: str
    blob_key: str
    blob_size: int
    study_uid: str
    series_uid: str


@dataclass(frozen=True)
class AddResult:
    stored: bool
    """False when an identical SOP instance was already stored and kept."""
    replaced_blob: str | None = None
    """The blob of the copy an overwrite replaced: delete it once the commit is done."""


@dataclass(frozen=True)
class Totals:
    patients: int
    studies: int
    series: int
    instances: int
    bytes: int


@dataclass(frozen=True)
class IndexedBlob:
    """What the index says one instance's blob is."""

    sop_uid: str
    blob_key: str
    blob_size: int
    blob_sha256: str
