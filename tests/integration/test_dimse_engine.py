"""The DICOM upper layer engine as an acceptor, against DCMTK and pynetdicom peers: association,
P-DATA both ways, release, abort, TLS, timeouts and the association limit."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, build_role, evt
from pynetdicom.pdu_primitives import (
    AsynchronousOperationsWindowNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityNegotiation,
)
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet

from openpacs.dimse.association import FileSlice
from tests.support.corpus import synthetic_ct_series, write_part10
from tests.support.dcmtk import run
from tests.support.dcmtk_peer import HOST, output
from tests.support.dimse_engine import EchoStoreHandler, Served, engine, pynetdicom_ae
from tests.support.pki import Pki, make_pki


@pytest.mark.dcmtk
def test_echoscu_associates_echoes_and_releases() -> None:
    with engine() as node:
        result = run("echoscu", "-aec", "ENGINE", "--timeout", "10", HOST, str(node.port))
        assert result.returncode == 0, output(result)
        assert node.wait_for("accepted")
        node.wait_for("released")


@pytest.mark.dcmtk
def test_storescu_sends_ct_in_many_pdus(tmp_path: Path) -> None:
    series = synthetic_ct_series(2, rows=256, columns=256)
    files = [str(write_part10(ds, tmp_path / f"ct{i}.dcm")) for i, ds in enumerate(series)]
    with engine() as node:
        result = run("storescu", "-aec", "ENGINE", "-xi", HOST, str(node.port), *files)
        assert result.returncode == 0, output(result)
        for ds in series:
            assert len(EchoStoreHandler.stored[str(ds.SOPInstanceUID)]) > 256 * 256 * 2


def test_pynetdicom_echo_store_release_and_abort() -> None:
    ds = synthetic_ct_series(1, rows=128, columns=128)[0]
    with engine() as node:
        assoc = pynetdicom_ae(max_pdu=8192).associate(HOST, node.port, ae_title="ENGINE")
        assert assoc.is_established
        assert assoc.acceptor.maximum_length == 16384
        assert assoc.send_c_echo().Status == 0
        assert assoc.send_c_store(ds).Status == 0
        assert EchoStoreHandler.stored[str(ds.SOPInstanceUID)]
        assoc.release()
        node.wait_for("released")
        again = pynetdicom_ae().associate(HOST, node.port, ae_title="ENGINE")
        assert again.is_established
        again.abort()
        assert "by peer" in node.wait_for("aborted")


def test_association_limit_rejects_transient_local_limit() -> None:
    with engine(max_associations=1) as node:
        first = pynetdicom_ae().associate(HOST, node.port)
        assert first.is_established
        second = pynetdicom_ae().associate(HOST, node.port)
        assert second.is_rejected
        rejection = second.acceptor.primitive
        assert (rejection.result, rejection.result_source, rejection.diagnostic) == (2, 3, 2)
        first.release()
        node.wait_for("released")
        third = pynetdicom_ae().associate(HOST, node.port)
        assert third.is_established
        third.release()


def test_idle_association_is_aborted_after_network_timeout() -> None:
    with engine(network_timeout=0.5) as node:
        assoc = pynetdicom_ae().associate(HOST, node.port)
        assert assoc.is_established
        deadline = time.monotonic() + 10
        while assoc.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert assoc.is_aborted
        node.wait_for("aborted")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.mark.dcmtk
def test_echoscu_over_tls_with_a_client_certificate(pki: Pki) -> None:
    tls: dict[str, object] = {
        "port": 0,
        "tls_port": 1,
        "tls_cert": str(pki.server_cert),
        "tls_key": str(pki.server_key),
        "tls_ca": str(pki.ca_cert),
        "tls_require_client_cert": True,
    }
    client = ["+tls", str(pki.client_key), str(pki.client_cert), "-pw", "+cf", str(pki.ca_cert)]
    with engine(acse_timeout=0.5, **tls) as node:
        port = str(node.listener.port_of("dicom-tls"))
        result = run("echoscu", *client, "--timeout", "10", HOST, port, timeout=30)
        assert result.returncode == 0, output(result)
        node.wait_for("released")
        certificate = node.associations[0].peer_certificate
        assert certificate is not None
        assert ("commonName", "TESTCLIENT") in [
            pair for rdn in certificate["subject"] for pair in rdn
        ]
        with socket.create_connection((HOST, int(port)), timeout=5) as silent:
            assert silent.recv(1) == b""  # no handshake within acse_timeout: dropped
        anonymous = ["--anonymous-tls", "--add-cert-file", str(pki.ca_cert)]
        refused = run("echoscu", *anonymous, "--timeout", "5", HOST, port, timeout=30)
        assert refused.returncode != 0


def _all_done(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def test_dataset_is_what_the_peer_encoded() -> None:
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, "1.2.3.99"
    ds.PatientName = "Engine^Test"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    with engine() as node:
        assoc = pynetdicom_ae().associate(HOST, node.port)
        assert assoc.send_c_store(ds).Status == 0
        assoc.release()
        stored = EchoStoreHandler.stored["1.2.3.99"]
        assert b"Engine^Test" in stored
        assert _all_done(lambda: any(e == "released" for e, _ in node.events), 5)


def test_data_sets_spool_into_the_handlers_sink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(EchoStoreHandler, "spool", tmp_path)
    ds = synthetic_ct_series(1, rows=256, columns=256)[0]
    with engine() as node:
        assoc = pynetdicom_ae(max_pdu=4096).associate(HOST, node.port)
        assert assoc.send_c_store(ds).Status == 0
        assoc.release()
    spooled = tmp_path / str(ds.SOPInstanceUID)
    assert spooled.read_bytes() == EchoStoreHandler.stored[str(ds.SOPInstanceUID)]
    assert spooled.stat().st_size > 256 * 256 * 2


def _dataset_slice(path: Path) -> FileSlice:
    """The data set of a Part 10 file: after the preamble, DICM and the file meta group."""
    meta = dcmread(path, stop_before_pixels=True).file_meta
    offset = 128 + 4 + 12 + int(meta.FileMetaInformationGroupLength)
    return FileSlice(path, offset, path.stat().st_size - offset)


@pytest.mark.parametrize("peer_max_pdu", [4096, 0])
def test_c_get_sends_the_stored_file_slice_in_peer_sized_pdus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, peer_max_pdu: int
) -> None:
    ds = synthetic_ct_series(1, rows=256, columns=256)[0]
    path = write_part10(ds, tmp_path / "ct.dcm")
    part = _dataset_slice(path)
    served = Served(part, CTImageStorage, str(ds.SOPInstanceUID))
    monkeypatch.setattr(EchoStoreHandler, "served", served)
    received: list[Dataset] = []

    def on_store(event: Any) -> int:
        received.append(event.dataset)
        return 0

    ae = AE(ae_title="GETSCU")
    ae.maximum_pdu_size = peer_max_pdu
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    role = build_role(CTImageStorage, scp_role=True)
    with engine() as node:
        assoc = ae.associate(
            HOST, node.port, ext_neg=[role], evt_handlers=[(evt.EVT_C_STORE, on_store)]
        )
        assert assoc.is_established
        query = Dataset()
        query.QueryRetrieveLevel = "IMAGE"
        query.SOPInstanceUID = ds.SOPInstanceUID
        statuses = [
            status.Status
            for status, _ in assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet)
        ]
        assoc.release()
    assert statuses == [0]
    assert len(received) == 1
    assert received[0].PixelData == ds.PixelData
    assert received[0].SOPInstanceUID == ds.SOPInstanceUID


def test_stop_lets_running_associations_finish_then_aborts_them() -> None:
    with engine(grace=0.3) as node:
        assoc = pynetdicom_ae().associate(HOST, node.port)
        assert assoc.is_established
        port = node.port
        started = time.monotonic()
        node.listener.stop(grace_seconds=0.3)
        assert _all_done(lambda: assoc.is_aborted, 5)
        assert time.monotonic() - started < 5
        refused = pynetdicom_ae().associate(HOST, port)
        assert not refused.is_established


def test_workers_share_a_port() -> None:
    with engine(share_ports=True) as first, engine(port=first.port, share_ports=True) as second:
        assert second.port == first.port
        for _ in range(4):
            assoc = pynetdicom_ae().associate(HOST, first.port)
            assert assoc.send_c_echo().Status == 0
            assoc.release()


def test_user_identity_and_extended_negotiation_from_pynetdicom() -> None:
    identity = UserIdentityNegotiation()
    identity.user_identity_type = 2
    identity.primary_field = b"alice"
    identity.secondary_field = b"secret"
    identity.positive_response_requested = True
    extended = SOPClassExtendedNegotiation()
    extended.sop_class_uid = CTImageStorage
    extended.service_class_application_information = b"\x01\x00\x01"
    window = AsynchronousOperationsWindowNegotiation()
    window.maximum_number_operations_invoked = 4
    window.maximum_number_operations_performed = 4
    with engine() as node:
        assoc = pynetdicom_ae().associate(HOST, node.port, ext_neg=[identity, extended, window])
        assert assoc.is_established
        assert assoc.send_c_echo().Status == 0
        assoc.release()
        node.wait_for("released")
        ours = node.associations[-1]
    assert ours.user_identity == (2, b"alice", b"secret")
    assert ours.calling_aet == "PEER"
