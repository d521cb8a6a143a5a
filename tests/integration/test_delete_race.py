"""A C-STORE racing a delete of the same study (issue: deleting is safe under concurrency).

Several threads store instances of one study while another deletes that study again and
again, on every backend. Whatever interleaving happens, each instance ends up either indexed
with its blob whole, or gone entirely: never an index row without its blob. An unindexed
blob (a store whose row a delete removed before the blob went) is the most that may remain,
and `verify` counts it as a young orphan, not as a loss.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from pydicom import dcmread

from openpacs.archive.verify import verify
from openpacs.compose import build_archive
from openpacs.config import load_settings
from openpacs.dicom.levels import Level
from openpacs.errors import OpenPacsError
from tests.support import corpus
from tests.support.backends import Backend
from tests.support.node import write_config

STORERS = 3
PER_STORER = 12
DEADLINE = 120.0


def test_stores_racing_deletes_leave_whole_instances_or_nothing(
    tmp_path: Path, backend: Backend
) -> None:
    settings = load_settings(write_config(tmp_path, backend.sections(tmp_path)), environ={})
    archive = build_archive(settings)
    datasets = corpus.synthetic_ct_series(STORERS * PER_STORER, rows=16, columns=16)
    study_uid = str(datasets[0].StudyInstanceUID)
    files = [corpus.write_part10(ds, tmp_path / f"in-{n}.dcm") for n, ds in enumerate(datasets)]
    done = threading.Event()
    errors: list[BaseException] = []
    deletes = 0

    def store(part: list[Path]) -> None:
        try:
            for path in part:
                archive.store_file(path)
        except BaseException as exc:  # surfaced below: a store must not fail here
            errors.append(exc)

    def delete_repeatedly() -> None:
        nonlocal deletes
        started = time.monotonic()
        while not done.is_set() and time.monotonic() - started < DEADLINE:
            try:
                archive.delete(Level.STUDY, study_uid)
                deletes += 1
            except OpenPacsError as exc:
                errors.append(exc)
                return
            time.sleep(0.005)

    storers = [threading.Thread(target=store, args=(files[i::STORERS],)) for i in range(STORERS)]
    deleter = threading.Thread(target=delete_repeatedly)
    deleter.start()
    for thread in storers:
        thread.start()
    for thread in storers:
        thread.join(DEADLINE)
    done.set()
    deleter.join(DEADLINE)
    try:
        assert not errors, errors
        assert deletes > 0
        report = verify(archive, min_orphan_age=DEADLINE)
        assert report.missing_blobs == []
        assert report.size_mismatches == []
        assert report.orphan_blobs == []  # unindexed blobs are all young: counted apart
        for blob in archive.index.iter_blobs():
            instance = archive.instance(blob.sop_uid)
            assert instance is not None
            with archive.open_local(instance) as path:
                assert dcmread(path).SOPInstanceUID == blob.sop_uid
        # The same instances stored again now that no delete runs: all of them are there.
        for path in files:
            archive.store_file(path)
        assert archive.totals().instances == len(files)
    finally:
        archive.close()
