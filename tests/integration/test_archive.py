"""The archive's use cases on a real SQLite index and folder store: the store sequence, the
duplicate policies, delete at every level, and what failures leave behind."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from sqlalchemy import text

from openpacs.archive.service import Archive
from openpacs.compose import build_archive
from openpacs.config import load_settings
from openpacs.dicom.levels import Level
from openpacs.dicom.query import Query, condition_for
from openpacs.errors import DuplicateInstance, IdentifierMismatch, InvalidInstance, StoreUnavailable
from openpacs.index.engine import create_index_engine
from tests.support import blobs, corpus
from tests.support import s3 as s3_support
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


def _blobs(archive: Archive) -> list[str]:
    return sorted(archive.store.iterate())


def _staged(archive: Archive) -> list[Path]:
    staging = archive.staging_dir()
    return sorted(staging.iterdir()) if staging is not None else []


def _file(tmp_path: Path, dataset: Dataset, name: str = "in.dcm") -> Path:
    return corpus.write_part10(dataset, tmp_path / name)


def _series(count: int = 3, **kwargs: object) -> list[Dataset]:
    return corpus.synthetic_ct_series(count, rows=32, columns=32, **kwargs)  # type: ignore[arg-type]


def _by_uid(archive: Archive, keyword: str, uid: str, level: Level) -> int:
    condition = condition_for(int(_TAGS[keyword]), uid)
    return len(archive.find(Query(level, (condition,) if condition else ())))


_TAGS = {"PatientID": 0x00100020, "StudyInstanceUID": 0x0020000D, "SOPInstanceUID": 0x00080018}


def test_store_keeps_the_bytes_and_indexes_them(archive: Archive, tmp_path: Path) -> None:
    dataset = _series(1)[0]
    source = _file(tmp_path, dataset)
    original = source.read_bytes()
    outcome = archive.store_file(source)
    assert outcome.stored
    instance = archive.instance(dataset.SOPInstanceUID)
    assert instance is not None
    with archive.open_local(instance) as path:
        assert path.read_bytes() == original  # byte for byte
    assert instance.blob_size == len(original)
    assert source.exists()  # not consumed unless asked


def test_consumed_files_are_handed_over(archive: Archive, tmp_path: Path) -> None:
    staging = archive.staging_dir() or tmp_path
    source = _file(staging, _series(1)[0], "spooled.dcm")
    inode = source.stat().st_ino
    archive.store_file(source, consume=True)
    assert not source.exists()
    (key,) = _blobs(archive)
    if archive.staging_dir() is not None:  # a folder store renames instead of copying
        with archive.store.local_path(key) as path:
            assert path.stat().st_ino == inode


def test_keep_policy_keeps_the_first_copy(archive: Archive, tmp_path: Path) -> None:
    first = _series(1)[0]
    archive.store_file(_file(tmp_path, first))
    second = copy.deepcopy(first)
    second.StudyDescription = "changed"
    outcome = archive.store_file(_file(tmp_path, second, "second.dcm"))
    assert not outcome.stored
    assert archive.totals().instances == 1
    assert len(_blobs(archive)) == 1
    (match,) = archive.find(Query(Level.STUDY))
    assert match.values["StudyDescription"] == first.StudyDescription


def test_overwrite_policy_replaces_row_and_blob(tmp_path: Path, backend: Backend) -> None:
    archive = _archive(tmp_path, backend, "overwrite")
    try:
        first = _series(1)[0]
        archive.store_file(_file(tmp_path, first))
        second = copy.deepcopy(first)
        second.InstanceNumber = 99
        assert archive.store_file(_file(tmp_path, second, "second.dcm")).stored
        assert archive.totals().instances == 1
        (match,) = archive.find(Query(Level.IMAGE))
        assert match.values["InstanceNumber"] == 99
        (key,) = _blobs(archive)
        with archive.store.open(key) as blob:
            assert b"99" in blob.read()
    finally:
        archive.close()


def test_overwrite_into_another_series_prunes_the_empty_one(
    tmp_path: Path, backend: Backend
) -> None:
    archive = _archive(tmp_path, backend, "overwrite")
    try:
        first = _series(1)[0]
        archive.store_file(_file(tmp_path, first))
        moved = copy.deepcopy(first)
        moved.SeriesInstanceUID = "1.2.826.0.1.3680043.10.999.1"
        archive.store_file(_file(tmp_path, moved, "moved.dcm"))
        totals = archive.totals()
        assert (totals.series, totals.instances) == (1, 1)
    finally:
        archive.close()


def test_reject_policy_refuses_and_keeps_nothing_new(tmp_path: Path, backend: Backend) -> None:
    archive = _archive(tmp_path, backend, "reject")
    try:
        first = _series(1)[0]
        archive.store_file(_file(tmp_path, first))
        with pytest.raises(DuplicateInstance) as refused:
            archive.store_file(_file(tmp_path, first, "again.dcm"))
        assert refused.value.dimse_status == 0x0111
        assert archive.totals().instances == 1
        assert len(_blobs(archive)) == 1
    finally:
        archive.close()


@pytest.mark.parametrize("keyword", ["SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"])
def test_missing_identifiers_are_refused_and_nothing_is_kept(
    archive: Archive, tmp_path: Path, keyword: str
) -> None:
    dataset = _series(1)[0]
    delattr(dataset, keyword)
    source = (
        corpus.write_part10(dataset, tmp_path / "bad.dcm") if keyword != "SOPInstanceUID" else None
    )
    if source is None:  # file meta needs the SOP Instance UID: write the file by hand
        dataset.file_meta.MediaStorageSOPInstanceUID = "1.2.3"
        dataset.preamble = b"\x00" * 128
        source = tmp_path / "bad.dcm"
        dataset.save_as(source, enforce_file_format=False)
    spooled = (archive.staging_dir() or tmp_path) / "spooled.dcm"
    spooled.write_bytes(source.read_bytes())
    with pytest.raises(IdentifierMismatch, match=keyword):
        archive.store_file(spooled, consume=True)
    assert not spooled.exists()
    assert archive.totals().instances == 0
    assert _blobs(archive) == []


def test_truncated_files_are_refused(archive: Archive, tmp_path: Path) -> None:
    source = _file(tmp_path, _series(1)[0])
    data = source.read_bytes()
    source.write_bytes(data[: len(data) - 100])
    with pytest.raises(InvalidInstance, match="truncated"):
        archive.store_file(source)
    assert archive.totals().instances == 0


def test_announced_uids_must_match(archive: Archive, tmp_path: Path) -> None:
    dataset = _series(1)[0]
    with pytest.raises(IdentifierMismatch, match="differs"):
        archive.store_file(_file(tmp_path, dataset), sop_uid="1.2.3.4")
    with pytest.raises(IdentifierMismatch, match="differs"):
        archive.store_file(_file(tmp_path, dataset), sop_class_uid="1.2.840.10008.5.1.4.1.1.4")


def _rename_table(tmp_path: Path, old: str, new: str) -> None:
    url = load_settings(tmp_path / "openpacs.toml", environ={}).database.url
    engine = create_index_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))
    finally:
        engine.dispose()


def test_a_failed_index_write_removes_the_new_blob(archive: Archive, tmp_path: Path) -> None:
    archive.store_file(_file(tmp_path, _series(1)[0]))
    # A real failure of the real database: the instances table disappears underneath.
    _rename_table(tmp_path, "instances", "instances_gone")
    try:
        with pytest.raises(StoreUnavailable):
            archive.store_file(_file(tmp_path, _series(1)[0], "second.dcm"))
    finally:
        _rename_table(tmp_path, "instances_gone", "instances")
    assert len(_blobs(archive)) == 1
    assert _staged(archive) == []


def test_a_failed_blob_write_indexes_nothing(
    archive: Archive, tmp_path: Path, backend: Backend
) -> None:
    dataset = _series(1)[0]
    if backend.blobs_in_database:
        _rename_table(tmp_path, "blob_chunks", "blob_chunks_gone")
        try:
            with pytest.raises(StoreUnavailable):
                archive.store_file(_file(tmp_path, dataset))
        finally:
            _rename_table(tmp_path, "blob_chunks_gone", "blob_chunks")
        assert archive.totals().instances == 0
        assert list(archive.store.iterate()) == []
        return
    if backend.uses_folder:
        # Make the folder the key would go to impossible to create: every two-hex-digit
        # prefix is taken by a regular file.
        blobs = tmp_path / "blobs"
        for first in range(256):
            (blobs / f"{first:02x}").write_bytes(b"")
    else:  # the bucket is gone
        settings = load_settings(tmp_path / "openpacs.toml", environ={})
        assert backend.s3_endpoint is not None
        s3_support.remove_bucket(backend.s3_endpoint, settings.storage.s3_bucket)
    with pytest.raises(StoreUnavailable):
        archive.store_file(_file(tmp_path, dataset))
    assert archive.totals().instances == 0
    assert archive.instance(dataset.SOPInstanceUID) is None


@pytest.mark.parametrize(
    ("level", "keyword", "left"),
    [
        (Level.IMAGE, "SOPInstanceUID", (2, 3, 3, 1)),
        (Level.SERIES, "SeriesInstanceUID", (2, 2, 2, 1)),
        (Level.STUDY, "StudyInstanceUID", (1, 1, 1, 1)),
        (Level.PATIENT, "PatientID", (0, 0, 0, 0)),
    ],
)
def test_delete_at_every_level_removes_rows_and_blobs(
    archive: Archive, tmp_path: Path, level: Level, keyword: str, left: tuple[int, ...]
) -> None:
    first = _series(2, patient_id="P1")
    second_series = _series(1, patient_id="P1", study_uid=first[0].StudyInstanceUID)
    other_study = _series(1, patient_id="P1")
    for number, dataset in enumerate(first + second_series + other_study):
        archive.store_file(_file(tmp_path, dataset, f"{number}.dcm"))
    removed = archive.delete(level, str(getattr(first[0], keyword)))
    totals = archive.totals()
    assert (totals.studies, totals.series, totals.instances, totals.patients) == left
    assert removed == 4 - totals.instances
    assert len(_blobs(archive)) == totals.instances
    assert archive.delete(level, str(getattr(first[0], keyword))) == 0  # idempotent


def test_concurrent_stores_share_commits_and_fail_alone(tmp_path: Path, backend: Backend) -> None:
    """Threads storing at once (several associations) are acknowledged each when its own
    instance is durable; a duplicate refused by the policy fails alone in its group."""

    import threading

    (tmp_path / "node").mkdir()
    archive = _archive(tmp_path / "node", backend, duplicates="reject")
    try:
        datasets = _series(12)
        files = [_file(tmp_path, ds, f"in{i}.dcm") for i, ds in enumerate(datasets)]
        archive.store_file(files[0])  # the one the group will try again
        outcomes: dict[int, object] = {}
        start = threading.Barrier(len(files))

        def store(i: int) -> None:
            start.wait(10)
            try:
                outcomes[i] = archive.store_file(files[i]).stored
            except DuplicateInstance as exc:
                outcomes[i] = exc

        threads = [threading.Thread(target=store, args=(i,)) for i in range(len(files))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert isinstance(outcomes[0], DuplicateInstance)
        assert all(outcomes[i] is True for i in range(1, len(files)))
        for ds in datasets:  # acknowledged means indexed, with its blob
            instance = archive.instance(ds.SOPInstanceUID)
            assert instance is not None
            assert blobs.holds(archive.store, instance.blob_key)
        assert len(_blobs(archive)) == len(datasets)
    finally:
        archive.close()


def test_a_precomputed_digest_spares_reading_the_file(archive: Archive, tmp_path: Path) -> None:
    import hashlib

    source = _file(tmp_path, _series(1)[0])
    data = source.read_bytes()
    digest = (len(data), hashlib.sha256(data).hexdigest())
    with pytest.raises(InvalidInstance, match="bytes"):
        archive.store_file(source, digest=(len(data) + 1, digest[1]))
    with pytest.raises(InvalidInstance, match="SHA-256"):
        archive.store_file(source, digest=(len(data), "not hex"))
    assert _blobs(archive) == []
    assert archive.store_file(source, digest=digest).stored
    blobs = list(archive.index.iter_blobs())
    assert [(b.blob_size, b.blob_sha256) for b in blobs] == [digest]
