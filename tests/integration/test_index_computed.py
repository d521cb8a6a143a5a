"""Computed keys (PS3.4 C.6.1.1.4, C.6.2.1.2) on every backend: the index's counts and lists
equal what the stored datasets say, at every level, with and without a matching key."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset

from openpacs.archive.service import Archive
from openpacs.compose import build_archive
from openpacs.config import load_settings
from openpacs.dicom.levels import COMPUTED_KEYS, Level
from openpacs.dicom.query import Query, condition_for
from tests.support import corpus
from tests.support.backends import Backend
from tests.support.node import write_config

_UNIQUE = {
    Level.PATIENT: "PatientID",
    Level.STUDY: "StudyInstanceUID",
    Level.SERIES: "SeriesInstanceUID",
}


@pytest.fixture(scope="module")
def stored(
    tmp_path_factory: pytest.TempPathFactory, module_backend: Backend
) -> Iterator[tuple[Archive, list[Dataset]]]:
    folder = tmp_path_factory.mktemp("computed")
    settings = load_settings(write_config(folder, module_backend.sections(folder)), environ={})
    archive = build_archive(settings)
    datasets = list(corpus.small_instances(6, 3, 2, rows=8, columns=8, seed=3))
    for index, ds in enumerate(datasets):
        archive.store_file(corpus.write_part10(ds, folder / f"{index}.dcm"), consume=True)
    yield archive, datasets
    archive.close()


def _expected(level: Level, datasets: list[Dataset]) -> dict[str, dict[str, Any]]:
    """Each entity's computed keys, from the datasets themselves."""
    below: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for ds in datasets:
        owner = str(ds[_UNIQUE[level]].value)
        below[owner]["studies"].add(str(ds.StudyInstanceUID))
        below[owner]["series"].add(str(ds.SeriesInstanceUID))
        below[owner]["instances"].add(str(ds.SOPInstanceUID))
        below[owner]["modalities"].add(str(ds.Modality))
        below[owner]["sop_classes"].add(str(ds.SOPClassUID))
    expected: dict[str, dict[str, Any]] = {}
    for owner, sets in below.items():
        values = {
            "NumberOfPatientRelatedStudies": len(sets["studies"]),
            "NumberOfPatientRelatedSeries": len(sets["series"]),
            "NumberOfPatientRelatedInstances": len(sets["instances"]),
            "NumberOfStudyRelatedSeries": len(sets["series"]),
            "NumberOfStudyRelatedInstances": len(sets["instances"]),
            "NumberOfSeriesRelatedInstances": len(sets["instances"]),
            "ModalitiesInStudy": sorted(sets["modalities"]),
            "SOPClassesInStudy": sorted(sets["sop_classes"]),
        }
        expected[owner] = {k: v for k, v in values.items() if COMPUTED_KEYS[k] is level}
    return expected


def _keys(level: Level) -> tuple[int, ...]:
    return tuple(int(tag_for_keyword(k)) for k, owner in COMPUTED_KEYS.items() if owner is level)


@pytest.mark.parametrize("level", [Level.PATIENT, Level.STUDY, Level.SERIES])
def test_computed_keys_match_the_stored_hierarchy(
    stored: tuple[Archive, list[Dataset]], level: Level
) -> None:
    archive, datasets = stored
    expected = _expected(level, datasets)
    matches = archive.find(Query(level, return_tags=_keys(level)))
    found = {
        str(m.values[_UNIQUE[level]]): {k: m.values[k] for k in expected[next(iter(expected))]}
        for m in matches
    }
    assert found == expected


def test_computed_keys_with_a_matching_key_and_a_limit(
    stored: tuple[Archive, list[Dataset]],
) -> None:
    archive, datasets = stored
    expected = _expected(Level.STUDY, datasets)
    patient_id = str(datasets[0].PatientID)
    condition = condition_for(0x00100020, patient_id)
    assert condition is not None
    query = Query(Level.STUDY, (condition,), return_tags=_keys(Level.STUDY), limit=1)
    (match,) = archive.find(query)
    study_uid = str(match.values["StudyInstanceUID"])
    assert str(match.values["PatientID"]) == patient_id
    assert {k: match.values[k] for k in expected[study_uid]} == expected[study_uid]
