"""Bad input over real sockets: malformed data sets, an aborted C-STORE and plain garbage.

Malformed bodies are sent byte for byte: each is wrapped in a file with a proper file meta
header and sent with pynetdicom's `STORE_SEND_CHUNKED_DATASET`, which streams the file's data
set without decoding or re-encoding it.
"""

from __future__ import annotations

import gc
import logging
import random
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)
from pynetdicom import AllStoragePresentationContexts, _config, evt
from pynetdicom.dsutils import split_dataset
from pynetdicom.pdu import P_DATA_TF

from tests.support import scu
from tests.support.corpus import (
    CT_IMAGE_STORAGE,
    PYDICOM_TEST_FILES,
    SECONDARY_CAPTURE_IMAGE_STORAGE,
    bad_datasets,
    dataset_problem,
    parse_dataset_body,
    pydicom_malformed_reasons,
    synthetic_ct_series,
)
from tests.support.node import HOST, Node, running_node

SUCCESS = 0x0000
STORAGE_CLASSES = {str(c.abstract_syntax) for c in AllStoragePresentationContexts}
WAIT = 10.0
ACSE_TIMEOUT = 1.0


@dataclass(frozen=True)
class RawStore:
    """A data set body and what a C-STORE request needs to carry it."""

    body: bytes
    sop_class: str
    sop_uid: str
    transfer_syntax: str

    def wrap(self, path: Path) -> Path:
        """A file whose data set is `body`, unchanged, behind a valid file meta header."""
        meta = FileMetaDataset()
        meta.FileMetaInformationVersion = b"\x00\x01"
        meta.MediaStorageSOPClassUID = self.sop_class
        meta.MediaStorageSOPInstanceUID = self.sop_uid
        meta.TransferSyntaxUID = self.transfer_syntax
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        header = DicomBytesIO()
        write_file_meta_info(header, meta, enforce_standard=True)
        path.write_bytes(b"\x00" * 128 + b"DICM" + header.getvalue() + self.body)
        return path


def _valid_uid(value: object) -> str | None:
    text = str(value or "").strip().rstrip("\x00")
    return text if text and UID(text).is_valid else None


def _command_uids(ds: Dataset | None) -> tuple[str, str]:
    """The SOP class and instance a C-STORE request announces for `ds`: its own when they
    are usable, else Secondary Capture and a fresh UID (the node must still refuse it)."""
    sop_class = sop_uid = None
    if ds is not None:
        try:
            sop_class = _valid_uid(ds.get("SOPClassUID"))
            sop_uid = _valid_uid(ds.get("SOPInstanceUID"))
        except Exception:  # a malformed value can fail to convert: announce our own
            sop_class = sop_uid = None
    if sop_class not in STORAGE_CLASSES:
        sop_class = SECONDARY_CAPTURE_IMAGE_STORAGE
    return sop_class, sop_uid or generate_uid()


def _forced(path: Path) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = dcmread(path, force=True)
        ds.get("SOPClassUID")  # parse up to the identifiers while warnings are off
        return ds


def _syntax_of(ds: Dataset) -> str:
    implicit, little = ds.original_encoding
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def _from_file(path: Path) -> RawStore:
    """The data set of a pydicom test file as a C-STORE would carry it."""
    raw = path.read_bytes()
    ds = _forced(path)
    syntax = _syntax_of(ds)
    body = raw
    if raw[128:132] == b"DICM":
        meta, offset = split_dataset(path)
        body = raw[offset:]
        syntax = _valid_uid(meta.get("TransferSyntaxUID")) or syntax
    return RawStore(body, *_command_uids(ds), syntax)


def _from_body(body: bytes) -> RawStore:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds: Dataset | None = parse_dataset_body(body)
    except Exception:
        ds = None
    sop_class, sop_uid = _command_uids(ds)
    if ds is not None and "SOPClassUID" not in ds:
        sop_class = CT_IMAGE_STORAGE  # what bad_datasets() builds them from
    return RawStore(body, sop_class, sop_uid, ExplicitVRLittleEndian)


def _only_defect_is_the_file_header(path: Path, reason: str) -> bool:
    """A C-STORE carries no preamble or file meta: a file refused only for lacking them
    holds a data set that is perfectly storable over DIMSE."""
    return reason.startswith("not readable without force") and (
        dataset_problem(_forced(path)) is None
    )


_MALFORMED = {
    path.relative_to(PYDICOM_TEST_FILES).as_posix(): (path, reason)
    for path, reason in pydicom_malformed_reasons().items()
}
HEADER_ONLY = sorted(n for n, (p, r) in _MALFORMED.items() if _only_defect_is_the_file_header(p, r))
MALFORMED = sorted(set(_MALFORMED) - set(HEADER_ONLY))
BAD = [name for name, _ in bad_datasets()]


@dataclass(frozen=True)
class Outcome:
    status: int | None
    stored: int
    """How many instances the node gained with this C-STORE."""
    sop_uid: str


def _send_all(node: Node, cases: dict[str, RawStore], folder: Path) -> dict[str, Outcome]:
    """C-STORE each case's body byte for byte, re-associating if the node ever aborts."""
    contexts = sorted({(case.sop_class, case.transfer_syntax) for case in cases.values()})
    requested = [(sop, [ts]) for sop, ts in contexts]
    outcomes: dict[str, Outcome] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)
        pending = list(cases)
        while pending:
            with scu.association(node.port, requested) as assoc:
                while pending and assoc.is_established:
                    name = pending.pop(0)
                    path = cases[name].wrap(folder / f"case-{len(outcomes)}.dcm")
                    before = node.instance_count()
                    scu.settle_reactor(assoc)
                    response = assoc.send_c_store(path)
                    status = int(response.Status) if "Status" in response else None
                    stored = node.instance_count() - before
                    outcomes[name] = Outcome(status, stored, cases[name].sop_uid)
    return outcomes


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    with running_node(tmp_path_factory.mktemp("bad-input-node")) as running:
        yield running


@pytest.fixture(scope="module")
def outcomes(node: Node, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    cases = {f"file:{name}": _from_file(path) for name, (path, _) in _MALFORMED.items()}
    cases |= {f"body:{name}": _from_body(body) for name, body in bad_datasets()}
    return _send_all(node, cases, tmp_path_factory.mktemp("bad-input-files"))


@pytest.mark.parametrize("name", MALFORMED)
def test_a_malformed_pydicom_file_is_refused(outcomes: dict[str, Outcome], name: str) -> None:
    outcome = outcomes[f"file:{name}"]
    assert outcome.status is not None
    assert outcome.status != SUCCESS
    assert outcome.stored == 0


@pytest.mark.parametrize("name", HEADER_ONLY)
def test_a_data_set_refused_only_for_its_missing_file_header_is_stored(
    node: Node, outcomes: dict[str, Outcome], name: str
) -> None:
    """ExplVR_*NoMeta.dcm and rtstruct.dcm are complete data sets without a Part 10 header;
    a C-STORE carries no Part 10 header, so they are valid C-STOREs. (The two ExplVR files
    are one instance in two encodings: the second is a duplicate, kept once.)"""
    outcome = outcomes[f"file:{name}"]
    assert outcome.status == SUCCESS
    assert node.archive.instance(outcome.sop_uid) is not None


@pytest.mark.parametrize("name", BAD)
def test_a_bad_data_set_is_refused(outcomes: dict[str, Outcome], name: str) -> None:
    outcome = outcomes[f"body:{name}"]
    assert outcome.status is not None
    assert outcome.status != SUCCESS
    assert outcome.stored == 0


def test_the_node_still_serves_after_the_bad_input(
    node: Node, outcomes: dict[str, Outcome]
) -> None:
    before = node.instance_count()
    (ds,) = synthetic_ct_series(1, rows=8, columns=8)
    assert [s.Status for s in scu.store(node.port, [ds])] == [SUCCESS]
    assert node.instance_count() == before + 1


# -- an association aborted in the middle of a C-STORE --------------------------------------------


class _AbortAfter:
    """EVT_PDU_SENT handler: after `count` P-DATA PDUs, drop what is still queued and abort.

    pynetdicom queues a message's PDUs and an A-ABORT behind them, so a plain abort() would
    only go out after the whole data set; this one is sent instead of the rest. Each PDU is
    held back a little so that the sender has queued the whole message by then.
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self.sent = 0
        self.aborted = threading.Event()

    def __call__(self, event: evt.Event) -> None:
        if not isinstance(event.pdu, P_DATA_TF) or self.aborted.is_set():
            return
        self.sent += 1
        time.sleep(0.002)
        if self.sent == self.count:
            outgoing = event.assoc.dul.to_provider_queue
            with outgoing.mutex:
                outgoing.queue.clear()
            self.aborted.set()
            event.assoc.abort(block=False)


def _files_outside_staging(node: Node) -> list[Path]:
    return [
        p
        for p in node.blob_folder.rglob("*")
        if p.is_file() and p.relative_to(node.blob_folder).parts[0] != ".staging"
    ]


def test_a_c_store_aborted_midway_leaves_nothing_behind(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (ds,) = synthetic_ct_series(1, rows=512, columns=512)  # 512 KiB of pixel data
    abort = _AbortAfter(count=20)
    with running_node(tmp_path / "node", dicom={"max_pdu": 4096}) as node:
        # pynetdicom logs the broken transfer with tracebacks; captured, they would keep the
        # node's objects alive past the leak check below.
        caplog.set_level(logging.CRITICAL, logger="pynetdicom")
        with scu.association(node.port, [(CT_IMAGE_STORAGE, [ExplicitVRLittleEndian])]) as assoc:
            assoc.bind(evt.EVT_PDU_SENT, abort)
            scu.settle_reactor(assoc)
            # No response can come; pynetdicom waits its DIMSE timeout once it has aborted.
            assoc.dimse_timeout = 2
            response = assoc.send_c_store(ds)
            assert abort.aborted.is_set()
            assert "Status" not in response  # no C-STORE response: the association is gone
            assert not assoc.is_established
        node.wait_idle(WAIT)
        with warnings.catch_warnings(record=True) as leaked:
            warnings.simplefilter("always", ResourceWarning)
            gc.collect()
        # The spool file of the aborted C-STORE is closed and removed at once: no leak at all.
        assert [str(w.message) for w in leaked] == []
        assert node.instance_count() == 0
        assert _files_outside_staging(node) == []
        staging = sorted(p for p in (node.blob_folder / ".staging").rglob("*") if p.is_file())
        assert staging == []
        assert scu.echo(node.port) == SUCCESS
        assert [s.Status for s in scu.store(node.port, [ds])] == [SUCCESS]
        assert node.instance_count() == 1


# -- bytes that are not DICOM at all --------------------------------------------------------------


GARBAGE = {
    "random": b"\xff" + random.Random(0x0BAD).randbytes(1023),
    "http": b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "associate-rq-of-noise": b"\x01\x00" + (200).to_bytes(4, "big") + bytes(range(200)),
}


def _send_raw(port: int, data: bytes) -> bytes:
    """Send `data`; what the node answers before its first complete PDU or closing (bounded).

    A DICOM acceptor answers an invalid PDU with an A-ABORT and then waits (ARTIM timer) for
    the peer to close the connection (PS3.8 9.2, AA-1), so the peer closes it here.
    """
    with socket.create_connection((HOST, port), timeout=WAIT) as raw:
        raw.sendall(data)
        answer = b""
        while len(answer) < 6 or len(answer) < 6 + int.from_bytes(answer[2:6], "big"):
            try:
                chunk = raw.recv(4096)
            except ConnectionResetError:
                break
            if not chunk:
                break
            answer += chunk
        return answer


@pytest.fixture(scope="module")
def quick_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """A node that gives up on a silent or garbled peer after one second (acse_timeout):
    pynetdicom holds an association slot for that long after an invalid first PDU."""
    folder = tmp_path_factory.mktemp("garbage-node")
    with running_node(folder, dicom={"acse_timeout": ACSE_TIMEOUT}) as running:
        yield running


@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_garbage_on_the_dicom_port_is_dropped(quick_node: Node, name: str) -> None:
    answer = _send_raw(quick_node.port, GARBAGE[name])
    # An A-ABORT (0x07) or A-ASSOCIATE-RJ (0x03) PDU, or the connection closed.
    assert answer[:1] in (b"", b"\x03", b"\x07")
    assert scu.echo(quick_node.port) == SUCCESS
    quick_node.wait_idle(ACSE_TIMEOUT + WAIT)  # and nothing of it stays behind
