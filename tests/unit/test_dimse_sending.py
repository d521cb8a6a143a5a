"""Where a stored file's data set starts (`dimse.sending.dataset_offset`): what C-GET sends
straight from the file."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from openpacs.dimse.sending import dataset_offset
from openpacs.errors import OpenPacsError

BODY = b"\x08\x00\x18\x00UI\x04\x001.2\x00"  # (0008,0018) UI "1.2"


def _part10(tmp_path: Path, *, group_length: bool, private_meta: bool = False) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = generate_uid()
    if private_meta:
        meta.PrivateInformationCreatorUID = generate_uid()
        meta.PrivateInformation = b"\x01" * 300  # OB: a long-VR element
    out = BytesIO()
    write_file_meta_info(out, meta, enforce_standard=group_length)
    if not group_length:
        assert out.getvalue()[:4] != b"\x02\x00\x00\x00"
    path = tmp_path / "x.dcm"
    path.write_bytes(b"\0" * 128 + b"DICM" + out.getvalue() + BODY)
    return path


@pytest.mark.parametrize("group_length", [True, False])
@pytest.mark.parametrize("private_meta", [False, True])
def test_the_data_set_follows_the_meta_group_with_or_without_its_length(
    tmp_path: Path, group_length: bool, private_meta: bool
) -> None:
    path = _part10(tmp_path, group_length=group_length, private_meta=private_meta)
    offset = dataset_offset(path)
    assert path.read_bytes()[offset:] == BODY


def test_not_a_part10_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "y.dcm"
    path.write_bytes(b"\0" * 200)
    with pytest.raises(OpenPacsError, match="not a Part 10 file"):
        dataset_offset(path)


def test_a_meta_group_cut_short_is_refused(tmp_path: Path) -> None:
    whole = _part10(tmp_path, group_length=False, private_meta=True).read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(whole[: 132 + 40 + 10])  # inside the OB element's value
    with pytest.raises(OpenPacsError, match="no readable file meta group"):
        dataset_offset(path)


def test_the_data_set_may_be_empty(tmp_path: Path) -> None:
    whole = _part10(tmp_path, group_length=True).read_bytes()
    path = tmp_path / "meta-only.dcm"
    path.write_bytes(whole[: -len(BODY)])
    assert dataset_offset(path) == len(whole) - len(BODY)
