"""Query/Retrieve levels and the keys the index keeps for each (PS3.4 C.6).

The information model is hierarchical: a patient has studies, a study has series, a series has
instances (the IMAGE level). Each level has one unique key; the keys listed here are the ones
the index keeps as typed, indexed columns, so they match in SQL. Every other attribute is still
answerable from the stored header.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

KeyKind = Literal["text", "name", "date", "time", "datetime", "uid", "int"]


class Level(enum.Enum):
    PATIENT = "PATIENT"
    STUDY = "STUDY"
    SERIES = "SERIES"
    IMAGE = "IMAGE"

    @property
    def depth(self) -> int:
        return _DEPTH[self]

    @property
    def unique_key(self) -> str:
        return _UNIQUE_KEY[self]

    def at_or_above(self) -> tuple[Level, ...]:
        return tuple(level for level in Level if level.depth <= self.depth)


_DEPTH = {Level.PATIENT: 0, Level.STUDY: 1, Level.SERIES: 2, Level.IMAGE: 3}
_UNIQUE_KEY = {
    Level.PATIENT: "PatientID",
    Level.STUDY: "StudyInstanceUID",
    Level.SERIES: "SeriesInstanceUID",
    Level.IMAGE: "SOPInstanceUID",
}


@dataclass(frozen=True)
class IndexedKey:
    """An attribute kept as an indexed column of its level's table."""

    keyword: str
    level: Level
    column: str
    kind: KeyKind


INDEXED_KEYS: dict[str, IndexedKey] = {
    key.keyword: key
    for key in (
        IndexedKey("PatientID", Level.PATIENT, "patient_id", "text"),
        IndexedKey("PatientName", Level.PATIENT, "patient_name", "name"),
        IndexedKey("PatientBirthDate", Level.PATIENT, "patient_birth_date", "date"),
        IndexedKey("PatientSex", Level.PATIENT, "patient_sex", "text"),
        IndexedKey("StudyInstanceUID", Level.STUDY, "study_uid", "uid"),
        IndexedKey("StudyDate", Level.STUDY, "study_date", "date"),
        IndexedKey("StudyTime", Level.STUDY, "study_time", "time"),
        IndexedKey("AccessionNumber", Level.STUDY, "accession_number", "text"),
        IndexedKey("StudyID", Level.STUDY, "study_id", "text"),
        IndexedKey("ReferringPhysicianName", Level.STUDY, "referring_physician_name", "name"),
        IndexedKey("StudyDescription", Level.STUDY, "study_description", "text"),
        IndexedKey("SeriesInstanceUID", Level.SERIES, "series_uid", "uid"),
        IndexedKey("Modality", Level.SERIES, "modality", "text"),
        IndexedKey("SeriesNumber", Level.SERIES, "series_number", "int"),
        IndexedKey("SeriesDescription", Level.SERIES, "series_description", "text"),
        IndexedKey("BodyPartExamined", Level.SERIES, "body_part_examined", "text"),
        IndexedKey("SeriesDate", Level.SERIES, "series_date", "date"),
        IndexedKey("SeriesTime", Level.SERIES, "series_time", "time"),
        IndexedKey("SOPInstanceUID", Level.IMAGE, "sop_uid", "uid"),
        IndexedKey("SOPClassUID", Level.IMAGE, "sop_class_uid", "uid"),
        IndexedKey("InstanceNumber", Level.IMAGE, "instance_number", "int"),
    )
}


@dataclass(frozen=True)
class ComputedKey:
    """An attribute the archive computes from the hierarchy below an entity (PS3.4 C.6.1.1.4,
    C.6.2.1.2): a count of the entities of one level below that hold an instance, or the
    distinct values of an indexed key below. The one declaration the index computes, C-FIND
    and QIDO-RS answer (`includefield=all` included) and the REST listings return."""

    keyword: str
    level: Level
    counts: Level | None = None
    """The level whose entities below (those holding an instance) the value counts."""
    lists: str | None = None
    """The indexed key whose distinct non-empty values below the entity are the value."""
    matchable: bool = False
    """A matching key too: the entity matches when one of the listed values does."""
    in_listings: bool = True
    """Returned with every entity of a REST listing (SOPClassesInStudy is asked for only)."""


COMPUTED: dict[str, ComputedKey] = {
    key.keyword: key
    for key in (
        ComputedKey("NumberOfPatientRelatedStudies", Level.PATIENT, counts=Level.STUDY),
        ComputedKey("NumberOfPatientRelatedSeries", Level.PATIENT, counts=Level.SERIES),
        ComputedKey("NumberOfPatientRelatedInstances", Level.PATIENT, counts=Level.IMAGE),
        ComputedKey("NumberOfStudyRelatedSeries", Level.STUDY, counts=Level.SERIES),
        ComputedKey("NumberOfStudyRelatedInstances", Level.STUDY, counts=Level.IMAGE),
        ComputedKey("ModalitiesInStudy", Level.STUDY, lists="Modality", matchable=True),
        ComputedKey("SOPClassesInStudy", Level.STUDY, lists="SOPClassUID", in_listings=False),
        ComputedKey("NumberOfSeriesRelatedInstances", Level.SERIES, counts=Level.IMAGE),
    )
}
# The level each computed key belongs to.
COMPUTED_KEYS: dict[str, Level] = {key.keyword: key.level for key in COMPUTED.values()}

# Keys that describe the query itself: never matching keys.
QUERY_CONTROL_KEYS = frozenset({"QueryRetrieveLevel", "SpecificCharacterSet"})
# Keys the archive answers about itself (PS3.4 C.4.1.1.3.2): return keys, never matched.
ARCHIVE_KEYS = frozenset({"RetrieveAETitle", "InstanceAvailability"})


def computed_of(level: Level) -> tuple[ComputedKey, ...]:
    """The computed keys of `level` (not of its ancestors)."""
    return tuple(key for key in COMPUTED.values() if key.level is level)


def only_returned(keyword: str) -> bool:
    """A computed key that cannot be a matching key: a query may ask for it, not match on it."""
    key = COMPUTED.get(keyword)
    return key is not None and not key.matchable
