"""DICOM peers' permissions (`[[dicom.peers]]`): the permission matrix of calling AEs against
echo, store, find, get and move, asked by real peers over sockets (pynetdicom, and DCMTK's
storescu and echoscu); move destinations; addresses; unknown AEs refused at association;
every refusal audited as denied with its reason."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]

from openpacs.archive.records import AuditFilter
from openpacs.tls import client_context
from tests.support import dcmtk, scu
from tests.support.corpus import store_bytes, synthetic_ct_series, write_part10
from tests.support.node import HOST, Node, running_node
from tests.support.pki import make_pki

NOT_AUTHORIZED = 0x0124
DESTINATION_REFUSED = 0xA801
OPERATIONS = ("echo", "store", "find", "get", "move-self", "move-ws")
ALLOWED = "ok"

PEERS = [
    {"aet": "MODALITY", "allow": ["echo", "store"]},
    {"aet": "READER", "allow": ["echo", "find", "get", "move"]},  # moves only to itself
    {"aet": "ROUTER", "allow": ["move"], "move_destinations": ["WS"]},
    {
        "aet": "PINNED",
        "allow": ["echo", "store", "find", "get", "move"],
        "addresses": ["10.9.9.0/24"],
    },
]
# What each calling AE gets: "ok" or the status it is refused with. WS is a configured remote
# without a [[dicom.peers]] entry: everything, as before peers could be listed.
MATRIX = {
    "MODALITY": {"echo": ALLOWED, "store": ALLOWED, "find": 0x0124, "get": 0x0124,
                 "move-self": 0xA801, "move-ws": 0xA801},
    "READER": {"echo": ALLOWED, "store": 0x0124, "find": ALLOWED, "get": ALLOWED,
               "move-self": ALLOWED, "move-ws": 0xA801},
    "ROUTER": {"echo": 0x0124, "store": 0x0124, "find": 0x0124, "get": 0x0124,
               "move-self": 0xA801, "move-ws": ALLOWED},
    "PINNED": {"echo": 0x0124, "store": 0x0124, "find": 0x0124, "get": 0x0124,
               "move-self": 0xA801, "move-ws": 0xA801},
    "WS": {"echo": ALLOWED, "store": ALLOWED, "find": ALLOWED, "get": ALLOWED,
           "move-self": ALLOWED, "move-ws": ALLOWED},
}  # fmt: skip


@dataclass
class Site:
    node: Node
    study: str
    series: list[Dataset]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("peers")
    series = synthetic_ct_series(2, rows=16, columns=16)
    with (
        scu.storage_scp("WS") as (ws_port, _ws),
        scu.storage_scp("READER") as (reader_port, _reader),
        scu.storage_scp("MODALITY") as (modality_port, _modality),
        scu.storage_scp("ROUTER") as (router_port, _router),
        scu.storage_scp("PINNED") as (pinned_port, _pinned),
    ):
        remotes = [
            {"aet": aet, "host": HOST, "port": port}
            for aet, port in (
                ("WS", ws_port),
                ("READER", reader_port),
                ("MODALITY", modality_port),
                ("ROUTER", router_port),
                ("PINNED", pinned_port),
            )
        ]
        dicom = {"accept_unknown_aets": False, "remotes": remotes, "peers": PEERS}
        with running_node(folder, dicom=dicom) as node:
            for dataset in series:
                assert store_bytes(node.archive, _bytes(dataset)).stored
            yield Site(node, series[0].StudyInstanceUID, series)


def _bytes(dataset: Dataset) -> bytes:
    from tests.support.corpus import to_part10_bytes

    return to_part10_bytes(dataset)


def _ask(site: Site, aet: str, operation: str) -> int:
    port = site.node.port
    study = scu.identifier("STUDY", StudyInstanceUID=site.study)
    if operation == "echo":
        return scu.echo(port, aet=aet)
    if operation == "store":
        new = synthetic_ct_series(1, rows=16, columns=16, patient_id=f"NEW-{aet}")
        return int(scu.store(port, new, aet=aet)[0].Status)
    if operation == "find":
        return int(scu.find(port, study, aet=aet)[1].Status)
    if operation == "get":
        syntaxes = [str(site.series[0].file_meta.TransferSyntaxUID)]
        responses, _received = scu.get(port, study, [(CTImageStorage, syntaxes)], aet=aet)
        return int(responses[-1].Status)
    destination = aet if operation == "move-self" else "WS"
    return int(scu.move(port, study, destination, aet=aet)[-1].Status)


@pytest.mark.parametrize("aet", sorted(MATRIX))
def test_permission_matrix(site: Site, aet: str) -> None:
    got = {}
    for operation in OPERATIONS:
        status = _ask(site, aet, operation)
        got[operation] = ALLOWED if status == 0 else status
    assert got == MATRIX[aet]


def test_refusals_are_audited_with_their_reason(site: Site) -> None:
    assert _ask(site, "MODALITY", "find") == NOT_AUTHORIZED
    assert _ask(site, "READER", "move-ws") == DESTINATION_REFUSED
    site.node.archive.audit.flush()
    _total, events = site.node.archive.audit.search(AuditFilter(outcome="denied", limit=500))
    reasons = {(e.actor, e.action, e.detail) for e in events}
    assert ("MODALITY", "query", "MODALITY may not find") in reasons
    assert ("READER", "send", "READER may not move to WS") in reasons
    assert ("PINNED", "echo", "PINNED may not call from 127.0.0.1") in reasons


def test_an_unknown_ae_cannot_associate_and_is_audited(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="openpacs.dimse"), pytest.raises(ConnectionError):
        scu.echo(site.node.port, aet="STRANGER")
    # The line the deployment's refusal alarm counts (deploy/aws/modules/operations).
    deadline = time.monotonic() + 10
    while not any(
        r.getMessage().startswith("association rejected calling=STRANGER") for r in caplog.records
    ):
        assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
        time.sleep(0.05)
    site.node.archive.audit.flush()
    _total, events = site.node.archive.audit.search(AuditFilter(actor="STRANGER"))
    assert [(e.action, e.outcome) for e in events][:1] == [("associate", "denied")]
    assert "STRANGER" in events[0].detail


def test_dcmtk_peers_get_the_same_answers(site: Site, tmp_path: Path) -> None:
    file = write_part10(synthetic_ct_series(1, rows=16, columns=16)[0], tmp_path / "ct.dcm")
    port = str(site.node.port)
    refused = dcmtk.run(
        "storescu", "-v", "-aet", "READER", "-aec", "OPENPACS", HOST, port, str(file)
    )
    assert refused.returncode != 0
    assert "Status: 0x124" in refused.stderr  # PS3.7 C.4 Refused: Not Authorized
    assert site.node.archive.instance(str(_sop(file))) is None
    stored = dcmtk.run(
        "storescu", "-v", "-aet", "MODALITY", "-aec", "OPENPACS", HOST, port, str(file)
    )
    assert stored.returncode == 0, stored.stderr
    assert "0x124" not in stored.stderr
    assert site.node.archive.instance(str(_sop(file))) is not None
    echo = dcmtk.run("echoscu", "-aet", "STRANGER", "-aec", "OPENPACS", HOST, port)
    assert echo.returncode != 0


def _sop(path: Path) -> str:
    from pydicom import dcmread

    return str(dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def test_a_peer_bound_to_a_client_certificate(tmp_path: Path) -> None:
    """TESTCLIENT's certificate (CN=TESTCLIENT) may act as CT_TLS, over the TLS port only."""
    pki = make_pki(tmp_path / "pki")
    dicom = {
        "tls_port": 4243,
        "tls_cert": str(pki.server_cert),
        "tls_key": str(pki.server_key),
        "tls_ca": str(pki.ca_cert),
        "peers": [
            {"aet": "CT_TLS", "allow": ["echo"], "tls_subject": "TESTCLIENT"},
            {"aet": "OTHER", "allow": ["echo"], "tls_subject": "SOMEONE-ELSE"},
        ],
    }
    with running_node(tmp_path / "node", dicom=dicom) as node:
        context = client_context(ca=pki.ca_cert, cert=pki.client_cert, key=pki.client_key)
        tls_args = (context, "localhost")
        assert scu.echo(node.tls_port, aet="CT_TLS", tls_args=tls_args) == 0
        assert scu.echo(node.tls_port, aet="OTHER", tls_args=tls_args) == NOT_AUTHORIZED
        assert scu.echo(node.port, aet="CT_TLS") == NOT_AUTHORIZED  # no certificate
        anonymous = client_context(ca=pki.ca_cert)  # TLS without a client certificate
        assert scu.echo(node.tls_port, aet="CT_TLS", tls_args=(anonymous, "localhost")) == (
            NOT_AUTHORIZED
        )
        node.archive.audit.flush()
        _total, events = node.archive.audit.search(AuditFilter(actor="OTHER"))
        assert events[0].detail == "OTHER must present the TLS client certificate of SOMEONE-ELSE"
        node.wait_idle(10)
