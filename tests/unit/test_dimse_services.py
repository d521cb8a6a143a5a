"""The DIMSE services against a stand-in for the engine's Association, on a real archive
(SQLite index, folder store): C-ECHO, C-STORE spooled to staging, C-FIND with C-CANCEL,
C-GET on the same association, failures, and an association that ends mid-operation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from openpacs.archive.service import Archive
from openpacs.compose import build_archive
from openpacs.config import load_settings
from openpacs.dimse import messages as m
from openpacs.dimse.association import FileSlice
from openpacs.dimse.datasets import decode, encode
from openpacs.dimse.handlers import DimseContext
from openpacs.dimse.peer_policy import PeerPolicy
from openpacs.dimse.sending import dataset_offset
from openpacs.dimse.services import Services

CT = "1.2.840.10008.5.1.4.1.1.2"
STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_GET = "1.2.840.10008.5.1.4.1.2.2.3"
VERIFICATION = "1.2.840.10008.1.1"


@dataclass(frozen=True)
class Accepted:
    id: int
    abstract_syntax: str
    transfer_syntax: str
    scu_role: bool = True
    scp_role: bool = False


@dataclass(frozen=True)
class Message:
    context_id: int
    command: m.Command
    dataset: bytes | Path | None = None


class FakeAssociation:
    """Records what the services send; answers C-GET sub-operations like a storage SCP."""

    calling_aet = "MODALITY"
    called_aet = "OPENPACS"
    peer_host = "127.0.0.1"
    peer_port = 4000
    peer_certificate = None

    def __init__(self, contexts: list[Accepted], store_status: int = 0) -> None:
        self.contexts = {c.id: c for c in contexts}
        self.sent: list[tuple[int, dict[str, Any], Any]] = []
        self.aborted = False
        self.services: Services | None = None
        self.store_status = store_status

    async def send_message(
        self, context_id: int, command: Mapping[str, object], dataset: Any = None
    ) -> None:
        m.encode_command(command)  # every response is a valid command set
        self.sent.append((context_id, dict(command), dataset))
        if command["CommandField"] == m.C_STORE_RQ:
            assert self.services is not None
            response = {
                "CommandField": m.C_STORE_RSP,
                "MessageIDBeingRespondedTo": command["MessageID"],
                "AffectedSOPInstanceUID": command["AffectedSOPInstanceUID"],
                "Status": self.store_status,
            }
            asyncio.get_running_loop().call_soon(
                self.services.message_received, self, Message(context_id, m.Command(response))
            )

    def abort(self, source: int = 0, reason: int = 0) -> None:
        self.aborted = True

    def responses(self) -> list[dict[str, Any]]:
        return [c for _, c, _ in self.sent if c["CommandField"] & 0x8000]


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[Archive]:
    config = tmp_path / "openpacs.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "index.db"}"\n'
        f'[storage]\nurl = "{tmp_path / "blobs"}"\n',
        encoding="utf-8",
    )
    archive = build_archive(load_settings(config, environ={}))
    archive.start()
    try:
        yield archive
    finally:
        archive.close()


def _services(archive: Archive, assoc: FakeAssociation) -> Services:
    context = DimseContext(
        archive=archive,
        aet="OPENPACS",
        remotes={},
        policy=PeerPolicy(load_settings(None, environ={}).dicom),
        dimse_timeout=5,
    )
    services = Services(context, assoc)  # type: ignore[arg-type]
    assoc.services = services
    return services


def _instance(study_uid: str, patient: str = "Doe^Jane") -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = "P1"
    ds.PatientName = patient
    ds.Modality = "CT"
    ds.StudyDate = "20240101"
    ds.Rows = ds.Columns = 2
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = b"\0\1" * 4
    return ds


async def _settle(services: Services) -> None:
    """Until the services have answered everything they were given (bounded)."""
    for _ in range(500):
        task = services._task
        if task is None or task.done():
            if task is not None and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
            return
        await asyncio.sleep(0.01)
    raise TimeoutError("the services did not finish")


def _command(field: int, message_id: int, sop_class: str, **more: object) -> m.Command:
    return m.Command(
        {"CommandField": field, "MessageID": message_id, "AffectedSOPClassUID": sop_class, **more}
    )


async def _store(
    services: Services, assoc: FakeAssociation, ds: Dataset, message_id: int = 1
) -> dict[str, Any]:
    command = _command(
        m.C_STORE_RQ,
        message_id,
        CT,
        AffectedSOPInstanceUID=ds.SOPInstanceUID,
        CommandDataSetType=m.HAS_DATASET,
    )
    sink = services.data_sink(assoc, 1, command)
    assert sink is not None
    data = encode(ds, ExplicitVRLittleEndian)
    for start in range(0, len(data), 7):  # small fragments, as P-DATA brings them
        sink.write(memoryview(data)[start : start + 7])
    services.message_received(assoc, Message(1, command, sink.close()))
    await _settle(services)
    return assoc.responses()[-1]


STORAGE = Accepted(1, CT, ExplicitVRLittleEndian)


def test_echo_answers_success(archive: Archive) -> None:
    async def run() -> None:
        assoc = FakeAssociation([Accepted(1, VERIFICATION, ImplicitVRLittleEndian)])
        services = _services(archive, assoc)
        services.message_received(assoc, Message(1, _command(m.C_ECHO_RQ, 7, VERIFICATION)))
        await _settle(services)
        (response,) = assoc.responses()
        assert response["CommandField"] == m.C_ECHO_RSP
        assert (response["MessageIDBeingRespondedTo"], response["Status"]) == (7, 0)

    asyncio.run(run())


def test_store_spools_to_staging_and_answers_after_the_archive_stored_it(
    archive: Archive,
) -> None:
    async def run() -> None:
        assoc = FakeAssociation([STORAGE])
        services = _services(archive, assoc)
        ds = _instance(generate_uid())
        response = await _store(services, assoc, ds)
        assert response["Status"] == 0
        assert response["AffectedSOPInstanceUID"] == ds.SOPInstanceUID
        stored = archive.instance(ds.SOPInstanceUID)
        assert stored is not None
        with archive.open_local(stored) as path:
            data = path.read_bytes()
            offset = dataset_offset(path)
        assert data[offset:] == encode(ds, ExplicitVRLittleEndian)
        staging = archive.staging_dir()
        assert staging is None or not list(staging.iterdir())

    asyncio.run(run())


def test_a_store_on_a_context_where_the_requestor_is_only_scp_is_refused(
    archive: Archive,
) -> None:
    """PS3.7 D.3.3.4: the role selection left the requestor SCP only (a C-GET's storage
    context): a C-STORE it sends there is refused, and nothing is kept."""

    async def run() -> None:
        assoc = FakeAssociation([Accepted(1, CT, ExplicitVRLittleEndian, False, True)])
        services = _services(archive, assoc)
        ds = _instance(generate_uid())
        response = await _store(services, assoc, ds)
        assert response["CommandField"] == m.C_STORE_RSP
        assert response["Status"] == 0x0122
        assert archive.instance(ds.SOPInstanceUID) is None
        staging = archive.staging_dir()
        assert staging is None or not list(staging.iterdir())

    asyncio.run(run())


def test_store_of_a_data_set_that_disagrees_with_the_command_fails_and_keeps_nothing(
    archive: Archive,
) -> None:
    async def run() -> None:
        assoc = FakeAssociation([STORAGE])
        services = _services(archive, assoc)
        ds = _instance(generate_uid())
        command = _command(
            m.C_STORE_RQ, 1, CT, AffectedSOPInstanceUID="1.2.3.999", CommandDataSetType=1
        )
        sink = services.data_sink(assoc, 1, command)
        assert sink is not None
        sink.write(memoryview(encode(ds, ExplicitVRLittleEndian)))
        services.message_received(assoc, Message(1, command, sink.close()))
        await _settle(services)
        (response,) = assoc.responses()
        assert response["Status"] != 0
        assert response["ErrorComment"]
        assert archive.totals().instances == 0
        staging = archive.staging_dir()
        assert staging is None or not list(staging.iterdir())

    asyncio.run(run())


def _find_identifier(study_uid: str = "") -> bytes:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = study_uid
    identifier.PatientName = ""
    return encode(identifier, ImplicitVRLittleEndian)


def test_find_streams_a_pending_response_per_match_then_success(archive: Archive) -> None:
    async def run() -> None:
        assoc = FakeAssociation([STORAGE, Accepted(3, STUDY_FIND, ImplicitVRLittleEndian)])
        services = _services(archive, assoc)
        studies = sorted(generate_uid() for _ in range(3))
        for number, study in enumerate(studies):
            await _store(services, assoc, _instance(study), message_id=number + 1)
        assoc.sent.clear()
        find = _command(m.C_FIND_RQ, 9, STUDY_FIND, CommandDataSetType=1)
        services.message_received(assoc, Message(3, find, _find_identifier()))
        await _settle(services)
        statuses = [c["Status"] for _, c, _ in assoc.sent]
        assert statuses == [m_pending() for _ in studies] + [0]
        found = sorted(
            decode(data, ImplicitVRLittleEndian).StudyInstanceUID for _, _, data in assoc.sent[:-1]
        )
        assert found == studies
        assert assoc.sent[-1][2] is None

    asyncio.run(run())


def m_pending() -> int:
    return 0xFF00


def test_find_cancelled_before_it_runs_answers_cancel(archive: Archive) -> None:
    async def run() -> None:
        assoc = FakeAssociation([STORAGE, Accepted(3, STUDY_FIND, ImplicitVRLittleEndian)])
        services = _services(archive, assoc)
        await _store(services, assoc, _instance(generate_uid()))
        assoc.sent.clear()
        find = _command(m.C_FIND_RQ, 9, STUDY_FIND, CommandDataSetType=1)
        cancel = m.Command({"CommandField": m.C_CANCEL_RQ, "MessageIDBeingRespondedTo": 9})
        services.message_received(assoc, Message(3, find, _find_identifier()))
        services.message_received(assoc, Message(3, cancel))
        await _settle(services)
        assert [c["Status"] for _, c, _ in assoc.sent] == [0xFE00]

    asyncio.run(run())


def test_find_with_an_undecodable_identifier_fails_with_a_status(archive: Archive) -> None:
    async def run() -> None:
        assoc = FakeAssociation([Accepted(3, STUDY_FIND, ImplicitVRLittleEndian)])
        services = _services(archive, assoc)
        find = _command(m.C_FIND_RQ, 9, STUDY_FIND, CommandDataSetType=1)
        services.message_received(assoc, Message(3, find, b"\x08\x00\x52\x00\xff\xff\xff"))
        await _settle(services)
        (response,) = assoc.responses()
        assert response["Status"] not in (0, 0xFF00)
        assert not assoc.aborted

    asyncio.run(run())


def _get(services: Services, assoc: FakeAssociation, study_uid: str) -> None:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = study_uid
    get = _command(m.C_GET_RQ, 11, STUDY_GET, CommandDataSetType=1)
    services.message_received(assoc, Message(5, get, encode(identifier, ImplicitVRLittleEndian)))


def _read(part: FileSlice) -> bytes:
    assert isinstance(part.file, Path)
    with part.file.open("rb") as file:
        file.seek(part.offset)
        return file.read(part.length)


def test_get_sends_stored_bytes_on_the_same_association_and_counts_down(
    archive: Archive,
) -> None:
    async def run() -> None:
        get_context = Accepted(5, STUDY_GET, ImplicitVRLittleEndian)
        assoc = FakeAssociation(
            [Accepted(1, CT, ExplicitVRLittleEndian, scp_role=True), get_context]
        )
        services = _services(archive, assoc)
        study = generate_uid()
        datasets = [_instance(study) for _ in range(3)]
        for number, ds in enumerate(datasets):
            await _store(services, assoc, ds, message_id=number + 1)
        assoc.sent.clear()
        _get(services, assoc, study)
        await _settle(services)
        requests = [(c, d) for _, c, d in assoc.sent if c["CommandField"] == m.C_STORE_RQ]
        assert all(isinstance(d, FileSlice) for _, d in requests)  # sent from the stored file
        sent = {c["AffectedSOPInstanceUID"]: _read(d) for c, d in requests}
        assert sent == {ds.SOPInstanceUID: encode(ds, ExplicitVRLittleEndian) for ds in datasets}
        responses = [c for _, c, _ in assoc.sent if c["CommandField"] == m.C_GET_RSP]
        assert [r["Status"] for r in responses] == [0xFF00, 0xFF00, 0xFF00, 0]
        assert [r.get("NumberOfRemainingSuboperations") for r in responses] == [2, 1, 0, None]
        assert responses[-1]["NumberOfCompletedSuboperations"] == 3
        assert responses[-1]["NumberOfFailedSuboperations"] == 0

    asyncio.run(run())


def test_get_converts_to_an_accepted_syntax_and_lists_what_it_cannot_send(
    archive: Archive,
) -> None:
    async def run() -> None:
        store_assoc = FakeAssociation([STORAGE])
        study = generate_uid()
        datasets = [_instance(study) for _ in range(2)]
        storing = _services(archive, store_assoc)
        for number, ds in enumerate(datasets):
            await _store(storing, store_assoc, ds, message_id=number + 1)
        # Implicit VR only: converted. Then no storage context at all: every one fails.
        implicit = Accepted(1, CT, ImplicitVRLittleEndian, scp_role=True)
        assoc = FakeAssociation([implicit, Accepted(5, STUDY_GET, ImplicitVRLittleEndian)])
        _get(_services(archive, assoc), assoc, study)
        await _settle(assoc.services)  # type: ignore[arg-type]
        sent = [d for _, c, d in assoc.sent if c["CommandField"] == m.C_STORE_RQ]
        assert sorted(decode(d, ImplicitVRLittleEndian).SOPInstanceUID for d in sent) == sorted(
            ds.SOPInstanceUID for ds in datasets
        )
        assert assoc.responses()[-1]["Status"] == 0
        refusing = FakeAssociation([Accepted(5, STUDY_GET, ImplicitVRLittleEndian)])
        _get(_services(archive, refusing), refusing, study)
        await _settle(refusing.services)  # type: ignore[arg-type]
        _, final, data = refusing.sent[-1]
        assert final["Status"] == 0xA702
        assert final["NumberOfFailedSuboperations"] == 2
        failed = decode(data, ImplicitVRLittleEndian).FailedSOPInstanceUIDList
        assert sorted(failed) == sorted(ds.SOPInstanceUID for ds in datasets)

    asyncio.run(run())


def test_an_association_that_ends_discards_what_was_spooled(archive: Archive) -> None:
    async def run() -> None:
        assoc = FakeAssociation([STORAGE])
        services = _services(archive, assoc)
        ds = _instance(generate_uid())
        command = _command(
            m.C_STORE_RQ, 1, CT, AffectedSOPInstanceUID=ds.SOPInstanceUID, CommandDataSetType=1
        )
        sink = services.data_sink(assoc, 1, command)
        assert sink is not None
        sink.write(memoryview(encode(ds, ExplicitVRLittleEndian))[:10])
        sink.discard()  # the association aborted mid data set
        assert not sink.path.exists()
        second = services.data_sink(assoc, 1, command)
        assert second is not None
        second.write(memoryview(encode(ds, ExplicitVRLittleEndian)))
        services.message_received(assoc, Message(1, command, second.close()))
        services.association_ended(assoc, "aborted")  # before the store ran
        await asyncio.sleep(0.05)
        assert not second.path.exists()
        assert archive.totals().instances == 0

    asyncio.run(run())
