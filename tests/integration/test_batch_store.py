"""`Archive.store_files` (bulk imports): each file of a batch stored, refused or kept out by
the duplicates policy exactly as `store_file` would, on every backend, with nothing left
behind: no blob without its row, no handed-over file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from openpacs.archive.service import Archive, StoreOutcome
from openpacs.archive.verify import verify
from openpacs.compose import build_archive
from openpacs.config import load_settings
from openpacs.errors import DuplicateInstance, InvalidInstance
from tests.support import corpus
from tests.support.backends import Backend
from tests.support.node import write_config


def _archive(folder: Path, backend: Backend, duplicates: str = "keep") -> Archive:
    sections = {**backend.sections(folder), "archive": {"duplicates": duplicates}}
    return build_archive(load_settings(write_config(folder, sections), environ={}))


@pytest.fixture
def archive(tmp_path: Path, backend: Backend) -> Iterator[Archive]:
    archive = _archive(tmp_path, backend)
    yield archive
    archive.close()


def _write(folder: Path, dataset: Dataset, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return corpus.write_part10(dataset, folder / name)


def _clean(archive: Archive) -> tuple[int, int]:
    report = verify(archive, checksums=True)
    assert report.clean, report
    return report.instances, report.blobs


def test_each_file_of_a_batch_is_stored_refused_or_skipped_alone(
    archive: Archive, tmp_path: Path
) -> None:
    first, second, third = corpus.synthetic_ct_series(3, rows=16, columns=16)
    source = tmp_path / "in"
    new = _write(source, first, "new.dcm")
    copy = _write(source, first, "copy.dcm")  # the same instance again, in the same batch
    stored_before = _write(source, second, "before.dcm")
    assert archive.store_file(stored_before).stored
    also_new = _write(source, third, "also-new.dcm")
    cut = source / "cut.dcm"
    cut.write_bytes(also_new.read_bytes()[:-40])

    outcomes = archive.store_files([new, cut, copy, stored_before, also_new], skip_stored=True)

    assert len(outcomes) == 5
    stored, truncated, duplicate, again, other = outcomes
    assert isinstance(stored, StoreOutcome)
    assert stored.stored
    assert stored.sop_uid == first.SOPInstanceUID
    assert isinstance(truncated, InvalidInstance)
    assert isinstance(duplicate, StoreOutcome)
    assert not duplicate.stored
    assert not duplicate.already_stored
    assert isinstance(again, StoreOutcome)
    assert again.already_stored
    assert isinstance(other, StoreOutcome)
    assert other.stored
    assert _clean(archive) == (3, 3)  # the duplicate's blob went with it
    assert all(path.exists() for path in (new, cut, copy, stored_before, also_new))
    instance = archive.instance(first.SOPInstanceUID)
    assert instance is not None
    assert instance.blob_size == new.stat().st_size


def test_the_reject_policy_refuses_the_second_copy_alone(tmp_path: Path, backend: Backend) -> None:
    archive = _archive(tmp_path, backend, duplicates="reject")
    try:
        dataset, other = corpus.synthetic_ct_series(2, rows=16, columns=16)
        files = [
            _write(tmp_path / "a", dataset, "one.dcm"),
            _write(tmp_path / "b", dataset, "one.dcm"),
            _write(tmp_path / "a", other, "two.dcm"),
        ]
        first, refused, last = archive.store_files(files)
        assert isinstance(first, StoreOutcome)
        assert first.stored
        assert isinstance(refused, DuplicateInstance)
        assert isinstance(last, StoreOutcome)
        assert last.stored
        assert _clean(archive) == (2, 2)
    finally:
        archive.close()


def test_handed_over_files_are_gone_whatever_their_outcome(
    archive: Archive, tmp_path: Path
) -> None:
    staging = archive.staging_dir() or tmp_path / "spool"
    first, second = corpus.synthetic_ct_series(2, rows=16, columns=16)
    files = [
        _write(staging, first, "a.dcm"),
        _write(staging, first, "a-again.dcm"),
        _write(staging, second, "b.dcm"),
    ]
    (staging / "junk.dcm").write_bytes(b"\x00" * 128 + b"DICM" + b"\x00" * 16)
    files.append(staging / "junk.dcm")

    outcomes = archive.store_files(files, consume=True, skip_stored=True)

    assert [isinstance(o, StoreOutcome) and o.stored for o in outcomes] == [
        True,
        False,
        True,
        False,
    ]
    assert isinstance(outcomes[3], InvalidInstance)
    assert not any(path.exists() for path in files)
    assert _clean(archive) == (2, 2)
    again = archive.store_files([_write(tmp_path / "x", second, "b.dcm")], skip_stored=True)
    assert isinstance(again[0], StoreOutcome)
    assert again[0].already_stored


def test_the_overwrite_policy_keeps_the_last_copy_of_a_batch(
    tmp_path: Path, backend: Backend
) -> None:
    archive = _archive(tmp_path, backend, duplicates="overwrite")
    try:
        dataset, other = corpus.synthetic_ct_series(2, rows=16, columns=16)
        assert archive.store_file(_write(tmp_path / "before", dataset, "one.dcm")).stored
        dataset.InstitutionName = "Second Copy"
        second = _write(tmp_path / "a", dataset, "one.dcm")
        dataset.InstitutionName = "Third Copy"
        third = _write(tmp_path / "b", dataset, "one.dcm")
        outcomes = archive.store_files([second, _write(tmp_path / "a", other, "two.dcm"), third])
        assert all(isinstance(o, StoreOutcome) and o.stored for o in outcomes)
        assert _clean(archive) == (2, 2)  # the replaced blobs are gone
        instance = archive.instance(dataset.SOPInstanceUID)
        assert instance is not None
        with archive.open_local(instance) as path:
            assert path.read_bytes() == third.read_bytes()
    finally:
        archive.close()
