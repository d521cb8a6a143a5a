"""C-MOVE and C-GET semantics over real sockets (PS3.4 C.4.2, C.4.3), cancel included (C.4.1.2.3).

The module's node knows two C-MOVE destinations, both pynetdicom Storage SCPs in this process:
MOVESCP accepts every transfer syntax, JPEGSCP only JPEG Baseline. It holds

    RP-1  study S1: 3 uncompressed CT instances
    RP-2  study S2: 2 uncompressed CT instances and 1 JPEG Baseline Secondary Capture
    RP-3  study L:  one series of 200 tiny instances, to cancel operations in the middle of
"""

from __future__ import annotations

import gc
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    generate_uid,
)
from pynetdicom import build_role, evt

from tests.support import scu
from tests.support.corpus import (
    CT_IMAGE_STORAGE,
    PYDICOM_TEST_FILES,
    pixel_bytes,
    small_instances,
    store_bytes,
    synthetic_ct_series,
    to_part10_bytes,
)
from tests.support.node import HOST, Node, running_node

SUCCESS = 0x0000
PENDING = 0xFF00
CANCELLED = 0xFE00
WARNING = 0xB000
UNABLE_TO_PERFORM_SUBOPERATIONS = 0xA702
MOVE_DESTINATION_UNKNOWN = 0xA801
IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS = 0xA900
LARGE = 200
GET_MODEL = scu.MODELS["study"][1]
FIND_MODEL = scu.MODELS["study"][0]


@dataclass(frozen=True)
class Study:
    study_uid: str
    series_uid: str
    sop_uids: list[str]
    sop_class: str


@dataclass(frozen=True)
class Setup:
    node: Node
    received: dict[str, scu.Received]  # by destination AE title
    s1: Study
    s2_ct: Study
    s2_jpeg: Study
    large: Study
    jpeg_pixels: bytes


def _jpeg_instance(study_uid: str) -> Dataset:
    """pydicom's JPEG Baseline RGB capture, moved into our study under new UIDs."""
    ds = dcmread(PYDICOM_TEST_FILES / "SC_rgb_dcmtk_+eb+cr.dcm")
    ds.PatientName, ds.PatientID = "MIXED^STUDY", "RP-2"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    assert ds.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
    return ds


def _study(datasets: list[Dataset]) -> Study:
    return Study(
        study_uid=str(datasets[0].StudyInstanceUID),
        series_uid=str(datasets[0].SeriesInstanceUID),
        sop_uids=[str(ds.SOPInstanceUID) for ds in datasets],
        sop_class=str(datasets[0].SOPClassUID),
    )


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    with ExitStack() as stack:
        move_port, move_received = stack.enter_context(scu.storage_scp("MOVESCP"))
        jpeg_port, jpeg_received = stack.enter_context(
            scu.storage_scp("JPEGSCP", transfer_syntaxes=[JPEGBaseline8Bit])
        )
        remotes = [
            {"aet": "MOVESCP", "host": HOST, "port": move_port},
            {"aet": "JPEGSCP", "host": HOST, "port": jpeg_port},
        ]
        node = stack.enter_context(
            running_node(tmp_path_factory.mktemp("retrieve-node"), dicom={"remotes": remotes})
        )
        s1 = synthetic_ct_series(3, rows=16, columns=16, patient_name="MOVE^ONE", patient_id="RP-1")
        s2_ct = synthetic_ct_series(
            2, rows=16, columns=16, patient_name="MIXED^STUDY", patient_id="RP-2", seed=3
        )
        s2_jpeg = _jpeg_instance(str(s2_ct[0].StudyInstanceUID))
        statuses = scu.store(node.port, [*s1, *s2_ct, s2_jpeg])
        assert [s.Status for s in statuses] == [SUCCESS] * 6
        # Set-up only: storing 200 instances through the archive itself is faster than DIMSE.
        large = list(small_instances(1, 1, LARGE, rows=4, columns=4, seed=7))
        for ds in large:
            store_bytes(node.archive, to_part10_bytes(ds))
        yield Setup(
            node=node,
            received={"MOVESCP": move_received, "JPEGSCP": jpeg_received},
            s1=_study(s1),
            s2_ct=_study(s2_ct),
            s2_jpeg=_study([s2_jpeg]),
            large=_study(large),
            jpeg_pixels=pixel_bytes(s2_jpeg),
        )


@pytest.fixture
def env(setup: Setup, caplog: pytest.LogCaptureFixture) -> Iterator[Setup]:
    """The module's set-up with both destinations' inboxes emptied.

    Afterwards it waits for the node's threads and collects garbage, so that a socket an
    operation leaked is reported (ResourceWarning) against that operation's test. For that,
    pynetdicom's error logs are not captured: their tracebacks would keep the socket alive
    until the next test.
    """
    caplog.set_level(logging.CRITICAL, logger="pynetdicom")
    for received in setup.received.values():
        with received.lock:
            received.datasets.clear()
            received.transfer_syntaxes.clear()
            received.originators.clear()
    yield setup
    setup.node.wait_idle()
    gc.collect()


def _move(
    env: Setup, identifier: Dataset, destination: str, *, model: str = "study", msg_id: int = 1
) -> tuple[list[tuple[Dataset, Dataset | None]], list[str]]:
    """C-MOVE; every response and the SOP Instance UIDs the destination received."""
    with scu.association(env.node.port, [scu.MODELS[model][2]]) as assoc:
        responses = scu.move_on(assoc, identifier, destination, model=model, msg_id=msg_id)
    inbox = env.received.get(destination)
    return responses, [str(ds.SOPInstanceUID) for ds in inbox.datasets] if inbox else []


def _failed_uids(response: tuple[Dataset, Dataset | None]) -> list[str]:
    identifier = response[1]
    value = identifier.get("FailedSOPInstanceUIDList") if identifier is not None else None
    if value is None or value == "":
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _study_identifier(study: Study) -> Dataset:
    return scu.identifier("STUDY", StudyInstanceUID=study.study_uid)


# -- C-MOVE ---------------------------------------------------------------------------------------


def test_c_move_of_a_study_delivers_every_instance(env: Setup) -> None:
    responses, received = _move(env, _study_identifier(env.s1), "MOVESCP")
    final = responses[-1][0]
    assert final.Status == SUCCESS
    assert final.NumberOfCompletedSuboperations == 3
    assert final.NumberOfFailedSuboperations == 0
    assert final.NumberOfWarningSuboperations == 0
    assert sorted(received) == sorted(env.s1.sop_uids)
    remaining = [s.NumberOfRemainingSuboperations for s, _ in responses if s.Status == PENDING]
    assert remaining == [2, 1, 0]


def test_c_move_sub_operations_name_their_originator(env: Setup) -> None:
    """PS3.7 9.1.1.1: each C-STORE of a C-MOVE carries the Move Originator AE title and the
    C-MOVE's Message ID, so the destination can tell whose move brought it."""
    responses, received = _move(env, _study_identifier(env.s1), "MOVESCP", msg_id=4321)
    assert responses[-1][0].Status == SUCCESS
    assert len(received) == 3
    assert env.received["MOVESCP"].originators == [("TESTSCU", 4321)] * 3


@pytest.mark.parametrize("level", ["SERIES", "IMAGE"])
def test_c_move_at_series_and_image_level(env: Setup, level: str) -> None:
    keys = {"StudyInstanceUID": env.s1.study_uid, "SeriesInstanceUID": env.s1.series_uid}
    expected = env.s1.sop_uids
    if level == "IMAGE":
        keys["SOPInstanceUID"] = expected = env.s1.sop_uids[1]
        expected = [expected]
    responses, received = _move(env, scu.identifier(level, **keys), "MOVESCP")
    assert responses[-1][0].Status == SUCCESS
    assert responses[-1][0].NumberOfCompletedSuboperations == len(expected)
    assert sorted(received) == sorted(expected)


def test_c_move_at_patient_level_of_the_patient_root_model(env: Setup) -> None:
    identifier = scu.identifier("PATIENT", PatientID="RP-2")
    responses, received = _move(env, identifier, "MOVESCP", model="patient")
    assert responses[-1][0].Status == SUCCESS
    assert responses[-1][0].NumberOfCompletedSuboperations == 3
    assert sorted(received) == sorted([*env.s2_ct.sop_uids, *env.s2_jpeg.sop_uids])


def test_c_move_to_an_unknown_destination_is_refused(env: Setup) -> None:
    responses, _ = _move(env, _study_identifier(env.s1), "NOSUCHAE")
    assert [s.Status for s, _ in responses] == [MOVE_DESTINATION_UNKNOWN]
    assert all(not r.datasets for r in env.received.values())


def test_c_move_fails_when_the_destination_accepts_no_syntax_we_can_send(env: Setup) -> None:
    """Uncompressed CT cannot become JPEG Baseline: every sub-operation fails (PS3.4
    C.4.2.1.5: A702, with the Failed SOP Instance UID List)."""
    responses, received = _move(env, _study_identifier(env.s1), "JPEGSCP")
    final = responses[-1]
    assert final[0].Status == UNABLE_TO_PERFORM_SUBOPERATIONS
    assert final[0].NumberOfFailedSuboperations == 3
    assert final[0].get("NumberOfCompletedSuboperations", 0) == 0
    assert sorted(_failed_uids(final)) == sorted(env.s1.sop_uids)
    assert received == []


def test_a_mixed_c_move_delivers_what_it_can_and_names_the_rest(env: Setup) -> None:
    responses, received = _move(env, _study_identifier(env.s2_ct), "JPEGSCP")
    final = responses[-1]
    assert final[0].Status == WARNING
    assert final[0].NumberOfCompletedSuboperations == 1
    assert final[0].NumberOfFailedSuboperations == 2
    assert sorted(_failed_uids(final)) == sorted(env.s2_ct.sop_uids)
    assert received == env.s2_jpeg.sop_uids
    assert env.received["JPEGSCP"].transfer_syntaxes == [JPEGBaseline8Bit]
    assert pixel_bytes(env.received["JPEGSCP"].datasets[0]) == env.jpeg_pixels


# -- C-GET ----------------------------------------------------------------------------------------


def _get(
    env: Setup, identifier: Dataset, syntaxes: list[str], *, msg_id: int = 1
) -> tuple[list[tuple[Dataset, Dataset | None]], scu.Received]:
    received = scu.Received()
    contexts = [GET_MODEL, (CT_IMAGE_STORAGE, syntaxes)]
    with scu.association(
        env.node.port,
        contexts,
        roles=[build_role(CT_IMAGE_STORAGE, scp_role=True)],
        evt_handlers=[(evt.EVT_C_STORE, received.handle)],
    ) as assoc:
        return scu.get_on(assoc, identifier, msg_id=msg_id), received


def test_c_get_of_a_study_counts_down_its_sub_operations(env: Setup) -> None:
    responses, received = _get(env, _study_identifier(env.s1), [ExplicitVRLittleEndian])
    final = responses[-1][0]
    assert final.Status == SUCCESS
    assert final.NumberOfCompletedSuboperations == 3
    assert final.NumberOfFailedSuboperations == 0
    remaining = [s.NumberOfRemainingSuboperations for s, _ in responses if s.Status == PENDING]
    assert remaining == [2, 1, 0]
    assert sorted(str(ds.SOPInstanceUID) for ds in received.datasets) == sorted(env.s1.sop_uids)


def test_c_get_converts_to_the_uncompressed_syntax_the_requestor_accepts(env: Setup) -> None:
    """Stored in Explicit VR Little Endian, asked for in Implicit VR Little Endian only."""
    uid = env.s1.sop_uids[0]
    identifier = scu.identifier(
        "IMAGE",
        StudyInstanceUID=env.s1.study_uid,
        SeriesInstanceUID=env.s1.series_uid,
        SOPInstanceUID=uid,
    )
    responses, received = _get(env, identifier, [ImplicitVRLittleEndian])
    assert responses[-1][0].Status == SUCCESS
    assert received.transfer_syntaxes == [ImplicitVRLittleEndian]
    (ds,) = received.datasets
    assert ds.SOPInstanceUID == uid
    stored = env.node.archive.instance(uid)
    assert stored is not None
    with env.node.archive.open_local(stored) as path:
        original = dcmread(path)
    assert np.array_equal(ds.pixel_array, original.pixel_array)


_WITHOUT_UNIQUE_KEY = {
    "study-without-study-uid": ("STUDY", {"PatientID": "RP-1"}),
    "series-without-series-uid": ("SERIES", {"StudyInstanceUID": "S1"}),
    "image-without-sop-uid": ("IMAGE", {"StudyInstanceUID": "S1", "SeriesInstanceUID": "S1"}),
}


def _without_unique_key(env: Setup, case: str) -> Dataset:
    level, keys = _WITHOUT_UNIQUE_KEY[case]
    values = {"StudyInstanceUID": env.s1.study_uid, "SeriesInstanceUID": env.s1.series_uid}
    return scu.identifier(level, **{k: values.get(k, v) for k, v in keys.items()})


@pytest.mark.parametrize("case", sorted(_WITHOUT_UNIQUE_KEY))
def test_c_get_without_the_level_unique_key_is_refused(env: Setup, case: str) -> None:
    responses, received = _get(env, _without_unique_key(env, case), [ExplicitVRLittleEndian])
    (final, _) = responses[-1]
    assert final.Status == IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS
    assert final.get("NumberOfCompletedSuboperations", 0) == 0
    assert [s.Status for s, _ in responses if s.Status == PENDING] == []
    assert received.datasets == []


@pytest.mark.parametrize("case", sorted(_WITHOUT_UNIQUE_KEY))
def test_c_move_without_the_level_unique_key_is_refused(env: Setup, case: str) -> None:
    responses, received = _move(env, _without_unique_key(env, case), "MOVESCP")
    (final, _) = responses[-1]
    assert final.Status == IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS
    assert final.get("NumberOfCompletedSuboperations", 0) == 0
    assert [s.Status for s, _ in responses if s.Status == PENDING] == []
    assert received == []


# -- C-CANCEL -------------------------------------------------------------------------------------


# A C-FIND requestor that cancels once the first match is in (the operation is then
# running: pynetdicom's acceptor drops a C-CANCEL that arrives before its handler starts).
# It runs in its own process, as a real peer does: in this one its threads would compete
# with the node's for the GIL and change the very timing under test.
_CANCELLING_FIND = """
import json, sys, threading
from pydicom.dataset import Dataset
from pynetdicom import AE
port, study_uid, series_uid, model = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ae = AE(ae_title="CANCELSCU")
ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
ae.add_requested_context(model)
assoc = ae.associate("127.0.0.1", port, ae_title="OPENPACS")
identifier = Dataset()
identifier.QueryRetrieveLevel = "IMAGE"
identifier.StudyInstanceUID = study_uid
identifier.SeriesInstanceUID = series_uid
identifier.SOPInstanceUID = ""
statuses = []
# The cancel goes out beside the request, not after the first response: the SCP answers all
# of its matches within milliseconds, so a cancel sent once one arrives can come too late.
cancel = threading.Timer(0, assoc.send_c_cancel, (7,), {"query_model": model})
cancel.start()
for status, _ in assoc.send_c_find(identifier, model, msg_id=7):
    statuses.append(int(status.Status))
cancel.join()
assoc.release()
print(json.dumps(statuses))
"""


def test_c_cancel_ends_a_c_find_with_many_matches(env: Setup) -> None:
    """PS3.4 C.4.1.3.1: on a C-CANCEL the SCP stops matching and answers Cancel (0xFE00),
    whether the cancel reaches it while the C-FIND runs or just before it starts (PS3.7 9.3.2.3:
    a C-CANCEL names the request by its Message ID)."""
    arguments = [str(env.node.port), env.large.study_uid, env.large.series_uid, FIND_MODEL]
    done = subprocess.run(
        [sys.executable, "-c", _CANCELLING_FIND, *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    statuses = json.loads(done.stdout)
    assert statuses[-1] == CANCELLED
    assert statuses.count(PENDING) < LARGE
    matches, final = scu.find(
        env.node.port,
        scu.identifier(
            "IMAGE",
            StudyInstanceUID=env.large.study_uid,
            SeriesInstanceUID=env.large.series_uid,
            SOPInstanceUID="",
        ),
    )
    assert final.Status == SUCCESS
    assert len(matches) == LARGE  # the node still serves the whole series afterwards


def test_c_cancel_ends_a_c_get_of_a_large_series(env: Setup) -> None:
    received = scu.Received()
    identifier = scu.identifier(
        "SERIES", StudyInstanceUID=env.large.study_uid, SeriesInstanceUID=env.large.series_uid
    )
    sop_class = env.large.sop_class
    responses: list[Dataset] = []
    with scu.association(
        env.node.port,
        [GET_MODEL, (sop_class, [ExplicitVRLittleEndian])],
        roles=[build_role(sop_class, scp_role=True)],
        evt_handlers=[(evt.EVT_C_STORE, received.handle)],
    ) as assoc:
        scu.settle_reactor(assoc)
        for status, _ in assoc.send_c_get(identifier, GET_MODEL, msg_id=9):
            responses.append(status)
            if len(responses) == 1:
                assoc.send_c_cancel(9, query_model=GET_MODEL)
    final = responses[-1]
    assert final.Status == CANCELLED
    completed = int(final.NumberOfCompletedSuboperations)
    assert 1 <= completed < LARGE
    assert final.NumberOfRemainingSuboperations == LARGE - completed
    assert len(received.datasets) == completed
