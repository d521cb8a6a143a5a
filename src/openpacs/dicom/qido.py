"""QIDO-RS query parameters to the query model C-FIND uses, and results as DICOM JSON.

PS3.18 10.6: `{attribute}={value}` matches by keyword or tag with the rules of PS3.4 C.2.2.2
(`openpacs.dicom.query`), attributes in sequences by their path (`Sequence.Attribute`);
`includefield` adds return attributes (keywords, tags or `all`); `limit` and `offset` page;
`fuzzymatching=true` matches person names on any part of the name (case-insensitive
substring, an implementation-defined fuzzy match as PS3.18 allows). The response content is
`openpacs.dicom.results`, the same as a C-FIND response's.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword

from openpacs.dicom.levels import (
    ARCHIVE_KEYS,
    COMPUTED_KEYS,
    INDEXED_KEYS,
    Level,
    computed_of,
    only_returned,
)
from openpacs.dicom.query import (
    Condition,
    Equals,
    Pattern,
    Query,
    condition_for,
    sequence_condition,
    tag_of,
)
from openpacs.dicom.results import MatchedEntity, result_json
from openpacs.dicom.unique_keys import unique_condition
from openpacs.errors import InvalidQuery

MAX_RESULTS = 10_000
_MAX_PARAMETERS = 200
_MAX_VALUE_LENGTH = 1024


class Resource(enum.Enum):
    """The six QIDO-RS resources (PS3.18 10.6.1): a level and which ancestors are given."""

    STUDIES = (Level.STUDY, ())
    STUDY_SERIES = (Level.SERIES, ("StudyInstanceUID",))
    SERIES = (Level.SERIES, ())
    STUDY_INSTANCES = (Level.IMAGE, ("StudyInstanceUID",))
    STUDY_SERIES_INSTANCES = (Level.IMAGE, ("StudyInstanceUID", "SeriesInstanceUID"))
    INSTANCES = (Level.IMAGE, ())

    @property
    def level(self) -> Level:
        level: Level = self.value[0]
        return level


def _tags(*keywords: str) -> tuple[int, ...]:
    found = [tag_for_keyword(k) for k in keywords]
    return tuple(int(tag) for tag in found if tag is not None)


# PS3.18 Tables 10.6.1-5, -6 and -7: attributes returned without includefield.
STUDY_DEFAULTS = _tags(
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "ModalitiesInStudy",
    "ReferringPhysicianName",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyID",
    "StudyDescription",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)
SERIES_DEFAULTS = _tags(
    "Modality",
    "SeriesDescription",
    "SeriesInstanceUID",
    "SeriesNumber",
    "SeriesDate",
    "SeriesTime",
    "BodyPartExamined",
    "NumberOfSeriesRelatedInstances",
    "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime",
    "RequestAttributesSequence",
)
INSTANCE_DEFAULTS = _tags(
    "SOPClassUID",
    "SOPInstanceUID",
    "InstanceNumber",
    "Rows",
    "Columns",
    "BitsAllocated",
    "NumberOfFrames",
)
_DEFAULTS = {
    Level.STUDY: STUDY_DEFAULTS,
    Level.SERIES: SERIES_DEFAULTS,
    Level.IMAGE: INSTANCE_DEFAULTS,
}
# PS3.18 10.6.3.3.1: the levels whose attributes each resource returns by default.
_RETURNED_LEVELS = {
    Resource.STUDIES: (Level.STUDY,),
    Resource.STUDY_SERIES: (Level.SERIES,),
    Resource.SERIES: (Level.STUDY, Level.SERIES),
    Resource.STUDY_INSTANCES: (Level.SERIES, Level.IMAGE),
    Resource.STUDY_SERIES_INSTANCES: (Level.IMAGE,),
    Resource.INSTANCES: (Level.STUDY, Level.SERIES, Level.IMAGE),
}
_RETRIEVE_URL = 0x00081190
# Answered by the archive itself in every result (InstanceAvailability is always ONLINE), so
# they are never asked of the index, where they would cost a read of every header.
_ARCHIVE_TAGS = _tags(*sorted(ARCHIVE_KEYS - {"RetrieveAETitle"}))


@dataclass(frozen=True)
class QidoQuery:
    query: Query
    include_all: bool = False


def qido_query(
    resource: Resource,
    params: Sequence[tuple[str, str]],
    *,
    study_uid: str | None = None,
    series_uid: str | None = None,
) -> QidoQuery:
    """Compile query parameters (in order, repeats allowed) for `resource`.

    Without a limit, or above MAX_RESULTS, the query asks for MAX_RESULTS + 1 so the caller
    can tell that more results exist (and say so, PS3.18 10.6.3.2).
    Raises InvalidQuery with a reason for anything malformed.
    """
    if len(params) > _MAX_PARAMETERS:
        raise InvalidQuery(f"too many query parameters (at most {_MAX_PARAMETERS})")
    level = resource.level
    values: dict[tuple[int, ...], list[str]] = {}
    included: list[int] = []
    include_all = False
    fuzzy = False
    limit: int | None = None
    offset = 0
    for name, value in params:
        if len(value) > _MAX_VALUE_LENGTH:
            raise InvalidQuery(f"{name[:64]}: the value is longer than {_MAX_VALUE_LENGTH}")
        if name == "limit":
            limit = _count(name, value, minimum=1)
        elif name == "offset":
            offset = _count(name, value, minimum=0)
        elif name == "fuzzymatching":
            fuzzy = _boolean(name, value)
        elif name == "includefield":
            for field in (part.strip() for part in value.split(",")):
                if field == "all":
                    include_all = True
                elif field:
                    included.append(_path(field)[0])
        else:
            values.setdefault(_path(name), []).append(value)
    named = ((Level.STUDY, study_uid), (Level.SERIES, series_uid))
    path = [unique_condition(level, uid) for level, uid in named if uid is not None]
    for condition in path:
        if (condition.tag,) in values:
            raise InvalidQuery(
                f"{condition.keyword} is given by the path; it is not a query parameter"
            )
    conditions = [*_conditions(values, fuzzy=fuzzy), *path]
    return_tags = [*_defaults(resource), *included, *(p[0] for p in values)]
    return_tags += [condition.tag for condition in path]
    if include_all:
        return_tags += _all_keys(level)
    archive_tags = set(_tags(*ARCHIVE_KEYS))
    return_tags = [
        tag for tag in return_tags if tag not in archive_tags and _applies_at(level, tag)
    ]
    query = Query(
        level=level,
        conditions=tuple(conditions),
        return_tags=tuple(dict.fromkeys(return_tags)),
        fuzzy=fuzzy,
        limit=limit if limit is not None and limit <= MAX_RESULTS else MAX_RESULTS + 1,
        offset=offset,
        whole_headers=include_all and level is Level.IMAGE,  # see qido_result
    )
    return QidoQuery(query, include_all)


def qido_result(qido: QidoQuery, match: MatchedEntity, *, base_url: str) -> dict[str, Any]:
    """One result in the DICOM JSON model (PS3.18 F.2), with its RetrieveURL."""
    tags: Iterable[int] = qido.query.return_tags
    if qido.include_all and match.level is Level.IMAGE and match.header:
        tags = [*tags, *(int(key, 16) for key in match.header if not _bulk(match.header[key]))]
    result = result_json(match, [*tags, *_ARCHIVE_TAGS])
    result[f"{_RETRIEVE_URL:08X}"] = {"vr": "UR", "Value": [retrieve_url(base_url, match)]}
    return dict(sorted(result.items()))


def retrieve_url(base_url: str, match: MatchedEntity) -> str:
    path = f"{base_url.rstrip('/')}/studies/{match.values['StudyInstanceUID']}"
    if match.level.depth >= Level.SERIES.depth:
        path += f"/series/{match.values['SeriesInstanceUID']}"
    if match.level is Level.IMAGE:
        path += f"/instances/{match.values['SOPInstanceUID']}"
    return path


def _defaults(resource: Resource) -> list[int]:
    return [tag for level in _RETURNED_LEVELS[resource] for tag in _DEFAULTS[level]]


def _all_keys(level: Level) -> list[int]:
    """`includefield=all`: every indexed and computed key of the level and its ancestors."""
    keys = [k.keyword for k in INDEXED_KEYS.values() if k.level.depth <= level.depth]
    # QIDO-RS has no patient level (PS3.18 10.6.1), so no patient counts.
    above = [up for up in level.at_or_above() if up is not Level.PATIENT]
    keys += [key.keyword for up in above for key in computed_of(up)]
    return list(_tags(*keys))


def _applies_at(level: Level, tag: int) -> bool:
    """Whether an attribute the archive knows the level of has a value at `level`.

    A key of a lower level (Modality in a study search, PS3.4 C.6.1.1.3) has no single value
    there: it is left out of the result rather than answered empty, which is what clients
    expect (OHIF reads `Value` of a Modality it asked for at study level and merges it with
    ModalitiesInStudy, the study-level key for it). Other attributes come from the stored
    header and are answered from the entity's first instance.
    """
    keyword = keyword_for_tag(tag)
    owner = INDEXED_KEYS[keyword].level if keyword in INDEXED_KEYS else COMPUTED_KEYS.get(keyword)
    return owner is None or owner.depth <= level.depth


def _conditions(values: dict[tuple[int, ...], list[str]], *, fuzzy: bool) -> list[Condition]:
    """Conditions for attribute paths: attributes in sequences (`Sequence.Attribute`,
    PS3.18 8.3.4.1) are grouped by their sequence into the one item it is matched with
    (PS3.4 C.2.2.2.6), at every depth."""
    conditions: list[Condition] = []
    nested: dict[int, dict[tuple[int, ...], list[str]]] = {}
    for path, raw in values.items():
        if len(path) > 1:
            nested.setdefault(path[0], {})[path[1:]] = raw
            continue
        (tag,) = path
        condition = condition_for(tag, _split_values(tag, raw))
        if condition is not None:
            _check_matchable(tag)
            conditions.append(_fuzzy(condition) if fuzzy else condition)
    for tag, inner in nested.items():
        if (tag,) in values:
            raise InvalidQuery(
                f"{_name(tag)}: a sequence is matched by the attributes of its item "
                "(Sequence.Attribute=value)"
            )
        sequence = sequence_condition(tag, _conditions(inner, fuzzy=fuzzy))
        if sequence is not None:
            conditions.append(sequence)
    return conditions


_MAX_DEPTH = 4


def _path(name: str) -> tuple[int, ...]:
    """An attribute or a path through sequences (`ReferencedStudySequence.ReferencedSOPInstanceUID`,
    tags or keywords): every step but the last a sequence."""
    steps = tuple(_attribute(part) for part in name.split("."))
    if len(steps) > _MAX_DEPTH:
        raise InvalidQuery(f"{name[:64]!r}: sequences nest at most {_MAX_DEPTH - 1} deep here")
    for tag in steps[:-1]:
        if _vr(tag) != "SQ":
            raise InvalidQuery(f"{name[:64]!r}: {_name(tag)} is not a sequence")
    return steps


def _name(tag: int) -> str:
    return keyword_for_tag(tag) or f"{tag:08X}"


def _attribute(name: str) -> int:
    tag = tag_of(name)
    if tag.group in (0x0000, 0x0002) or tag.element == 0:
        raise InvalidQuery(f"{name!r} is not an attribute that can be queried")
    return int(tag)


def _check_matchable(tag: int) -> None:
    keyword = keyword_for_tag(tag)
    if only_returned(keyword):
        raise InvalidQuery(f"{keyword} is computed by the archive; it cannot be matched")
    if _vr(tag) == "SQ":
        raise InvalidQuery(
            f"{_name(tag)}: a sequence is matched by the attributes of its item "
            "(Sequence.Attribute=value)"
        )


def _vr(tag: int) -> str:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return "UN"


def _split_values(tag: int, raw: list[str]) -> list[str]:
    """PS3.18 8.3.4.1: UID lists may be separated by commas as well as backslashes."""
    vr = _vr(tag)
    parts = [part for value in raw for part in value.split("\\")]
    if vr == "UI":
        parts = [uid for part in parts for uid in part.split(",")]
    return parts


def _fuzzy(condition: Condition) -> Condition:
    if condition.kind != "name":
        return condition
    alternatives = tuple(
        Pattern(f"*{alt.value}*") if isinstance(alt, Equals) else alt
        for alt in condition.alternatives
    )
    return replace(condition, alternatives=alternatives)


def _count(name: str, value: str, *, minimum: int) -> int:
    text = value.strip()
    if not text.isdigit() or len(text) > 9 or int(text) < minimum:
        raise InvalidQuery(f"{name}={value[:32]!r}: expected an integer of at least {minimum}")
    return int(text)


def _boolean(name: str, value: str) -> bool:
    text = value.strip().lower()
    if text not in ("true", "false"):
        raise InvalidQuery(f"{name}={value[:32]!r}: expected true or false")
    return text == "true"


def _bulk(element: Any) -> bool:
    return isinstance(element, dict) and "BulkDataURI" in element
