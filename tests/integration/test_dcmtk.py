"""DCMTK's command-line tools against a real openpacs node: the interoperability proof.

echoscu, storescu, getscu and movescu (DCMTK 3.6, Debian package `dcmtk`) talk to a node
started in-process on loopback; the C-MOVE destination is a real `storescp`. C-FIND is in
test_dcmtk_find.py, DICOM over TLS in test_dcmtk_tls.py.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

from openpacs.dicom.levels import Level
from tests.support import scu
from tests.support.corpus import (
    PYDICOM_TEST_FILES,
    pixel_bytes,
    synthetic_ct_series,
    write_part10,
)
from tests.support.dcmtk import run
from tests.support.dcmtk_peer import HOST, StoreScp, free_port, output, storescp
from tests.support.node import Node, running_node

pytestmark = pytest.mark.dcmtk

MOVE_DESTINATION = "STORESCP"


@pytest.fixture(scope="module")
def scp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreScp]:
    with storescp(tmp_path_factory.mktemp("storescp"), free_port(), MOVE_DESTINATION) as peer:
        yield peer


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, scp: StoreScp) -> Iterator[Node]:
    """One node for the tests that only look at the instances they stored themselves."""
    remotes = [{"aet": MOVE_DESTINATION, "host": HOST, "port": scp.port}]
    with running_node(tmp_path_factory.mktemp("node"), dicom={"remotes": remotes}) as node:
        yield node


def make_study(*, ct: int = 3, mr: int = 2) -> list[Dataset]:
    """One study of two small series: CT, then one labelled MR."""
    study_uid = generate_uid()
    datasets = synthetic_ct_series(ct, rows=64, columns=64, study_uid=study_uid)
    return datasets + synthetic_ct_series(
        mr, rows=64, columns=64, study_uid=study_uid, modality="MR", series_number=2, seed=1
    )


def store(node: Node, datasets: list[Dataset]) -> None:
    statuses = scu.store(node.port, datasets)
    assert [int(status.Status) for status in statuses] == [0x0000] * len(datasets)


def pixels_by_uid(datasets: list[Dataset]) -> dict[str, bytes]:
    return {str(ds.SOPInstanceUID): pixel_bytes(ds) for ds in datasets}


def read_folder(folder: Path) -> list[Dataset]:
    return [dcmread(path) for path in sorted(folder.iterdir()) if path.is_file()]


def stored_pixels(node: Node, sop_uid: str) -> bytes:
    instance = node.archive.instance(sop_uid)
    assert instance is not None, f"{sop_uid} is not in the archive"
    with node.archive.open_local(instance) as path:
        return pixel_bytes(path)


def getscu(node: Node, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    out.mkdir()
    return run("getscu", "--study", "--output-directory", str(out), *args, HOST, str(node.port))


# --- C-ECHO -------------------------------------------------------------------------------------


def test_echoscu_succeeds(node: Node) -> None:
    result = run("echoscu", "--call", node.aet, HOST, str(node.port))
    assert result.returncode == 0, output(result)


# --- C-STORE ------------------------------------------------------------------------------------


def test_storescu_stores_a_ct_series(tmp_path: Path) -> None:
    series = synthetic_ct_series(5, rows=64, columns=64)
    files = [write_part10(ds, tmp_path / f"ct{i}.dcm") for i, ds in enumerate(series)]
    with running_node(tmp_path / "node") as node:
        result = run("storescu", "--call", node.aet, HOST, str(node.port), *map(str, files))
        assert result.returncode == 0, output(result)
        assert node.instance_count() == len(series)
        for uid, pixels in pixels_by_uid(series).items():
            instance = node.archive.instance(uid)
            assert instance is not None
            assert instance.study_uid == series[0].StudyInstanceUID
            assert stored_pixels(node, uid) == pixels


def test_storescu_scans_a_folder_and_its_subfolders(tmp_path: Path) -> None:
    top = synthetic_ct_series(3, rows=64, columns=64, patient_id="PID-TOP")
    nested = synthetic_ct_series(2, rows=64, columns=64, patient_id="PID-NESTED", seed=2)
    folder = tmp_path / "scan"
    (folder / "sub").mkdir(parents=True)
    for ds in top:
        write_part10(ds, folder / str(ds.SOPInstanceUID))
    for ds in nested:
        write_part10(ds, folder / "sub" / str(ds.SOPInstanceUID))
    with running_node(tmp_path / "node") as node:
        flat = run("storescu", "--scan-directories", HOST, str(node.port), str(folder))
        assert flat.returncode == 0, output(flat)
        assert node.instance_count() == len(top)
        deep = run("storescu", "+sd", "+r", HOST, str(node.port), str(folder))
        assert deep.returncode == 0, output(deep)
        assert node.instance_count() == len(top) + len(nested)
        for ds in top + nested:
            assert node.archive.instance(str(ds.SOPInstanceUID)) is not None


# rtdose_rle.dcm, the one RLE file of pydicom_valid_files(), encodes every element as UN, which
# storescu refuses ("missing SOP class"); SC_rgb_rle.dcm is another encoding of SC_rgb.dcm.
COMPRESSED = [
    pytest.param("SC_rgb_jpeg_dcmtk.dcm", "--propose-jpeg8", JPEGBaseline8Bit, id="jpeg-baseline"),
    pytest.param("JPEG-lossy.dcm", "--propose-jpeg12", JPEGExtended12Bit, id="jpeg-extended"),
    pytest.param("SC_rgb_jpeg_gdcm.dcm", "--propose-lossless", JPEGLosslessSV1, id="jpeg-lossless"),
    pytest.param("693_J2KI.dcm", "--propose-j2k-lossy", JPEG2000, id="jpeg2000"),
    pytest.param(
        "GDCMJ2K_TextGBR.dcm", "--propose-j2k-lossless", JPEG2000Lossless, id="jpeg2000-lossless"
    ),
    pytest.param(
        "MR_small_jpeg_ls_lossless.dcm", "--propose-jls-lossless", JPEGLSLossless, id="jpeg-ls"
    ),
    pytest.param("SC_rgb_rle.dcm", "--propose-rle", RLELossless, id="rle"),
    pytest.param(
        "image_dfl.dcm", "--propose-deflated", DeflatedExplicitVRLittleEndian, id="deflated"
    ),
]


@pytest.mark.parametrize(("name", "propose", "syntax"), COMPRESSED)
def test_storescu_stores_compressed_files_as_received(
    node: Node, name: str, propose: str, syntax: str
) -> None:
    path = PYDICOM_TEST_FILES / name
    original = dcmread(path)
    assert original.file_meta.TransferSyntaxUID == syntax
    uid = str(original.SOPInstanceUID)
    # SC_rgb_rle.dcm and SC_rgb_jpeg_gdcm.dcm are one instance: each case removes its own.
    try:
        # --required: contexts for this file's SOP class only, in `syntax` and uncompressed.
        result = run("storescu", "--required", propose, HOST, str(node.port), str(path))
        assert result.returncode == 0, output(result)
        instance = node.archive.instance(uid)
        assert instance is not None
        assert instance.transfer_syntax == syntax
        assert stored_pixels(node, uid) == pixel_bytes(original)

        wanted = scu.identifier(
            "IMAGE",
            StudyInstanceUID=original.StudyInstanceUID,
            SeriesInstanceUID=original.SeriesInstanceUID,
            SOPInstanceUID=uid,
        )
        statuses, received = scu.get(node.port, wanted, [(str(original.SOPClassUID), [syntax])])
    finally:
        node.archive.delete(Level.IMAGE, uid)
    assert int(statuses[-1].Status) == 0x0000
    assert received.transfer_syntaxes == [syntax]
    assert pixel_bytes(received.datasets[0]) == pixel_bytes(original)


# --- C-GET --------------------------------------------------------------------------------------


def test_getscu_retrieves_a_study(node: Node, tmp_path: Path) -> None:
    study = make_study()
    store(node, study)
    out = tmp_path / "got"
    result = getscu(
        node, out,
        "-k", "QueryRetrieveLevel=STUDY",
        "-k", f"StudyInstanceUID={study[0].StudyInstanceUID}",
    )  # fmt: skip
    assert result.returncode == 0, output(result)
    got = read_folder(out)
    assert len(got) == len(study)
    assert pixels_by_uid(got) == pixels_by_uid(study)


def test_getscu_retrieves_one_series(node: Node, tmp_path: Path) -> None:
    study = make_study(ct=3, mr=2)
    series_uid = str(study[-1].SeriesInstanceUID)
    series = [ds for ds in study if ds.SeriesInstanceUID == series_uid]
    store(node, study)
    out = tmp_path / "got"
    result = getscu(
        node, out,
        "-k", "QueryRetrieveLevel=SERIES",
        "-k", f"StudyInstanceUID={study[0].StudyInstanceUID}",
        "-k", f"SeriesInstanceUID={series_uid}",
    )  # fmt: skip
    assert result.returncode == 0, output(result)
    got = read_folder(out)
    assert len(got) == len(series) == 2
    assert pixels_by_uid(got) == pixels_by_uid(series)


def test_getscu_receives_the_stored_transfer_syntax(node: Node, tmp_path: Path) -> None:
    """getscu proposes each storage context with Explicit VR Little Endian first (then Big
    Endian, then Implicit); the instances are stored in Explicit VR Little Endian, so the node,
    choosing as acceptor, can send them unchanged (openpacs.dimse.retrieve)."""
    study = make_study(ct=2, mr=1)
    store(node, study)
    out = tmp_path / "got"
    result = getscu(
        node, out, "--prefer-little",
        "-k", "QueryRetrieveLevel=STUDY",
        "-k", f"StudyInstanceUID={study[0].StudyInstanceUID}",
    )  # fmt: skip
    assert result.returncode == 0, output(result)
    got = read_folder(out)
    assert len(got) == len(study)
    assert {str(ds.file_meta.TransferSyntaxUID) for ds in got} == {ExplicitVRLittleEndian}


# --- C-MOVE -------------------------------------------------------------------------------------


def test_movescu_sends_a_study_to_storescp(node: Node, scp: StoreScp) -> None:
    study = make_study()
    store(node, study)
    result = run(
        "movescu", "--study", "--move", MOVE_DESTINATION,
        "-k", "QueryRetrieveLevel=STUDY",
        "-k", f"StudyInstanceUID={study[0].StudyInstanceUID}",
        HOST, str(node.port),
    )  # fmt: skip
    assert result.returncode == 0, output(result)
    arrived = [ds for ds in scp.received() if ds.StudyInstanceUID == study[0].StudyInstanceUID]
    assert len(arrived) == len(study)
    assert pixels_by_uid(arrived) == pixels_by_uid(study)


def test_movescu_to_an_unknown_destination_is_refused(node: Node, scp: StoreScp) -> None:
    study = make_study(ct=1, mr=1)
    store(node, study)
    result = run(
        "movescu", "-S", "-aem", "NOSUCHAE",
        "-k", "QueryRetrieveLevel=STUDY",
        "-k", f"StudyInstanceUID={study[0].StudyInstanceUID}",
        HOST, str(node.port),
    )  # fmt: skip
    # PS3.4 C.4.2.1.5: 0xA801 Refused: Move Destination unknown
    assert result.returncode != 0, output(result)
    assert "MoveDestinationUnknown" in result.stdout + result.stderr, output(result)
    uids = {str(ds.SOPInstanceUID) for ds in study}
    assert not [ds for ds in scp.received() if ds.SOPInstanceUID in uids]


# --- who may associate --------------------------------------------------------------------------


def test_only_listed_calling_ae_titles_may_associate(tmp_path: Path) -> None:
    remotes = [{"aet": "KNOWNSCU", "host": HOST, "port": 11112}]
    (ds,) = synthetic_ct_series(1, rows=64, columns=64)
    path = write_part10(ds, tmp_path / "ct.dcm")
    settings = {"accept_unknown_aets": False, "remotes": remotes}
    with running_node(tmp_path / "node", dicom=settings) as node:
        known = run("echoscu", "--aetitle", "KNOWNSCU", HOST, str(node.port))
        unknown = run("echoscu", "-aet", "STRANGER", HOST, str(node.port))
        stored = run("storescu", "-aet", "STRANGER", HOST, str(node.port), str(path))
        assert node.instance_count() == 0
    assert known.returncode == 0, output(known)
    assert unknown.returncode != 0, output(unknown)
    # PS3.8 9.3.4: rejected-permanent by the service user, calling AE title not recognized
    assert "Calling AE Title Not Recognized" in unknown.stdout + unknown.stderr, output(unknown)
    assert stored.returncode != 0, output(stored)
