"""`openpacs export`: what a query selects, as a DICOMDIR media set in a folder or a ZIP,
read back by DCMTK (`dcmdump +sd`, `dcmmkdir --append`) and through the DICOMDIR's records, on every
backend; bad keys and occupied folders are refused before anything is written."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from pydicom import dcmread

from openpacs.compose import build_archive
from openpacs.config import load_settings
from openpacs.dicom.media import referenced_files
from tests.support import corpus
from tests.support.backends import Backend
from tests.support.dcmtk import dcmtk_tool
from tests.support.node import write_config
from tests.support.query_archive import archive_datasets


def _archive(tmp_path: Path, backend: Backend) -> tuple[Path, dict[str, bytes]]:
    """A config whose archive holds the known archive; the pixel data of each instance."""
    config = write_config(tmp_path, backend.sections(tmp_path))
    archive = build_archive(load_settings(config, environ={}))
    pixels = {}
    try:
        _, datasets = archive_datasets()
        for number, dataset in enumerate(datasets):
            archive.store_file(corpus.write_part10(dataset, tmp_path / f"{number}.dcm"))
            pixels[str(dataset.SOPInstanceUID)] = dataset.PixelData
    finally:
        archive.close()
    return config, pixels


def _export(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "openpacs", "export", "--config", str(config), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def _media_uids(folder: Path) -> dict[str, bytes]:
    """SOP Instance UID -> pixel data of each instance the DICOMDIR references."""
    found = {}
    for path in referenced_files(folder / "DICOMDIR"):
        dataset = dcmread(path)
        found[str(dataset.SOPInstanceUID)] = dataset.PixelData
    return found


def test_a_query_exported_as_a_media_set_dcmtk_reads(tmp_path: Path, backend: Backend) -> None:
    config, pixels = _archive(tmp_path, backend)
    media = tmp_path / "media"
    done = _export(config, "-k", "PatientID=QP-A", "-k", "Modality=CT", "--to", str(media))
    assert done.returncode == 0, done.stderr
    assert "exported 3 instances" in done.stdout
    exported = _media_uids(media)
    assert len(exported) == 3
    assert all(pixels[uid] == data for uid, data in exported.items())

    dcmdump = dcmtk_tool("dcmdump")
    dcmmkdir = dcmtk_tool("dcmmkdir")
    assert dcmdump is not None
    assert dcmmkdir is not None
    dumped = subprocess.run(
        [dcmdump, "+sd", str(media)], capture_output=True, text=True, timeout=60, check=False
    )
    assert dumped.returncode == 0, dumped.stderr
    for uid in exported:
        assert uid in dumped.stdout
    assert dumped.stdout.count("(0004,1430) CS [IMAGE]") == 3  # three image records
    # dcmmkdir reads the DICOMDIR, finds a record for every file and accepts the files in
    # the General Purpose profile.
    files = sorted(str(p.relative_to(media)) for p in media.rglob("IM*"))
    appended = subprocess.run(
        [dcmmkdir, "--append", "-Pgp", *files],
        cwd=media, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert appended.returncode == 0, appended.stderr
    assert appended.stderr.count("directory record for this SOP instance already exists") == 3


def test_a_date_range_exported_as_a_zip(tmp_path: Path, backend: Backend) -> None:
    config, pixels = _archive(tmp_path, backend)
    bundle = tmp_path / "out.zip"
    done = _export(config, "-k", "StudyDate=20230101-20241231", "--zip", str(bundle))
    assert done.returncode == 0, done.stderr
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(bundle) as archive:
        assert "DICOMDIR" in archive.namelist()
        archive.extractall(unpacked)
    exported = _media_uids(unpacked)
    assert len(exported) == 8  # A1 (4), A2 (2), B1 (2); C1 is from 2022
    assert all(pixels[uid] == data for uid, data in exported.items())


def test_bad_requests_write_nothing(tmp_path: Path) -> None:
    config, _ = _archive(tmp_path, Backend("sqlite-folder"))
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine", encoding="utf-8")
    refused = _export(config, "--to", str(occupied))
    assert refused.returncode == 2
    assert "is not empty" in refused.stderr
    assert [p.name for p in occupied.iterdir()] == ["keep.txt"]

    unknown = _export(config, "-k", "InstitutionName=X", "--zip", str(tmp_path / "x.zip"))
    assert unknown.returncode == 2
    assert "KEYWORD=VALUE" in unknown.stderr
    both = _export(config, "--to", str(tmp_path / "a"), "--zip", str(tmp_path / "b.zip"))
    assert both.returncode == 2
    assert not (tmp_path / "x.zip").exists()
    assert not (tmp_path / "b.zip").exists()
