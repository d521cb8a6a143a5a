"""DCMTK's tools over DICOM TLS (PS3.15 B.9, BCP 195) against a node that requires client
certificates.

DCMTK options: `--enable-tls KEY CERT` (+tls) presents a client certificate, `--anonymous-tls`
(+tla) connects without one, `--add-cert-file CA` (+cf) is the CA the server must chain to (the
server certificate is verified by default, --require-peer-cert), `--null-passwd` (-pw) because
the test keys are not encrypted. DCMTK's default profile is the non-downgrading BCP 195 one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.corpus import synthetic_ct_series, write_part10
from tests.support.dcmtk import run
from tests.support.dcmtk_peer import HOST, output
from tests.support.node import Node, running_node
from tests.support.pki import Pki, make_pki

pytestmark = pytest.mark.dcmtk


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_settings(pki: Pki, **extra: object) -> dict[str, object]:
    return {
        "tls_port": 1,  # running_node listens on a free port instead
        "tls_cert": str(pki.server_cert),
        "tls_key": str(pki.server_key),
        "tls_ca": str(pki.ca_cert),
        "tls_require_client_cert": True,
        **extra,
    }


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Node]:
    with running_node(tmp_path_factory.mktemp("node"), dicom=tls_settings(pki)) as node:
        yield node


def with_client_cert(pki: Pki) -> list[str]:
    key, cert = str(pki.client_key), str(pki.client_cert)
    return ["--enable-tls", key, cert, "--null-passwd", "--add-cert-file", str(pki.ca_cert)]


def with_untrusted_cert(pki: Pki) -> list[str]:
    key, cert = str(pki.untrusted_client_key), str(pki.untrusted_client_cert)
    return ["+tls", key, cert, "-pw", "+cf", str(pki.ca_cert)]


def without_cert(pki: Pki) -> list[str]:
    return ["--anonymous-tls", "--add-cert-file", str(pki.ca_cert)]


def echo(node: Node, tls: list[str]) -> tuple[int, str]:
    result = run("echoscu", *tls, "--timeout", "10", HOST, str(node.tls_port), timeout=30)
    return result.returncode, output(result)


def test_echoscu_with_a_client_certificate(node: Node, pki: Pki) -> None:
    status, said = echo(node, with_client_cert(pki))
    assert status == 0, said


def test_storescu_with_a_client_certificate(node: Node, pki: Pki, tmp_path: Path) -> None:
    series = synthetic_ct_series(3, rows=64, columns=64)
    files = [str(write_part10(ds, tmp_path / f"ct{i}.dcm")) for i, ds in enumerate(series)]
    before = node.instance_count()
    result = run("storescu", *with_client_cert(pki), HOST, str(node.tls_port), *files)
    assert result.returncode == 0, output(result)
    assert node.instance_count() == before + len(series)
    for ds in series:
        assert node.archive.instance(str(ds.SOPInstanceUID)) is not None


@pytest.mark.parametrize("tls", [without_cert, with_untrusted_cert], ids=["none", "untrusted"])
def test_peers_without_a_trusted_certificate_are_refused(
    node: Node, pki: Pki, tls: Callable[[Pki], list[str]]
) -> None:
    status, said = echo(node, tls(pki))
    assert status != 0, said
    # the node goes on serving, over TLS and in the clear
    status, said = echo(node, with_client_cert(pki))
    assert status == 0, said
    plain = run("echoscu", HOST, str(node.port))
    assert plain.returncode == 0, output(plain)


def test_storescu_without_a_client_certificate_stores_nothing(
    node: Node, pki: Pki, tmp_path: Path
) -> None:
    (ds,) = synthetic_ct_series(1, rows=64, columns=64)
    path = write_part10(ds, tmp_path / "ct.dcm")
    result = run("storescu", *without_cert(pki), HOST, str(node.tls_port), str(path))
    assert result.returncode != 0, output(result)
    assert node.archive.instance(str(ds.SOPInstanceUID)) is None


def test_plain_dicom_on_the_tls_port_is_refused(node: Node) -> None:
    result = run("echoscu", "--timeout", "10", HOST, str(node.tls_port), timeout=30)
    assert result.returncode != 0, output(result)


def test_refused_tls_peers_do_not_hold_association_slots(tmp_path: Path, pki: Pki) -> None:
    """A peer whose handshake failed never sent an A-ASSOCIATE-RQ: it must not count against
    max_associations, or a few misconfigured clients lock every peer out."""
    settings = tls_settings(pki, max_associations=2, acse_timeout=30)
    with running_node(tmp_path / "node", dicom=settings) as node:
        for _ in range(2):
            status, said = echo(node, without_cert(pki))
            assert status != 0, said
        status, said = echo(node, with_client_cert(pki))
    assert status == 0, said
