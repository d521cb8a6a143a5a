"""C-GET and C-MOVE deliver every stored transfer syntax to DCMTK, whatever it proposes.

getscu (C-GET: it proposes the storage contexts) and movescu (C-MOVE to itself: it accepts
the contexts the node proposes) run once per proposal option over one study holding an
instance in each stored syntax (tests/support/syntaxes.py). Each instance must arrive in its
stored syntax when the receiver accepted that, otherwise converted to an uncompressed syntax
it accepted, with the pixels of the stored file (PS3.4 C.4.2.3.1, C.4.3.3.1). A sub-operation
fails with a status only when neither is possible: here, an instance whose compressed pixel
data no installed decoder reads.
"""

from __future__ import annotations

import re
import subprocess
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)

from tests.support import scu
from tests.support.corpus import PYDICOM_TEST_FILES
from tests.support.dcmtk import run
from tests.support.dcmtk_peer import HOST, free_port, output
from tests.support.node import Node, running_node
from tests.support.syntaxes import SOURCES, Sample, samples

pytestmark = pytest.mark.dcmtk

DESTINATION = "MOVESCU"
# DCMTK's proposal options ("default": none given) and the uncompressed syntaxes each makes
# movescu accept as the C-MOVE destination (DCMTK 3.6 movescu --help). getscu proposes its
# storage contexts with Explicit VR Little Endian among them under every option (big endian
# first with +xb; alone with +xi, in DCMTK 3.6.7), and the node, as acceptor, takes it.
OPTIONS = {
    "default": {ExplicitVRLittleEndian, ExplicitVRBigEndian, ImplicitVRLittleEndian},
    "+x=": {ExplicitVRLittleEndian, ExplicitVRBigEndian, ImplicitVRLittleEndian},
    "+xe": {ExplicitVRLittleEndian, ExplicitVRBigEndian, ImplicitVRLittleEndian},
    "+xb": {ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian},
    "+xi": {ImplicitVRLittleEndian},
}
UNDECODABLE = "undecodable-jpeg"  # pydicom's JPEG-lossy.dcm: no installed plugin decodes it


@dataclass(frozen=True)
class Stored:
    node: Node
    study_uid: str
    samples: dict[str, Sample]
    undecodable_uid: str
    move_port: int
    folder: Path


@dataclass(frozen=True)
class Retrieved:
    result: subprocess.CompletedProcess[str]
    by_uid: dict[str, Dataset]


def _undecodable(folder: Path, study_uid: str) -> tuple[Path, Dataset]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = dcmread(PYDICOM_TEST_FILES / "JPEG-lossy.dcm")
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    path = folder / "undecodable.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path, ds


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stored]:
    folder = tmp_path_factory.mktemp("retrieve-syntaxes")
    made = {sample.label: sample for sample in samples(folder / "samples")}
    [study] = {sample.study_uid for sample in made.values()}
    bad_path, bad = _undecodable(folder, study)
    move_port = free_port()
    remote = {"aet": DESTINATION, "host": HOST, "port": move_port}
    # One association to the destination: movescu serves its sub-associations one at a time,
    # and this test is about syntaxes (test_dimse_move_associations covers several).
    dicom = {"remotes": [remote], "move_associations": 1}
    with running_node(folder / "node", dicom=dicom) as node:
        items = [(s.path, s.sop_class_uid, s.transfer_syntax) for s in made.values()]
        items.append((bad_path, str(bad.SOPClassUID), str(bad.file_meta.TransferSyntaxUID)))
        contexts = sorted({(c, (t,)) for _, c, t in items})
        with scu.association(node.port, contexts) as assoc:
            for path, _, _ in items:
                assert assoc.send_c_store(path).Status == 0x0000, path
        yield Stored(node, study, made, str(bad.SOPInstanceUID), move_port, folder)


def _option_args(option: str) -> list[str]:
    return [] if option == "default" else [option]


def _received(folder: Path) -> dict[str, Dataset]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = [dcmread(path) for path in sorted(folder.iterdir()) if path.is_file()]
    return {str(ds.SOPInstanceUID): ds for ds in found}


@pytest.fixture(scope="module")
def retrievals(stored: Stored) -> dict[tuple[str, str], Retrieved]:
    """getscu and movescu runs by (tool, option): each runs once, for all the table's rows."""
    return {}


def _retrieve(
    stored: Stored, retrievals: dict[tuple[str, str], Retrieved], tool: str, option: str
) -> Retrieved:
    if (tool, option) not in retrievals:
        retrievals[tool, option] = _run(stored, tool, option)
    return retrievals[tool, option]


def _run(stored: Stored, tool: str, option: str) -> Retrieved:
    out = stored.folder / f"{tool}{option.replace('+', '_').replace('=', 'eq')}"
    out.mkdir()
    common = ["-v", "--study", "-k", "QueryRetrieveLevel=STUDY", "-k"]
    common += [f"StudyInstanceUID={stored.study_uid}", "-od", str(out), *_option_args(option)]
    if tool == "getscu":
        result = run("getscu", *common, HOST, str(stored.node.port), timeout=120)
    else:
        move = ["-aet", DESTINATION, "--move", DESTINATION, "--port", str(stored.move_port)]
        result = run("movescu", *move, *common, HOST, str(stored.node.port), timeout=120)
    stored.node.wait_idle(30)
    return Retrieved(result, _received(out))


def _expected_syntaxes(tool: str, option: str, stored_syntax: str) -> set[str]:
    """movescu is offered the stored syntax on a context of its own and takes it when its
    option accepts it, else an uncompressed fallback context in the syntax it prefers;
    getscu's contexts are accepted in Explicit VR Little Endian. What was not accepted as
    stored is converted to an accepted syntax."""
    if tool == "getscu":
        return {ExplicitVRLittleEndian}
    accepted = OPTIONS[option]
    return {stored_syntax} if stored_syntax in accepted else accepted


@pytest.mark.parametrize("label", SOURCES)
@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("tool", ["getscu", "movescu"])
def test_instance_arrives_as_stored_or_converted(
    stored: Stored,
    retrievals: dict[tuple[str, str], Retrieved],
    tool: str,
    option: str,
    label: str,
) -> None:
    retrieved = _retrieve(stored, retrievals, tool, option)
    sample = stored.samples[label]
    assert sample.sop_uid in retrieved.by_uid, output(retrieved.result)
    received = retrieved.by_uid[sample.sop_uid]
    syntax = str(received.file_meta.TransferSyntaxUID)
    assert syntax in _expected_syntaxes(tool, option, sample.transfer_syntax)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pixels = received.pixel_array
    np.testing.assert_array_equal(pixels, sample.pixels(), err_msg=f"{tool} {option} {label}")


@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("tool", ["getscu", "movescu"])
def test_only_what_cannot_be_converted_fails(
    stored: Stored, retrievals: dict[tuple[str, str], Retrieved], tool: str, option: str
) -> None:
    retrieved = _retrieve(stored, retrievals, tool, option)
    assert stored.undecodable_uid not in retrieved.by_uid
    assert len(retrieved.by_uid) == len(stored.samples), output(retrieved.result)
    said = retrieved.result.stdout + retrieved.result.stderr
    if tool == "getscu":
        failed = re.findall(r"Number of Failed Suboperations\s*:\s*(\d+)", said)
        assert failed[-1:] == ["1"], output(retrieved.result)
    else:  # PS3.4 C.4.2.1.5: B000, sub-operations complete, one or more failures
        assert "SubOperationsCompleteOneOrMoreFailures" in said, output(retrieved.result)


def test_a_receiver_of_big_endian_only_gets_everything_in_big_endian(stored: Stored) -> None:
    """Nothing DCMTK proposes, but the rule holds: converted to the one syntax accepted."""
    classes = sorted({sample.sop_class_uid for sample in stored.samples.values()})
    responses, received = scu.get(
        stored.node.port,
        scu.identifier("STUDY", StudyInstanceUID=stored.study_uid),
        [(sop_class, [ExplicitVRBigEndian]) for sop_class in classes],
    )
    by_uid = {str(ds.SOPInstanceUID): ds for ds in received.datasets}
    for sample in stored.samples.values():
        ds = by_uid[sample.sop_uid]
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRBigEndian, sample.label
        np.testing.assert_array_equal(ds.pixel_array, sample.pixels(), err_msg=sample.label)
    assert responses[-1].NumberOfFailedSuboperations == 1  # the undecodable instance
