"""One query vocabulary: unique-key conditions built in one place, and one declaration of the
computed keys that C-FIND, QIDO-RS and the REST search read."""

from __future__ import annotations

import pytest
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset

from openpacs.dicom.levels import (
    COMPUTED,
    COMPUTED_KEYS,
    INDEXED_KEYS,
    Level,
    computed_of,
    only_returned,
)
from openpacs.dicom.qido import Resource, qido_query
from openpacs.dicom.query import Equals, Query, condition_for, query_from_identifier
from openpacs.dicom.unique_keys import (
    path_conditions,
    path_query,
    retrieval_query,
    unique_condition,
)
from openpacs.errors import InvalidQuery
from openpacs.web.rest.search import conditions as rest_conditions


def _tag(keyword: str) -> int:
    tag = tag_for_keyword(keyword)
    assert tag is not None
    return int(tag)


@pytest.mark.parametrize("level", [Level.STUDY, Level.SERIES, Level.IMAGE])
def test_a_uid_list_is_the_condition_every_door_compiles(level: Level) -> None:
    keyword = level.unique_key
    built = unique_condition(level, ["1.2.3", "1.2.4"])
    assert built.keyword == keyword
    assert built.tag == _tag(keyword)
    assert built.kind == "uid"
    assert built.alternatives == (Equals("1.2.3"), Equals("1.2.4"))
    # C-FIND identifiers, QIDO-RS parameters and REST parameters compile the same list.
    assert condition_for(_tag(keyword), "1.2.3\\1.2.4") == built
    identifier = Dataset()
    identifier.QueryRetrieveLevel = level.value
    setattr(identifier, keyword, ["1.2.3", "1.2.4"])
    assert query_from_identifier(identifier).condition(keyword) == built
    resource = {Level.STUDY: Resource.STUDIES, Level.SERIES: Resource.SERIES}
    qido = qido_query(resource.get(level, Resource.INSTANCES), [(keyword, "1.2.3,1.2.4")])
    assert qido.query.condition(keyword) == built
    assert rest_conditions(level, {keyword: "1.2.3\\1.2.4"}) == [built]


def test_a_unique_key_is_an_exact_value_and_a_uid_must_be_one() -> None:
    patient = unique_condition(Level.PATIENT, "PID*1")
    assert (patient.keyword, patient.kind) == ("PatientID", "text")
    assert patient.alternatives == (Equals("PID*1"),)  # names one patient, never a pattern
    for bad in ("1.02.3", "1.2.3 ", "1.2.*", "../etc"):
        with pytest.raises(InvalidQuery, match="not a valid UID"):
            unique_condition(Level.STUDY, bad)
    with pytest.raises(InvalidQuery, match="no value"):
        unique_condition(Level.SERIES, [])


def test_a_path_names_entities_from_the_study_down() -> None:
    keywords = [c.keyword for c in path_conditions("1.2", "1.2.3", "1.2.3.4")]
    assert keywords == ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"]
    assert [c.keyword for c in path_conditions("1.2")] == ["StudyInstanceUID"]
    with pytest.raises(ValueError, match="within its series"):
        path_conditions("1.2", None, "1.2.3.4")
    query = path_query("1.2", "1.2.3", return_tags=(_tag("Rows"),))
    assert query.level is Level.IMAGE
    assert query.return_tags == (_tag("Rows"),)
    # A QIDO-RS path names its study and series with the same conditions.
    qido = qido_query(Resource.STUDY_SERIES_INSTANCES, [], study_uid="1.2", series_uid="1.2.3")
    assert set(path_conditions("1.2", "1.2.3")) <= set(qido.query.conditions)


def test_a_retrieval_keeps_the_unique_keys_at_and_above_its_level() -> None:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "SERIES"
    identifier.PatientID = "PID1"
    identifier.StudyInstanceUID = "1.2"
    identifier.SeriesInstanceUID = ["1.2.3", "1.2.4"]
    identifier.Modality = "CT"
    identifier.SOPInstanceUID = "1.2.3.4"
    kept = retrieval_query(query_from_identifier(identifier))
    assert [c.keyword for c in kept.conditions] == [
        "PatientID",
        "StudyInstanceUID",
        "SeriesInstanceUID",
    ]
    with pytest.raises(InvalidQuery, match="SeriesInstanceUID is required"):
        retrieval_query(Query(Level.SERIES, (unique_condition(Level.STUDY, "1.2"),)))


def test_each_computed_key_is_declared_once_with_what_it_computes() -> None:
    assert {key.keyword: key.level for key in COMPUTED.values()} == COMPUTED_KEYS
    for key in COMPUTED.values():
        assert tag_for_keyword(key.keyword) is not None
        assert (key.counts is None) != (key.lists is None), key.keyword
        if key.counts is not None:
            assert key.counts.depth > key.level.depth
        if key.lists is not None:
            assert INDEXED_KEYS[key.lists].level.depth > key.level.depth
        if key.matchable:
            assert key.lists is not None
    assert only_returned("NumberOfStudyRelatedInstances")
    assert not only_returned("ModalitiesInStudy")
    assert not only_returned("StudyDescription")
    assert [k.keyword for k in computed_of(Level.SERIES)] == ["NumberOfSeriesRelatedInstances"]


@pytest.mark.parametrize("resource", [Resource.STUDIES, Resource.SERIES, Resource.INSTANCES])
def test_includefield_all_asks_for_the_declared_computed_keys(resource: Resource) -> None:
    level = resource.level
    tags = set(qido_query(resource, [("includefield", "all")]).query.return_tags)
    declared = {
        _tag(key.keyword)
        for key in COMPUTED.values()
        if key.level is not Level.PATIENT and key.level.depth <= level.depth
    }
    assert declared <= tags
    patient = {_tag(key.keyword) for key in computed_of(Level.PATIENT)}
    assert not patient & tags  # QIDO-RS has no patient level


def test_only_a_matchable_computed_key_is_a_matching_key_anywhere() -> None:
    for key in COMPUTED.values():
        identifier = Dataset()
        identifier.QueryRetrieveLevel = key.level.value
        setattr(identifier, key.keyword, "CT" if key.lists == "Modality" else "1")
        query = query_from_identifier(identifier)
        assert (query.condition(key.keyword) is not None) == key.matchable, key.keyword
        resource = {Level.STUDY: Resource.STUDIES, Level.SERIES: Resource.SERIES}
        if key.level in resource:
            params = [(key.keyword, "CT" if key.lists == "Modality" else "1")]
            if key.matchable:
                assert qido_query(resource[key.level], params).query.condition(key.keyword)
            else:
                with pytest.raises(InvalidQuery, match="computed"):
                    qido_query(resource[key.level], params)
        if key.matchable:
            assert rest_conditions(key.level, {key.keyword: "CT"})
            with pytest.raises(InvalidQuery, match="unknown search parameter"):
                rest_conditions(Level.SERIES, {key.keyword: "CT"})
        else:
            with pytest.raises(InvalidQuery, match="unknown search parameter"):
                rest_conditions(key.level, {key.keyword: "1"})
