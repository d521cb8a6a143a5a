"""C-FIND, QIDO-RS and the REST search are one query: with the same keys they select the same
entities, and they answer the same computed keys, those `openpacs.dicom.levels.COMPUTED`
declares (QIDO-RS `includefield=all`, the C-FIND return keys, the REST listings), with the
same values. Run on SQLite and PostgreSQL, over the doors' own protocols."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from openpacs.dicom.levels import COMPUTED, Level, computed_of
from tests.support import scu
from tests.support.backends import Backend
from tests.support.query_archive import SUCCESS, KnownArchive, archive_datasets
from tests.support.web import WebNode, running_web_node

_REST = {
    Level.PATIENT: "patients",
    Level.STUDY: "studies",
    Level.SERIES: "series",
    Level.IMAGE: "instances",
}


@dataclass(frozen=True)
class Doors:
    web: WebNode
    uids: KnownArchive


@pytest.fixture(scope="module", params=["sqlite-folder", "postgresql-folder"])
def doors(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Doors]:
    name = request.param
    backend = (
        Backend(name)
        if name == "sqlite-folder"
        else Backend(name, postgres_url=request.getfixturevalue("postgres_url"))
    )
    uids, datasets = archive_datasets()
    with running_web_node(tmp_path_factory.mktemp("doors"), backend=backend) as web:
        statuses = scu.store(web.dicom.port, datasets)
        assert [s.Status for s in statuses] == [SUCCESS] * len(datasets)
        yield Doors(web, uids)


def _tag(keyword: str) -> str:
    tag = tag_for_keyword(keyword)
    assert tag is not None
    return f"{tag:08X}"


def _texts(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list | MultiValue):
        return [str(v) for v in value]
    return [str(value)]


def _cfind(doors: Doors, level: Level, keys: dict[str, str]) -> dict[str, dict[str, list[str]]]:
    """C-FIND with `keys` asking for the level's computed keys: unique key -> their values."""
    identifier = Dataset()
    identifier.QueryRetrieveLevel = level.value
    setattr(identifier, level.unique_key, "")
    for keyword, value in keys.items():
        setattr(identifier, keyword, value)
    for key in computed_of(level):
        if key.keyword not in keys:
            setattr(identifier, key.keyword, "")
    model = "patient" if level is Level.PATIENT else "study"
    matches, final = scu.find(doors.web.dicom.port, identifier, model=model)
    assert final.Status == SUCCESS
    return {
        str(m[level.unique_key].value): {
            k.keyword: _texts(m[k.keyword].value) for k in computed_of(level)
        }
        for m in matches
    }


def _qido(doors: Doors, level: Level, path: str, params: dict[str, str]) -> dict[str, Any]:
    with doors.web.client() as client:
        answer = client.get(f"/dicom-web/{path}", params={**params, "includefield": "all"})
    assert answer.status_code == 200, answer.text
    return {
        result[_tag(level.unique_key)]["Value"][0]: {
            k.keyword: _texts(result.get(_tag(k.keyword), {}).get("Value"))
            for k in COMPUTED.values()
            if _tag(k.keyword) in result
        }
        for result in answer.json()
    }


def _rest(doors: Doors, level: Level, params: dict[str, str]) -> dict[str, Any]:
    with doors.web.client() as client:
        answer = client.get(f"/api/{_REST[level]}", params=params)
    assert answer.status_code == 200, answer.text
    return {
        item[level.unique_key]: {k: _texts(v) for k, v in item.items() if k in COMPUTED}
        for item in answer.json()["items"]
    }


def _cases(uids: KnownArchive) -> list[tuple[Level, dict[str, str], str, dict[str, str]]]:
    """(level, C-FIND and REST keys, QIDO-RS path, QIDO-RS parameters)."""
    a1, b1, c1 = uids.studies["A1"], uids.studies["B1"], uids.studies["C1"]
    ct, ot = uids.series["A1-CT"], uids.series["A1-OT"]
    first, _, third = uids.instances["A1-CT"]
    return [
        (
            Level.STUDY,
            {"StudyInstanceUID": f"{a1}\\{c1}"},
            "studies",
            {"StudyInstanceUID": f"{a1},{c1}"},
        ),
        (Level.STUDY, {"ModalitiesInStudy": "CT"}, "studies", {"ModalitiesInStudy": "CT"}),
        (Level.STUDY, {"PatientID": "QP-A"}, "studies", {"PatientID": "QP-A"}),
        (Level.SERIES, {"StudyInstanceUID": b1}, f"studies/{b1}/series", {}),
        (
            Level.SERIES,
            {"StudyInstanceUID": a1, "SeriesInstanceUID": f"{ct}\\{ot}"},
            f"studies/{a1}/series",
            {"SeriesInstanceUID": f"{ct},{ot}"},
        ),
        (
            Level.IMAGE,
            {
                "StudyInstanceUID": a1,
                "SeriesInstanceUID": ct,
                "SOPInstanceUID": f"{first}\\{third}",
            },
            f"studies/{a1}/series/{ct}/instances",
            {"SOPInstanceUID": f"{first},{third}"},
        ),
    ]


def test_the_same_keys_select_the_same_entities_with_the_same_computed_keys(doors: Doors) -> None:
    for level, keys, path, params in _cases(doors.uids):
        found = _cfind(doors, level, keys)
        assert found, (level, keys)
        queried = _qido(doors, level, path, params)
        listed = _rest(doors, level, keys)
        assert set(queried) == set(found) == set(listed), (level, keys)
        for uid, computed in found.items():
            declared = {k.keyword for k in computed_of(level)}
            assert set(computed) == declared
            assert all(computed[k] for k in declared), (uid, computed)  # every one answered
            # QIDO-RS includefield=all: the level's and its ancestors' (but a patient's).
            assert {k: queried[uid][k] for k in declared} == computed
            in_listings = {k.keyword for k in computed_of(level) if k.in_listings}
            assert listed[uid] == {k: computed[k] for k in in_listings}


def test_patients_by_id_through_c_find_and_rest(doors: Doors) -> None:
    keys = {"PatientID": "QP-A\\QP-C"}
    found = _cfind(doors, Level.PATIENT, keys)
    assert set(found) == {"QP-A", "QP-C"}
    listed = _rest(doors, Level.PATIENT, keys)
    assert listed == {
        uid: {k.keyword: computed[k.keyword] for k in computed_of(Level.PATIENT) if k.in_listings}
        for uid, computed in found.items()
    }
    assert found["QP-A"]["NumberOfPatientRelatedStudies"] == ["2"]


def test_a_rest_resource_is_named_by_the_same_unique_key_conditions(doors: Doors) -> None:
    study = doors.uids.studies["A1"]
    found = _cfind(doors, Level.STUDY, {"StudyInstanceUID": study})
    with doors.web.client() as client:
        one = client.get(f"/api/studies/{study}")
    assert one.status_code == 200
    item = one.json()
    assert {s["SeriesInstanceUID"] for s in item["series"]} == {
        doors.uids.series["A1-CT"],
        doors.uids.series["A1-OT"],
    }
    assert {k: _texts(item[k]) for k in found[study] if k in item} == {
        k.keyword: found[study][k.keyword] for k in computed_of(Level.STUDY) if k.in_listings
    }
