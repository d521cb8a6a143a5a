"""One small instance per stored transfer syntax, for tests of what retrieval sends.

Most come from pydicom's test files, given fresh UIDs (one study, a series each) so that
re-encodings of one instance can be stored side by side; the 12-bit JPEG Extended one (process
4) is a synthetic CT compressed by DCMTK's dcmcjpeg, since pydicom's own file of that syntax
decodes with no installed plugin.
"""

from __future__ import annotations

import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import UID, generate_uid
from pynetdicom.dsutils import split_dataset

from tests.support import dcmtk
from tests.support.corpus import PYDICOM_TEST_FILES, synthetic_ct_series, write_part10

# label: a pydicom test file, or None for the dcmcjpeg-made JPEG Extended instance.
SOURCES: dict[str, str | None] = {
    "implicit-le": "MR_small_implicit.dcm",
    "explicit-le": "CT_small.dcm",
    "big-endian-16bit": "MR_small_bigendian.dcm",
    "big-endian-rgb": "SC_rgb_small_odd_big_endian.dcm",
    "deflated": "image_dfl.dcm",
    "rle": "MR_small_RLE.dcm",
    "rle-rgb-16bit": "SC_rgb_rle_16bit.dcm",
    "jpeg-baseline": "SC_rgb_jpeg_dcmtk.dcm",
    "jpeg-extended-12bit": None,
    "jpeg-lossless": "SC_rgb_jpeg_gdcm.dcm",
    "jpeg-ls": "MR_small_jpeg_ls_lossless.dcm",
    "jpeg-2000-lossless": "MR_small_jp2klossless.dcm",
    "jpeg-2000": "JPEG2000.dcm",
}
LOSSY = frozenset({"jpeg-baseline", "jpeg-extended-12bit", "jpeg-2000"})


@dataclass(frozen=True)
class Sample:
    label: str
    path: Path
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    transfer_syntax: str

    def pixels(self) -> np.ndarray:
        """The stored file's pixels as pydicom decodes them (the reference for lossy data)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return dcmread(self.path).pixel_array

    def data_set_bytes(self) -> bytes:
        """The bytes after the file meta: what a faithful retrieval returns unchanged."""
        return self.path.read_bytes()[_data_set_offset(self.path) :]


def _data_set_offset(path: Path) -> int:
    return split_dataset(path)[1]


def samples(folder: Path) -> list[Sample]:
    """Every sample written under `folder`, in one new study."""
    folder.mkdir(parents=True, exist_ok=True)
    study = generate_uid()
    made = []
    for label, source in SOURCES.items():
        path = folder / f"{label}.dcm"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = dcmread(PYDICOM_TEST_FILES / source) if source else _jpeg_extended(folder)
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = generate_uid()
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(path, enforce_file_format=True)
        made.append(
            Sample(
                label,
                path,
                study,
                str(ds.SeriesInstanceUID),
                str(ds.SOPInstanceUID),
                str(ds.SOPClassUID),
                str(ds.file_meta.TransferSyntaxUID),
            )
        )
    return made


def _jpeg_extended(folder: Path) -> Dataset:
    (ct,) = synthetic_ct_series(1, rows=32, columns=32)
    source, target = folder / "ct-12bit.dcm", folder / "ct-12bit-jpeg-extended.dcm"
    write_part10(ct, source)
    result = subprocess.run(
        [dcmtk.require("dcmcjpeg"), "+ee", str(source), str(target)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"dcmcjpeg failed: {result.stderr}")
    ds = dcmread(target)
    assert UID(ds.file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.4.51"
    return ds
