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

# Keys whose values the archive computes from the hierarchy (PS3.4 C.6.1.1 and C.6.2.1).
COMPUTED_KEYS: dict[str, Level] = {
    "NumberOfPatientRelatedStudies": Level.PATIENT,
    "NumberOfPatientRelatedSeries": Level.PATIENT,
    "NumberOfPatientRelatedInstances": Level.PATIENT,
    "NumberOfStudyRelatedSeries": Level.STUDY,
    "NumberOfStudyRelatedInstances": Level.STUDY,
    "ModalitiesInStudy": Level.STUDY,
    "SOPClassesInStudy": Level.STUDY,
    "NumberOfSeriesRelatedInstances": Level.SERIES,
}

# Keys that describe the query itself: never matching keys.
QUERY_CONTROL_KEYS = frozenset({"QueryRetrieveLevel", "SpecificCharacterSet"})
# Keys the archive answers about itself (PS3.4 C.4.1.1.3.2): return keys, never matched.
ARCHIVE_KEYS = frozenset({"RetrieveAETitle", "InstanceAvailability"})


def columns_of(level: Level) -> tuple[IndexedKey, ...]:
    return tuple(key for key in INDEXED_KEYS.values() if key.level is level)
