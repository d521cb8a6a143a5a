"""What a C-GET or C-MOVE really did: the final response, the log line and the audit event
agree on the sub-operations' counts and the SOP instances that did not arrive, and a fault
inside the handler ends in a failure status, a log line and an audit event, not an escaped
exception. Real faults only: blobs removed from the store, a receiver that refuses some
instances, an identifier that cannot be decoded, all from real peers over loopback."""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import build_role, evt
from pynetdicom.dimse_primitives import C_GET, C_MOVE

from openpacs.archive.records import AuditFilter
from tests.support import scu
from tests.support.backends import Backend
from tests.support.corpus import CT_IMAGE_STORAGE, synthetic_ct_series
from tests.support.node import Node, running_node

PENDING = (0xFF00, 0xFF01)
WARNING, ALL_FAILED, UNABLE_TO_PROCESS = 0xB000, 0xA702, 0xC000
SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]


@pytest.fixture(scope="module")
def destination() -> Iterator[tuple[int, scu.Received]]:
    with scu.storage_scp("MOVESCP") as scp:
        yield scp


@pytest.fixture(scope="module")
def node(
    tmp_path_factory: pytest.TempPathFactory,
    module_backend: Backend,
    destination: tuple[int, scu.Received],
) -> Iterator[Node]:
    remote = {"aet": "MOVESCP", "host": "127.0.0.1", "port": destination[0]}
    folder = tmp_path_factory.mktemp("retrieve")
    with running_node(folder, backend=module_backend, dicom={"remotes": [remote]}) as node:
        yield node


def _study(node: Node, count: int, *, lose: int) -> tuple[str, list[str], list[str]]:
    """A stored study whose first `lose` instances lost their blobs: (study, kept, lost)."""
    series = synthetic_ct_series(count, rows=8, columns=8)
    assert [int(s.Status) for s in scu.store(node.port, series)] == [0] * count
    lost = [str(ds.SOPInstanceUID) for ds in series[:lose]]
    for sop_uid in lost:
        instance = node.archive.instance(sop_uid)
        assert instance is not None
        node.archive.store.delete(instance.blob_key)
    kept = [str(ds.SOPInstanceUID) for ds in series[lose:]]
    return str(series[0].StudyInstanceUID), kept, lost


def _audit(node: Node, action: str, study_uid: str) -> list[Any]:
    node.wait_idle()
    node.archive.audit.flush()
    _total, events = node.archive.audit.search(AuditFilter(action=action, study_uid=study_uid))
    return events


def _get(node: Node, study_uid: str, refuse: dict[str, int] | None = None) -> Any:
    """C-GET as a real SCU whose C-STORE handler answers `refuse[sop_uid]` when listed."""
    refuse = refuse or {}
    received: list[str] = []

    def on_store(event: Any) -> int:
        sop_uid = str(event.request.AffectedSOPInstanceUID)
        received.append(sop_uid)
        return refuse.get(sop_uid, 0x0000)

    contexts = [scu.MODELS["study"][1], (CT_IMAGE_STORAGE, SYNTAXES)]
    identifier = scu.identifier("STUDY", StudyInstanceUID=study_uid)
    with scu.association(
        node.port,
        contexts,
        roles=[build_role(CT_IMAGE_STORAGE, scp_role=True)],
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    ) as assoc:
        responses = scu.get_on(assoc, identifier)
    return responses[-1], received


def _failed_list(identifier: Dataset | None) -> list[str]:
    assert identifier is not None
    value = identifier.FailedSOPInstanceUIDList
    return [str(value)] if isinstance(value, str) else [str(v) for v in value]


def test_c_get_with_lost_blobs_is_audited_as_a_failure(node: Node) -> None:
    study_uid, kept, lost = _study(node, 4, lose=2)
    (final, identifier), received = _get(node, study_uid)
    assert final.Status == WARNING
    assert (final.NumberOfCompletedSuboperations, final.NumberOfFailedSuboperations) == (2, 2)
    assert sorted(_failed_list(identifier)) == sorted(lost)
    assert sorted(received) == sorted(kept)
    (event,) = _audit(node, "download", study_uid)
    assert event.outcome == "failure"
    assert "status=0xB000 completed=2 failed=2 warning=0" in event.detail
    assert all(sop_uid in event.detail for sop_uid in lost)


def test_c_get_refused_by_the_receiver_counts_each_answer(node: Node) -> None:
    study_uid, kept, _lost = _study(node, 3, lose=0)
    refuse = {kept[0]: 0xA700, kept[1]: 0xB000}  # out of resources; coercion (a warning)
    (final, identifier), _received = _get(node, study_uid, refuse)
    assert final.Status == WARNING
    assert final.NumberOfCompletedSuboperations == 1
    assert final.NumberOfFailedSuboperations == 1
    assert final.NumberOfWarningSuboperations == 1
    assert kept[0] in _failed_list(identifier)
    (event,) = _audit(node, "download", study_uid)
    assert event.outcome == "failure"
    assert "completed=1 failed=1 warning=1" in event.detail
    assert f"failed_sop_uids={kept[0]}" in event.detail


def test_c_get_of_a_whole_study_without_blobs_fails(node: Node) -> None:
    study_uid, _kept, _lost = _study(node, 2, lose=2)
    (final, _identifier), received = _get(node, study_uid)
    assert final.Status == ALL_FAILED
    assert received == []
    (event,) = _audit(node, "download", study_uid)
    assert event.outcome == "failure"
    assert "status=0xA702 completed=0 failed=2" in event.detail


def test_c_get_that_succeeds_is_audited_with_its_counts(node: Node) -> None:
    study_uid, kept, _lost = _study(node, 2, lose=0)
    (final, _identifier), received = _get(node, study_uid)
    assert final.Status == 0x0000
    assert sorted(received) == sorted(kept)
    (event,) = _audit(node, "download", study_uid)
    assert event.outcome == "success"
    assert "status=0x0000 completed=2 failed=0 warning=0" in event.detail


def test_c_move_with_lost_blobs_is_audited_as_a_failure(
    node: Node, destination: tuple[int, scu.Received]
) -> None:
    _port, received = destination
    study_uid, kept, lost = _study(node, 5, lose=2)
    received.datasets.clear()
    identifier = scu.identifier("STUDY", StudyInstanceUID=study_uid)
    with scu.association(node.port, [scu.MODELS["study"][2]]) as assoc:
        responses = scu.move_on(assoc, identifier, "MOVESCP")
    final, failed = responses[-1]
    assert final.Status == WARNING
    assert (final.NumberOfCompletedSuboperations, final.NumberOfFailedSuboperations) == (3, 2)
    assert sorted(_failed_list(failed)) == sorted(lost)
    assert sorted(str(d.SOPInstanceUID) for d in received.datasets) == sorted(kept)
    (event,) = _audit(node, "send", study_uid)
    assert event.outcome == "failure"
    assert "status=0xB000 completed=3 failed=2 warning=0" in event.detail
    assert all(sop_uid in event.detail for sop_uid in lost)
    assert "destination=MOVESCP" in event.resource


def _undecodable_identifier() -> bytes:
    """QueryRetrieveLevel=STUDY, then a sequence of undefined length cut off in its first
    item's tag: an identifier no DICOM parser can read to its end."""
    level = struct.pack("<HHI", 0x0008, 0x0052, 6) + b"STUDY "
    sequence = struct.pack("<HHI", 0x0008, 0x1110, 0xFFFFFFFF) + b"\x00\x01\x02"
    return level + sequence


def _raw_request(node: Node, primitive: Any, model: str) -> list[Dataset]:
    """Send `primitive` with an undecodable identifier as it is; every response status."""
    with scu.association(node.port, [model]) as assoc:
        context = next(c for c in assoc.accepted_contexts if c.abstract_syntax == model)
        primitive.MessageID = 1
        primitive.AffectedSOPClassUID = model
        primitive.Priority = 2
        primitive.Identifier = BytesIO(_undecodable_identifier())
        scu.settle_reactor(assoc)
        assoc.dimse.send_msg(primitive, context.context_id)
        statuses: list[Dataset] = []
        deadline = time.monotonic() + scu.TIMEOUT
        while time.monotonic() < deadline:
            _context_id, response = assoc.dimse.get_msg(block=True)
            if response is None:
                continue
            status = Dataset()
            status.Status = response.Status
            if response.ErrorComment:
                status.ErrorComment = response.ErrorComment
            statuses.append(status)
            if response.Status not in PENDING:
                break
        assoc._reactor_checkpoint.set()
    return statuses


@pytest.mark.parametrize("operation", ["C-GET", "C-MOVE"])
def test_an_unexpected_fault_ends_in_a_failure_status_a_log_line_and_an_audit_event(
    node: Node, operation: str, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.INFO, logger="openpacs")
    if operation == "C-GET":
        primitive: Any = C_GET()
        model, action = scu.MODELS["study"][1], "download"
    else:
        primitive = C_MOVE()
        primitive.MoveDestination = "MOVESCP"
        model, action = scu.MODELS["study"][2], "send"
    statuses = _raw_request(node, primitive, model)
    final = statuses[-1]
    assert final.Status == UNABLE_TO_PROCESS
    assert final.ErrorComment == "internal error"
    unexpected = [r for r in caplog.records if f"{operation} failed unexpectedly" in r.message]
    assert unexpected
    assert unexpected[0].exc_info is not None  # the traceback is in the log
    node.wait_idle()
    node.archive.audit.flush()
    _total, events = node.archive.audit.search(AuditFilter(action=action, outcome="failure"))
    assert any("status=0xC000" in e.detail for e in events)
    assert scu.echo(node.port) == 0x0000  # and the node still serves
