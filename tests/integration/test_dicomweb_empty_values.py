"""Empty and not-applicable attributes over DICOMweb, as dicomweb-client sees them, on every
backend: no element carries an empty "Value" (PS3.18 F.2.5), an empty name is no `[{}]`, and a
study search answers no series key (OHIF's study list reads Modality's Value if it is there).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from dicomweb_client.api import DICOMwebClient
from dicomweb_client.session_utils import create_session_from_auth
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from requests.auth import HTTPBasicAuth

from tests.support import scu
from tests.support.backends import Backend
from tests.support.corpus import synthetic_ct_series
from tests.support.web import WebNode, running_web_node


@dataclass
class Loaded:
    web: WebNode
    client: DICOMwebClient
    instance: Dataset


def _sparse_instance() -> Dataset:
    """A CT image whose patient and study keys are empty and whose multi-valued attributes
    have an empty value among others (as raw bytes, as a modality writes them)."""
    [ds] = synthetic_ct_series(1, rows=16, columns=16)
    ds.PatientName = ""
    ds.PatientID = ""
    ds.ReferringPhysicianName = ""
    ds.AccessionNumber = ""
    ds.StudyDescription = ""
    ds.add(DataElement(0x00081060, "PN", b"Doe^Jane\\"))  # NameOfPhysiciansReadingStudy
    ds.add(DataElement(0x00101000, "LO", b"A\\\\B "))  # OtherPatientIDs
    ds.add(DataElement(0x00181088, "IS", b"\\72"))  # HeartRate
    return ds


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory, module_backend: Backend) -> Iterator[Loaded]:
    folder = tmp_path_factory.mktemp("dicomweb-empty")
    with running_web_node(folder, backend=module_backend) as web:
        session = create_session_from_auth(HTTPBasicAuth(*web.admin))
        client = DICOMwebClient(url=f"{web.url}/dicom-web", session=session)
        instance = _sparse_instance()
        client.store_instances(datasets=[instance])
        yield Loaded(web, client, instance)


def _empty_forms(value: Any, path: str = "") -> list[str]:
    """Where a JSON model holds a value F.2.5 forbids: an empty Value array, "" or {}."""
    found: list[str] = []
    if isinstance(value, dict):
        if "vr" in value and "Value" in value:
            values = value["Value"]
            if values == [] and value["vr"] != "SQ":
                found.append(f"{path}: empty Value")
            for index, item in enumerate(values):
                if item == "" or (item == {} and value["vr"] != "SQ"):
                    found.append(f"{path}/{index}: {item!r}")
                found += _empty_forms(item, f"{path}/{index}")
        else:
            for key, item in value.items():
                found += _empty_forms(item, f"{path}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _empty_forms(item, f"{path}[{index}]")
    return found


def test_ohif_study_search_answers_modalities_in_study_only(loaded: Loaded) -> None:
    [study] = loaded.client.search_for_studies(
        fuzzymatching=True, limit=25, offset=0, fields=["00081030", "00080060"]
    )
    assert "00080060" not in study  # Modality: a series key, no value for a study
    assert study["00080061"] == {"vr": "CS", "Value": ["CT"]}  # ModalitiesInStudy
    assert study["00100010"] == {"vr": "PN"}
    assert study["00080090"] == {"vr": "PN"}
    assert study["00100020"] == {"vr": "LO"}
    assert study["00080050"] == {"vr": "SH"}
    assert study["00081030"] == {"vr": "LO"}
    assert _empty_forms(study) == []


def test_searches_at_every_level_have_no_empty_values(loaded: Loaded) -> None:
    ds = loaded.instance
    answers = [
        loaded.client.search_for_studies(fields=["all"]),
        loaded.client.search_for_series(fields=["all"]),
        loaded.client.search_for_instances(fields=["all"]),
        loaded.client.search_for_series(str(ds.StudyInstanceUID), fields=["00080061"]),
    ]
    for answer in answers:
        assert len(answer) == 1
        assert _empty_forms(answer) == []
    series = answers[1][0]
    assert series["00080060"] == {"vr": "CS", "Value": ["CT"]}
    assert "00200013" not in series  # InstanceNumber: an instance key
    instance = answers[2][0]
    assert instance["00081060"] == {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}, None]}
    assert instance["00101000"] == {"vr": "LO", "Value": ["A", None, "B"]}


def test_metadata_keeps_empty_values_among_others_as_null(loaded: Loaded) -> None:
    ds = loaded.instance
    [metadata] = loaded.client.retrieve_series_metadata(
        str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)
    )
    assert _empty_forms(metadata) == []
    assert metadata["00100010"] == {"vr": "PN"}
    assert metadata["00081060"] == {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}, None]}
    assert metadata["00181088"] == {"vr": "IS", "Value": [None, 72]}
    assert metadata["00101000"] == {"vr": "LO", "Value": ["A", None, "B"]}
    read = Dataset.from_json(metadata, lambda uri: b"")  # clients read it back
    assert read.NameOfPhysiciansReadingStudy[0] == "Doe^Jane"
    assert read.OtherPatientIDs == ["A", "", "B"]


def test_c_find_answers_the_same_values(loaded: Loaded) -> None:
    """The header keeps these elements now; C-FIND returns them with their empty values."""
    ds = loaded.instance
    query = scu.identifier(
        "IMAGE",
        StudyInstanceUID=ds.StudyInstanceUID,
        SeriesInstanceUID=ds.SeriesInstanceUID,
        SOPInstanceUID="",
        NameOfPhysiciansReadingStudy="",
        OtherPatientIDs="",
        HeartRate="",
    )
    matches, final = scu.find(loaded.web.dicom.port, query)
    assert final.Status == 0x0000
    [found] = matches
    assert [str(name) for name in found.NameOfPhysiciansReadingStudy] == ["Doe^Jane", ""]
    assert list(found.OtherPatientIDs) == ["A", "", "B"]
    assert [str(rate) for rate in found.HeartRate] == ["", "72"]
