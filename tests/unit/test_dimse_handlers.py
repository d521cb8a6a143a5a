"""The DIMSE handlers on a `Request`: peer policy, audit, statuses, cancellation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from openpacs.archive.records import AuditEvent
from openpacs.config import DicomSettings, PeerPermissions
from openpacs.dimse.handlers import (
    CANCELLED,
    PENDING,
    SUCCESS,
    DimseContext,
    audit_rejected,
    handle_echo,
    handle_find,
    handle_store,
)
from openpacs.dimse.peer_policy import NOT_AUTHORIZED, PeerPolicy
from openpacs.dimse.request import Peer, Request
from openpacs.errors import OpenPacsError

PEER = Peer("MODALITY", "OPENPACS", "127.0.0.1", 4000)
CT = "1.2.840.10008.5.1.4.1.1.2"
STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"


class Audit:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def record(self, event: AuditEvent) -> None:
        self.events.append(event)


class FakeArchive:
    """Records what the handlers ask of it."""

    def __init__(self, *, fail: Exception | None = None, matches: int = 0) -> None:
        self.audit = Audit()
        self.stored: list[tuple[Path, dict[str, Any]]] = []
        self.fail = fail
        self.matches = matches

    def store_file(self, path: Path, **kwargs: Any) -> Any:
        if self.fail is not None:
            raise self.fail
        self.stored.append((path, kwargs))
        return type("Outcome", (), {"study_uid": "1.2.3"})()

    def find(self, query: Any) -> list[Any]:
        return [object()] * self.matches


def _context(archive: FakeArchive, **dicom: Any) -> DimseContext:
    settings = DicomSettings(**dicom)
    return DimseContext(
        archive=archive,  # type: ignore[arg-type]
        aet="OPENPACS",
        remotes={},
        policy=PeerPolicy(settings),
    )


def _store(path: Path | None) -> Request:
    command = {"MessageID": 1, "AffectedSOPClassUID": CT, "AffectedSOPInstanceUID": "1.2.3.4"}
    return Request(PEER, command, dataset_path=path)


def test_echo_succeeds_or_is_refused_by_the_peer_policy() -> None:
    archive = FakeArchive()
    assert handle_echo(Request(PEER, {"MessageID": 1}), _context(archive)) == SUCCESS
    refusing = _context(archive, peers=[PeerPermissions(aet="MODALITY", allow=("store",))])
    assert handle_echo(Request(PEER, {"MessageID": 1}), refusing) == NOT_AUTHORIZED
    assert [(e.action, e.outcome) for e in archive.audit.events] == [("echo", "denied")]


def test_store_hands_the_spooled_file_to_the_archive_with_the_peer_as_origin(
    tmp_path: Path,
) -> None:
    archive = FakeArchive()
    status = handle_store(_store(tmp_path / "spool.dcm"), _context(archive))
    assert status.Status == SUCCESS
    (path, kwargs), *_ = archive.stored
    assert path == tmp_path / "spool.dcm"
    assert kwargs["sop_uid"] == "1.2.3.4"
    assert kwargs["consume"] is True
    assert (kwargs["origin"].calling_aet, kwargs["origin"].called_aet) == ("MODALITY", "OPENPACS")
    event = archive.audit.events[-1]
    assert (event.action, event.outcome, event.sop_uid) == ("store", "success", "1.2.3.4")
    assert event.study_uid == "1.2.3"
    assert event.peer == "127.0.0.1:4000"


def test_store_failures_are_statuses_with_a_reason(tmp_path: Path) -> None:
    refused = FakeArchive(fail=OpenPacsError("the data set disagrees"))
    status = handle_store(_store(tmp_path / "a.dcm"), _context(refused))
    assert status.Status == OpenPacsError.dimse_status
    assert status.ErrorComment == "the data set disagrees"
    broken = FakeArchive(fail=RuntimeError("disk on fire"))
    status = handle_store(_store(tmp_path / "a.dcm"), _context(broken))
    assert (status.Status, status.ErrorComment) == (0xA700, "internal error")
    assert handle_store(_store(None), _context(FakeArchive())).Status != SUCCESS


def test_rejected_association_is_audited_with_the_policy_reason() -> None:
    archive = FakeArchive()
    context = _context(archive, accept_unknown_aets=False, peers=[PeerPermissions(aet="OTHER")])
    audit_rejected(PEER, context)
    event = archive.audit.events[-1]
    assert (event.action, event.outcome, event.actor) == ("associate", "denied", "MODALITY")
    assert "not known" in event.detail


def _find(identifier: Dataset, cancelled: list[bool]) -> Request:
    return Request(
        PEER,
        {"MessageID": 3, "AffectedSOPClassUID": STUDY_FIND},
        load_identifier=lambda: identifier,
        cancelled=lambda: cancelled[0],
    )


def test_find_refuses_an_undecodable_identifier_with_a_failure_status() -> None:
    def broken() -> Dataset:
        raise ValueError("truncated")

    request = Request(PEER, {"MessageID": 3, "AffectedSOPClassUID": STUDY_FIND}, broken)
    responses = list(handle_find(request, _context(FakeArchive())))
    assert len(responses) == 1
    assert responses[0][1] is None
    assert responses[0][0].Status != SUCCESS


def test_find_stops_at_a_cancel(monkeypatch: Any) -> None:
    monkeypatch.setattr("openpacs.dimse.handlers.find_response", lambda *a, **k: Dataset())
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = ""
    cancelled = [False]
    responses = []
    for status, _ in handle_find(_find(identifier, cancelled), _context(FakeArchive(matches=5))):
        responses.append(status)
        cancelled[0] = len(responses) == 2
    assert responses == [PENDING, PENDING, CANCELLED]
