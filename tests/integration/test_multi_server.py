"""Several servers, one truth: two `openpacs serve` processes on one PostgreSQL database and
one S3 bucket take overlapping C-STOREs at once (the same studies, the same instances) from
pynetdicom and storescu clients; afterwards counts, C-FIND and verify agree."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from openpacs.archive.verify import verify
from openpacs.compose import build_archive
from openpacs.config import load_settings
from tests.support import corpus, dcmtk, scu
from tests.support.backends import Backend
from tests.support.node import write_config
from tests.support.process import free_port, serving

pytestmark = [pytest.mark.slow, pytest.mark.dcmtk]


def _studies() -> list[list[Dataset]]:
    studies = []
    for number in range(3):
        study_uid = None
        datasets: list[Dataset] = []
        for series_number in (1, 2):
            series = corpus.synthetic_ct_series(
                15,
                rows=32,
                columns=32,
                patient_id=f"MULTI-{number}",
                study_uid=study_uid,
                series_number=series_number,
                seed=number * 10 + series_number,
            )
            study_uid = str(series[0].StudyInstanceUID)
            datasets += series
        studies.append(datasets)
    return studies


def test_two_servers_share_one_database_and_bucket(
    tmp_path: Path, postgres_url: str, s3_endpoint_session: str
) -> None:
    dcmtk.require("storescu")
    shared = Backend("postgresql-s3", postgres_url, s3_endpoint_session).sections(tmp_path)
    ports = [free_port(), free_port()]
    configs = []
    for index, port in enumerate(ports):
        folder = tmp_path / f"server{index}"
        folder.mkdir()
        configs.append(write_config(folder, {**shared, "dicom": {"port": port}}))
    studies = _studies()
    everything = [d for study in studies for d in study]
    files = [corpus.write_part10(d, tmp_path / f"{n}.dcm") for n, d in enumerate(studies[2])]

    with (
        serving(configs[0], port=ports[0], log_dir=tmp_path, name="a"),
        serving(configs[1], port=ports[1], log_dir=tmp_path, name="b"),
    ):
        statuses: list[int] = []
        lock = threading.Lock()

        def send(port: int, datasets: list[Dataset]) -> None:
            result = scu.store(port, datasets)
            with lock:
                statuses.extend(int(s.Status) for s in result)

        jobs = [
            # the same study to both servers, in opposite orders
            (ports[0], studies[0]),
            (ports[1], list(reversed(studies[0]))),
            # one study split across the servers, with an overlap in the middle
            (ports[0], studies[1][:20]),
            (ports[1], studies[1][10:]),
        ]
        senders: list[subprocess.CompletedProcess[str]] = []

        def storescu(port: int) -> None:
            result = dcmtk.run("storescu", "-aec", "OPENPACS", "127.0.0.1", str(port), *names)
            with lock:
                senders.append(result)

        names = [str(path) for path in files]
        threads = [threading.Thread(target=send, args=job) for job in jobs]
        # storescu sends the third study to both servers at the same time
        threads += [threading.Thread(target=storescu, args=(port,)) for port in ports]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
            assert not thread.is_alive()
        assert all(result.returncode == 0 for result in senders), [s.stderr for s in senders]
        assert len(senders) == 2
        assert len(statuses) == 30 + 30 + 20 + 20
        assert set(statuses) == {0x0000}

        for port in ports:
            found, final = scu.find(
                port,
                scu.identifier(
                    "STUDY",
                    PatientID="MULTI-*",
                    StudyInstanceUID="",
                    NumberOfStudyRelatedSeries="",
                    NumberOfStudyRelatedInstances="",
                ),
            )
            assert final.Status == 0x0000
            assert sorted(
                (str(f.PatientID), f.NumberOfStudyRelatedSeries, f.NumberOfStudyRelatedInstances)
                for f in found
            ) == [(f"MULTI-{n}", 2, 30) for n in range(3)]

    archive = build_archive(load_settings(configs[0], environ={}))
    try:
        totals = archive.totals()
        assert (totals.patients, totals.studies, totals.series) == (3, 3, 6)
        assert totals.instances == len(everything) == 90
        report = verify(archive, checksums=True, min_orphan_age=0)
        assert report.clean, report
        assert report.blobs == report.instances == 90
    finally:
        archive.close()
