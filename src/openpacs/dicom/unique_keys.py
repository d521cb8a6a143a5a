"""Conditions on unique keys: how every door names patients, studies, series and instances.

Each level has one unique key (PS3.4 C.6.1.1 and C.6.2.1): PatientID, StudyInstanceUID,
SeriesInstanceUID, SOPInstanceUID. Naming entities by it is single value matching, or list of
UID matching for several (PS3.4 C.2.2.2.1 and C.2.2.2.2): exact values, never wildcards, and a
UID outside the grammar is refused rather than left to match nothing. Below the study an
entity is named from the top, as a DICOMweb path names it (a series by its study and its own
UID, an instance by its study, series and own UID); a retrieval
(C-GET, C-MOVE) is identified by the unique keys of its level and of the levels above alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from openpacs.dicom.levels import INDEXED_KEYS, Level
from openpacs.dicom.query import Condition, Equals, Query, tag_of
from openpacs.dicom.uids import checked_uid
from openpacs.errors import InvalidQuery


def unique_condition(level: Level, values: str | Sequence[str]) -> Condition:
    """The condition selecting the entities of `level` whose unique key is one of `values`;
    InvalidQuery when there is none or a UID is not one."""
    keyword = level.unique_key
    key = INDEXED_KEYS[keyword]
    given = [values] if isinstance(values, str) else list(values)
    if not given:
        raise InvalidQuery(f"{keyword}: no value given")
    if key.kind == "uid":
        given = [checked_uid(value, keyword) for value in given]
    return Condition(
        keyword, int(tag_of(keyword)), key.kind, tuple(Equals(value) for value in given)
    )


def path_conditions(
    study: str, series: str | None = None, instance: str | None = None
) -> tuple[Condition, ...]:
    """The conditions naming a study, a series of it or an instance of that series, from the
    top as a DICOMweb path does (PS3.18 10.4.1)."""
    if instance is not None and series is None:
        raise ValueError("an instance is named within its series")
    named = ((Level.STUDY, study), (Level.SERIES, series), (Level.IMAGE, instance))
    return tuple(unique_condition(level, uid) for level, uid in named if uid is not None)


def path_query(
    study: str,
    series: str | None = None,
    instance: str | None = None,
    *,
    return_tags: tuple[int, ...] = (),
    whole_headers: bool = False,
) -> Query:
    """The instances a DICOMweb path names (study, series, instance), at the IMAGE level."""
    return Query(
        Level.IMAGE,
        conditions=path_conditions(study, series, instance),
        return_tags=return_tags,
        whole_headers=whole_headers,
    )


def retrieval_query(query: Query) -> Query:
    """What a C-GET or C-MOVE identifier retrieves: the unique key of its level must select
    something (PS3.4 C.4.2.1.4, C.4.3.1.3); the unique keys of the levels above narrow it,
    and every other key is ignored."""
    level = query.level
    if query.condition(level.unique_key) is None:
        raise InvalidQuery(f"{level.unique_key} is required to retrieve at {level.value}")
    keys = {above.unique_key for above in level.at_or_above()}
    return Query(level, tuple(c for c in query.conditions if c.keyword in keys))
