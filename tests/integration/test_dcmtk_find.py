"""DCMTK's findscu against a real openpacs node (PS3.4 C.4.1 C-FIND).

Responses are written by findscu itself (`--extract`: rsp0001.dcm, ...) and read back with
pydicom, so nothing depends on findscu's log format.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.support.corpus import synthetic_ct_series, write_part10
from tests.support.dcmtk import run
from tests.support.dcmtk_peer import HOST, output
from tests.support.node import Node, running_node

pytestmark = pytest.mark.dcmtk


@dataclass(frozen=True)
class Study:
    label: str
    patient_name: str
    patient_id: str
    date: str
    series: tuple[tuple[str, int], ...]
    """(modality, instance count) per series."""
    charset: str = "ISO_IR 100"


STUDIES = (
    Study("smith-1", "Smith^Anna", "P-SMITH", "20240105", (("CT", 2),)),
    Study("smith-2", "Smith^Anna", "P-SMITH", "20240220", (("MR", 1),)),
    Study("sanchez", "Sanchez^John", "P-SANCHEZ", "20231231", (("CT", 1),)),
    Study("mueller", "Müller^Jürgen", "P-MUELLER", "20240131", (("US", 1),)),
    Study("dvorak", "Dvořák^Antonín", "P-DVORAK", "20240101", (("CT", 2), ("MR", 1)), "ISO_IR 192"),
)


@dataclass(frozen=True)
class Archive:
    node: Node
    datasets: dict[str, list[Dataset]]
    """The stored instances of each study, by label."""

    def study_uid(self, label: str) -> str:
        return str(self.datasets[label][0].StudyInstanceUID)

    def labels(self, responses: list[Dataset]) -> set[str]:
        by_uid = {self.study_uid(label): label for label in self.datasets}
        return {by_uid[str(ds.StudyInstanceUID)] for ds in responses}


def make_study(study: Study, seed: int) -> list[Dataset]:
    study_uid = generate_uid()
    datasets: list[Dataset] = []
    for number, (modality, count) in enumerate(study.series, start=1):
        series = synthetic_ct_series(
            count,
            rows=64,
            columns=64,
            patient_name=study.patient_name,
            patient_id=study.patient_id,
            study_uid=study_uid,
            study_date=study.date,
            modality=modality,
            series_number=number,
            seed=seed + number,
        )
        for ds in series:
            ds.SpecificCharacterSet = study.charset  # pydicom encodes names with it on write
        datasets += series
    return datasets


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    folder = tmp_path_factory.mktemp("find")
    datasets = {study.label: make_study(study, seed) for seed, study in enumerate(STUDIES)}
    files = folder / "files"
    files.mkdir()
    for instances in datasets.values():
        for ds in instances:
            write_part10(ds, files / str(ds.SOPInstanceUID))
    with running_node(folder / "node") as node:
        stored = run("storescu", "--scan-directories", HOST, str(node.port), str(files))
        assert stored.returncode == 0, output(stored)
        assert node.instance_count() == sum(len(instances) for instances in datasets.values())
        yield Archive(node, datasets)


def findscu(node: Node, model: str, *keys: str) -> list[Dataset]:
    """Run findscu with `-k` for each of `keys`; the responses, in the order received."""
    with tempfile.TemporaryDirectory() as out:
        arguments = [argument for key in keys for argument in ("-k", key)]
        result = run(
            "findscu", model, "--extract", "--output-directory", out,
            *arguments, HOST, str(node.port),
        )  # fmt: skip
        assert result.returncode == 0, output(result)
        assert "error" not in result.stderr.lower(), output(result)
        return [dcmread(path) for path in sorted(Path(out).glob("rsp*.dcm"))]


def find_studies(archive: Archive, *keys: str) -> list[Dataset]:
    return findscu(archive.node, "--study", "QueryRetrieveLevel=STUDY", "StudyInstanceUID", *keys)


# --- STUDY level, Study Root --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        pytest.param("PatientName=S*", {"smith-1", "smith-2", "sanchez"}, id="name-wildcard"),
        pytest.param("PatientName=Sm?th^*", {"smith-1", "smith-2"}, id="name-question-mark"),
        pytest.param("PatientID=P-SMITH", {"smith-1", "smith-2"}, id="patient-id"),
        pytest.param("PatientID=P-SMIT", set(), id="patient-id-no-prefix-match"),
        pytest.param("StudyDate=20231231", {"sanchez"}, id="date"),
        pytest.param(
            "StudyDate=20240101-20240131", {"smith-1", "mueller", "dvorak"}, id="date-range"
        ),
        pytest.param(
            "StudyDate=-20240131", {"smith-1", "sanchez", "mueller", "dvorak"}, id="date-until"
        ),
        pytest.param(
            "StudyDate=20240101-", {"smith-1", "smith-2", "mueller", "dvorak"}, id="date-from"
        ),
        pytest.param("ModalitiesInStudy=MR", {"smith-2", "dvorak"}, id="modality-mr"),
        pytest.param("ModalitiesInStudy=US", {"mueller"}, id="modality-us"),
        pytest.param(
            "ModalitiesInStudy=CT\\US", {"smith-1", "sanchez", "mueller", "dvorak"}, id="modalities"
        ),
    ],
)
def test_study_level_matching(archive: Archive, key: str, expected: set[str]) -> None:
    responses = find_studies(archive, key)
    assert len(responses) == len(expected)
    assert archive.labels(responses) == expected


def test_study_level_keys_combine(archive: Archive) -> None:
    responses = find_studies(archive, "PatientName=S*", "ModalitiesInStudy=CT")
    assert archive.labels(responses) == {"smith-1", "sanchez"}


def test_study_level_returns_the_requested_attributes(archive: Archive) -> None:
    (response,) = find_studies(
        archive,
        "PatientID=P-DVORAK",
        "StudyDate",
        "ModalitiesInStudy",
        "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
    )
    assert response.QueryRetrieveLevel == "STUDY"
    assert response.StudyInstanceUID == archive.study_uid("dvorak")
    assert response.StudyDate == "20240101"
    assert sorted(response.ModalitiesInStudy) == ["CT", "MR"]
    assert int(response.NumberOfStudyRelatedSeries) == 2
    assert int(response.NumberOfStudyRelatedInstances) == 3


# --- PATIENT level, Patient Root ----------------------------------------------------------------


def test_patient_level_counts_studies(archive: Archive) -> None:
    responses = findscu(
        archive.node, "--patient",
        "QueryRetrieveLevel=PATIENT", "PatientID", "PatientName",
        "NumberOfPatientRelatedStudies",
    )  # fmt: skip
    counts = {str(ds.PatientID): int(ds.NumberOfPatientRelatedStudies) for ds in responses}
    assert len(responses) == 4
    assert counts == {"P-SMITH": 2, "P-SANCHEZ": 1, "P-MUELLER": 1, "P-DVORAK": 1}


def test_patient_root_study_level_within_a_patient(archive: Archive) -> None:
    responses = findscu(
        archive.node, "-P",
        "QueryRetrieveLevel=STUDY", "PatientID=P-SMITH", "StudyInstanceUID", "StudyDate",
    )  # fmt: skip
    assert archive.labels(responses) == {"smith-1", "smith-2"}
    assert sorted(str(ds.StudyDate) for ds in responses) == ["20240105", "20240220"]


# --- SERIES and IMAGE levels --------------------------------------------------------------------


def test_series_level_within_a_study(archive: Archive) -> None:
    instances = archive.datasets["dvorak"]
    responses = findscu(
        archive.node, "-S",
        "QueryRetrieveLevel=SERIES",
        f"StudyInstanceUID={archive.study_uid('dvorak')}",
        "SeriesInstanceUID", "Modality", "NumberOfSeriesRelatedInstances",
    )  # fmt: skip
    found = {
        str(ds.SeriesInstanceUID): (ds.Modality, int(ds.NumberOfSeriesRelatedInstances))
        for ds in responses
    }
    expected = {
        str(ds.SeriesInstanceUID): (
            ds.Modality,
            sum(1 for x in instances if x.Modality == ds.Modality),
        )
        for ds in instances
    }
    assert len(responses) == 2
    assert found == expected


def test_image_level_within_a_series(archive: Archive) -> None:
    ct = [ds for ds in archive.datasets["dvorak"] if ds.Modality == "CT"]
    responses = findscu(
        archive.node, "-S",
        "QueryRetrieveLevel=IMAGE",
        f"StudyInstanceUID={ct[0].StudyInstanceUID}",
        f"SeriesInstanceUID={ct[0].SeriesInstanceUID}",
        "SOPInstanceUID", "SOPClassUID", "InstanceNumber",
    )  # fmt: skip
    found = {str(ds.SOPInstanceUID): int(ds.InstanceNumber) for ds in responses}
    assert len(responses) == 2
    assert found == {str(ds.SOPInstanceUID): int(ds.InstanceNumber) for ds in ct}
    assert {str(ds.SOPClassUID) for ds in responses} == {str(ct[0].SOPClassUID)}


# --- character sets -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patient_id", "name"),
    [
        pytest.param("P-MUELLER", "Müller^Jürgen", id="stored-latin1"),
        pytest.param("P-DVORAK", "Dvořák^Antonín", id="stored-utf8"),
    ],
)
def test_non_ascii_names_come_back_in_utf8(archive: Archive, patient_id: str, name: str) -> None:
    (response,) = find_studies(archive, f"PatientID={patient_id}", "PatientName")
    raw = response.get_item("PatientName")  # still undecoded: the bytes on the wire
    assert raw is not None
    assert raw.value.rstrip(b" ") == name.encode("utf-8")
    assert response.SpecificCharacterSet == "ISO_IR 192"
    assert str(response.PatientName) == name


def test_non_ascii_name_matches_in_utf8(archive: Archive) -> None:
    responses = find_studies(archive, "SpecificCharacterSet=ISO_IR 192", "PatientName=Dvořák*")
    assert archive.labels(responses) == {"dvorak"}
