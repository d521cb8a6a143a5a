"""Sequence matching (PS3.4 C.2.2.2.6) over real sockets and HTTP, on every backend: a query
sequence's single item matches when one stored item matches all its keys (keys met in two
different items do not), at study and series level, through pynetdicom's C-FIND and
dicomweb-client's QIDO-RS (`Sequence.Attribute=value`), with the sequences answered as return
keys; malformed sequence queries are refused with a status or a 400 and a reason.

The node holds the known archive of `tests.support.query_archive`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from dicomweb_client.api import DICOMwebClient
from dicomweb_client.session_utils import create_session_from_auth
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pynetdicom.association import Association
from requests.auth import HTTPBasicAuth

from tests.support import scu
from tests.support.backends import Backend
from tests.support.query_archive import (
    REFERENCED_STUDY,
    SUCCESS,
    KnownArchive,
    archive_datasets,
    find,
)
from tests.support.web import WebNode, running_web_node

IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS = 0xA900
REQUESTED_PROCEDURE_ID = "00401001"
SCHEDULED_STEP_ID = "00400009"
REQUEST_ATTRIBUTES = "00400275"


@pytest.fixture(scope="module")
def known(
    tmp_path_factory: pytest.TempPathFactory, module_backend: Backend
) -> Iterator[tuple[WebNode, KnownArchive]]:
    uids, datasets = archive_datasets()
    folder = tmp_path_factory.mktemp("sequences")
    with running_web_node(folder, backend=module_backend) as web:
        statuses = scu.store(web.dicom.port, datasets)
        assert [s.Status for s in statuses] == [SUCCESS] * len(datasets)
        yield web, uids


@pytest.fixture(scope="module")
def finder(known: tuple[WebNode, KnownArchive]) -> Iterator[Association]:
    with scu.association(known[0].dicom.port, [scu.MODELS["study"][0]]) as assoc:
        yield assoc


@pytest.fixture(scope="module")
def client(known: tuple[WebNode, KnownArchive]) -> DICOMwebClient:
    web = known[0]
    session = create_session_from_auth(HTTPBasicAuth(*web.admin))
    return DICOMwebClient(url=f"{web.url}/dicom-web", session=session)


def _item(**keys: str) -> Sequence:
    item = Dataset()
    for keyword, value in keys.items():
        setattr(item, keyword, value)
    return Sequence([item])


def _series_names(uids: KnownArchive, found: list[Any]) -> set[str]:
    names = {uid: name for name, uid in uids.series.items()}
    return {names[str(_uid(m, "SeriesInstanceUID", "0020000E"))] for m in found}


def _uid(found: Any, keyword: str, tag: str) -> str:
    if isinstance(found, Dataset):
        return str(found.get(keyword))
    return str(found[tag]["Value"][0])


SERIES_CASES = [
    ({"RequestedProcedureID": "RP-1"}, {"A1-CT", "B1-CT"}),
    ({"RequestedProcedureID": "RP-2"}, {"A1-CT"}),
    ({"RequestedProcedureID": "RP-1", "ScheduledProcedureStepID": "SPS-9"}, {"B1-CT"}),
    # RP-1 and SPS-2 are both in A1-CT's sequence, but in different items: no match.
    ({"RequestedProcedureID": "RP-1", "ScheduledProcedureStepID": "SPS-2"}, set()),
    ({"ScheduledProcedureStepID": "SPS-?"}, {"A1-CT", "B1-CT"}),
    ({"ScheduledProcedureStepID": "SPS-1\\SPS-9"}, {"A1-CT", "B1-CT"}),
    ({"RequestedProcedureID": "RP-3"}, set()),
]


@pytest.mark.parametrize(("keys", "expected"), SERIES_CASES)
def test_c_find_matches_the_request_attributes_sequence(
    finder: Association, known: tuple[WebNode, KnownArchive], keys: dict, expected: set
) -> None:
    uids = known[1]
    found = find(finder, "SERIES", SeriesInstanceUID="", RequestAttributesSequence=_item(**keys))
    assert _series_names(uids, found) == expected
    for match in found:  # the sequence is a return key too: every stored item comes back
        a1 = match.SeriesInstanceUID == uids.series["A1-CT"]
        assert len(match.RequestAttributesSequence) == (2 if a1 else 1)


@pytest.mark.parametrize(("keys", "expected"), SERIES_CASES)
def test_qido_matches_the_request_attributes_sequence(
    client: DICOMwebClient, known: tuple[WebNode, KnownArchive], keys: dict, expected: set
) -> None:
    filters = {f"RequestAttributesSequence.{k}": v for k, v in keys.items()}
    found = client.search_for_series(search_filters=filters)
    assert _series_names(known[1], found) == expected
    for result in found:
        items = result[REQUEST_ATTRIBUTES]["Value"]
        assert all(REQUESTED_PROCEDURE_ID in item for item in items)


def test_an_empty_item_is_a_return_key_only(
    finder: Association, client: DICOMwebClient, known: tuple[WebNode, KnownArchive]
) -> None:
    uids = known[1]
    found = find(
        finder,
        "SERIES",
        SeriesInstanceUID="",
        RequestAttributesSequence=_item(RequestedProcedureID=""),
    )
    assert _series_names(uids, found) == set(uids.series)
    steps = {
        str(m.SeriesInstanceUID): sorted(
            i.ScheduledProcedureStepID for i in m.RequestAttributesSequence
        )
        for m in found
        if "RequestAttributesSequence" in m and m.RequestAttributesSequence
    }
    assert steps == {uids.series["A1-CT"]: ["SPS-1", "SPS-2"], uids.series["B1-CT"]: ["SPS-9"]}
    # QIDO-RS answers RequestAttributesSequence by default at series level (PS3.18 10.6.3.3.1).
    by_series = {_uid(r, "SeriesInstanceUID", "0020000E"): r for r in client.search_for_series()}
    b1 = by_series[uids.series["B1-CT"]][REQUEST_ATTRIBUTES]["Value"]
    assert [i[SCHEDULED_STEP_ID]["Value"] for i in b1] == [["SPS-9"]]


def test_referenced_study_sequence_at_study_level(
    finder: Association, client: DICOMwebClient, known: tuple[WebNode, KnownArchive]
) -> None:
    uids = known[1]
    names = {uid: name for name, uid in uids.studies.items()}
    found = find(
        finder,
        "STUDY",
        StudyInstanceUID="",
        ReferencedStudySequence=_item(ReferencedSOPInstanceUID=REFERENCED_STUDY),
    )
    assert {names[str(m.StudyInstanceUID)] for m in found} == {"A1"}
    assert found[0].ReferencedStudySequence[0].ReferencedSOPInstanceUID == REFERENCED_STUDY
    other = find(
        finder,
        "STUDY",
        StudyInstanceUID="",
        ReferencedStudySequence=_item(ReferencedSOPInstanceUID="1.2.3"),
    )
    assert other == []
    by_tag = client.search_for_studies(
        search_filters={"00081110.00081155": REFERENCED_STUDY, "PatientID": "QP-A"},
        fields=["ReferencedStudySequence"],
    )
    assert {names[_uid(r, "StudyInstanceUID", "0020000D")] for r in by_tag} == {"A1"}
    assert by_tag[0]["00081110"]["Value"][0]["00081155"]["Value"] == [REFERENCED_STUDY]
    assert (
        client.search_for_studies(
            search_filters={"ReferencedStudySequence.ReferencedSOPInstanceUID": "1.2.3"}
        )
        == []
    )


def test_malformed_sequence_queries_are_refused(
    finder: Association, known: tuple[WebNode, KnownArchive]
) -> None:
    two_items = Sequence([Dataset(), Dataset()])
    two_items[0].RequestedProcedureID = "RP-1"
    two_items[1].RequestedProcedureID = "RP-2"
    identifier = scu.identifier("SERIES", SeriesInstanceUID="", RequestAttributesSequence=two_items)
    matches, final = scu.find_on(finder, identifier)
    assert matches == []
    assert final.Status == IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS
    web = known[0]
    with web.client() as http:
        for params, reason in [
            ({"StudyDate.RequestedProcedureID": "1"}, "not a sequence"),
            ({"RequestAttributesSequence": "x"}, "its item"),
            ({"RequestAttributesSequence.RequestedProcedureID": "x" * 2000}, "longer"),
        ]:
            response = http.get("/dicom-web/series", params=params)
            assert response.status_code == 400, params
            assert reason in response.json()["detail"]
    # The association still answers.
    assert find(
        finder,
        "SERIES",
        SeriesInstanceUID="",
        RequestAttributesSequence=_item(RequestedProcedureID="RP-2"),
    )
