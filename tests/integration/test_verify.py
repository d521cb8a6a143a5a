"""`openpacs verify`: orphans, missing blobs, size and checksum mismatches, and repair."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from openpacs.archive.service import Archive
from openpacs.archive.verify import verify
from openpacs.compose import build_archive
from openpacs.config import load_settings
from tests.support import corpus
from tests.support.blobs import holds, put
from tests.support.node import write_config


def _archive_with(tmp_path: Path, count: int) -> tuple[Archive, Path, list[str]]:
    config = write_config(tmp_path, {})
    archive = build_archive(load_settings(config, environ={}))
    uids = []
    for number, dataset in enumerate(corpus.synthetic_ct_series(count, rows=16, columns=16)):
        archive.store_file(corpus.write_part10(dataset, tmp_path / f"{number}.dcm"))
        uids.append(str(dataset.SOPInstanceUID))
    return archive, config, uids


def _blob_path(archive: Archive, tmp_path: Path, sop_uid: str) -> Path:
    instance = archive.instance(sop_uid)
    assert instance is not None
    return tmp_path / "blobs" / instance.blob_key


def test_a_consistent_archive_is_clean(tmp_path: Path) -> None:
    archive, _, _ = _archive_with(tmp_path, 3)
    try:
        report = verify(archive, checksums=True)
        assert report.clean
        assert (report.instances, report.blobs) == (3, 3)
    finally:
        archive.close()


def test_problems_are_found_and_repaired(tmp_path: Path) -> None:
    archive, _, uids = _archive_with(tmp_path, 4)
    try:
        put(archive.store, "aa/bb/orphan.dcm", b"left by a crash")
        _blob_path(archive, tmp_path, uids[0]).unlink()
        corrupt = _blob_path(archive, tmp_path, uids[1])
        data = bytearray(corrupt.read_bytes())
        data[-1] ^= 0xFF
        corrupt.write_bytes(bytes(data))
        truncated = _blob_path(archive, tmp_path, uids[2])
        truncated.write_bytes(truncated.read_bytes()[:-10])

        young = verify(archive, checksums=True)
        assert young.orphan_blobs == []  # too young to be called an orphan
        assert young.young_orphans == 1

        report = verify(archive, checksums=True, min_orphan_age=0)
        assert report.orphan_blobs == ["aa/bb/orphan.dcm"]
        assert report.missing_blobs == [uids[0]]
        assert report.checksum_mismatches == [uids[1]]
        assert report.size_mismatches == [uids[2]]
        assert not report.clean

        repaired = verify(archive, repair=True, min_orphan_age=0)
        assert len(repaired.repaired) == 2
        assert not holds(archive.store, "aa/bb/orphan.dcm")
        assert archive.instance(uids[0]) is None
        after = verify(archive, checksums=True, min_orphan_age=0)
        assert after.orphan_blobs == after.missing_blobs == []
        assert after.checksum_mismatches == [uids[1]]  # reported, never "repaired"
    finally:
        archive.close()


def test_the_command_exits_1_on_problems_and_0_when_clean(tmp_path: Path) -> None:
    archive, config, uids = _archive_with(tmp_path, 2)
    _blob_path(archive, tmp_path, uids[0]).unlink()
    archive.close()
    command = [sys.executable, "-m", "openpacs", "verify", "--config", str(config)]
    found = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert found.returncode == 1, found.stderr
    assert "missing blobs (indexed, not stored): 1" in found.stdout
    repaired = subprocess.run(
        [*command, "--repair"], capture_output=True, text=True, timeout=60, check=False
    )
    assert repaired.returncode == 0, repaired.stderr
    clean = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert clean.returncode == 0, clean.stdout
