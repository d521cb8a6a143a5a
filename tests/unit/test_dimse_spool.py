"""The C-STORE spool (`openpacs.dimse.spool`): the file meta written by hand is pydicom's, and a
staging file holds every byte, with its size and SHA-256, once finished."""

from __future__ import annotations

import hashlib
from io import BytesIO
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom import dcmread
from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import write_file_meta_info

from openpacs.dimse.negotiation import IMPLEMENTATION_VERSION
from openpacs.dimse.spool import IMPLEMENTATION_CLASS_UID, StagingFile, part10_header

uids = st.from_regex(r"[1-9][0-9]{0,8}(\.[1-9][0-9]{0,8}){1,6}", fullmatch=True)
aets = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", max_size=20)


def _pydicom_header(sop_class: str, sop_uid: str, syntax: str, aet: str) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = syntax
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION
    if aet:
        meta.SourceApplicationEntityTitle = aet[:16]
    buffer = BytesIO()
    buffer.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(buffer, meta, enforce_standard=True)
    return buffer.getvalue()


@settings(max_examples=200, deadline=None)
@given(sop_class=uids, sop_uid=uids, syntax=uids, aet=aets)
def test_the_file_meta_is_the_one_pydicom_writes(
    sop_class: str, sop_uid: str, syntax: str, aet: str
) -> None:
    assert part10_header(sop_class, sop_uid, syntax, aet) == _pydicom_header(
        sop_class, sop_uid, syntax, aet
    )


@pytest.mark.parametrize("size", [0, 10, 256 * 1024 - 200, 256 * 1024, 3 * 256 * 1024 + 17])
def test_a_finished_staging_file_holds_every_byte(tmp_path: Path, size: int) -> None:
    header = part10_header("1.2.840.10008.5.1.4.1.1.7", "1.2.3.4", "1.2.840.10008.1.2.1", "SCU")
    body = bytes(range(256)) * (size // 256) + b"\x07" * (size % 256)
    sink = StagingFile(tmp_path, header)
    for start in range(0, len(body), 16384):
        sink.write(memoryview(body[start : start + 16384]))
    path = sink.close()
    assert path.parent == tmp_path
    sink.finish()
    written = path.read_bytes()
    assert written == header + body
    assert (sink.size, sink.sha256) == (len(written), hashlib.sha256(written).hexdigest())
    assert str(dcmread(path, stop_before_pixels=True).file_meta.MediaStorageSOPInstanceUID) == (
        "1.2.3.4"
    )


def test_a_large_data_set_is_on_disk_while_it_arrives(tmp_path: Path) -> None:
    sink = StagingFile(tmp_path, b"H" * 200)
    sink.write(memoryview(b"x" * 300_000))
    assert sink.path.stat().st_size == 300_200  # before close: a crash leaves it for the sweep
    sink.discard()
    assert list(tmp_path.iterdir()) == []


def test_a_small_discarded_data_set_leaves_nothing(tmp_path: Path) -> None:
    sink = StagingFile(tmp_path, b"H" * 200)
    sink.write(memoryview(b"x" * 1000))
    sink.close()
    sink.discard()
    assert list(tmp_path.iterdir()) == []
