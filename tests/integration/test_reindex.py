"""`openpacs reindex`: the database is lost, the store survives; the index rebuilt from the
store alone answers every C-FIND and QIDO-RS query as before, verify finds nothing, and a run
interrupted and run again indexes only what is missing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from sqlalchemy import create_engine, text

from openpacs.archive.reindex import index_blob, unindexed_keys
from openpacs.archive.verify import verify
from openpacs.compose import build_archive
from openpacs.config import load_settings
from tests.support import scu
from tests.support.backends import Backend
from tests.support.blobs import put
from tests.support.node import write_config
from tests.support.query_archive import SUCCESS, archive_datasets
from tests.support.web import WebNode, running_web_node

STUDY_KEYS = (
    "StudyInstanceUID", "PatientName", "PatientID", "PatientBirthDate", "StudyDate",
    "StudyTime", "AccessionNumber", "StudyDescription", "InstitutionName",
    "ModalitiesInStudy", "SOPClassesInStudy", "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances", "ReferencedStudySequence",
)  # fmt: skip
SERIES_KEYS = (
    "SeriesInstanceUID", "Modality", "SeriesNumber", "StationName",
    "NumberOfSeriesRelatedInstances",
)  # fmt: skip
IMAGE_KEYS = ("SOPInstanceUID", "SOPClassUID", "InstanceNumber", "Rows", "NumberOfFrames")
PATIENT_KEYS = (
    "PatientID", "PatientName", "PatientSex", "NumberOfPatientRelatedStudies",
    "NumberOfPatientRelatedSeries", "NumberOfPatientRelatedInstances",
)  # fmt: skip
QIDO = (
    "/dicom-web/studies?includefield=all",
    "/dicom-web/series?includefield=all",
    "/dicom-web/instances?includefield=all",
    "/dicom-web/studies?PatientName=doe*&includefield=ModalitiesInStudy",
    "/dicom-web/studies?StudyDate=20230101-20241231",
    "/dicom-web/studies?InstitutionName=General%20Hospital",
    "/dicom-web/series?Modality=CT&StationName=CT0*",
)


def _find(port: int, level: str, model: str, keys: tuple[str, ...], **match: str) -> list[str]:
    identifier = scu.identifier(level, **{**dict.fromkeys(keys, ""), **match})
    found, final = scu.find(port, identifier, model=model)
    assert final.Status == SUCCESS
    return sorted(json.dumps(_json(ds), sort_keys=True) for ds in found)


def _json(dataset: Dataset) -> dict[str, Any]:
    return dataset.to_json_dict()


def _answers(web: WebNode) -> dict[str, list[str]]:
    port = web.dicom.port
    answers = {
        "patients": _find(port, "PATIENT", "patient", PATIENT_KEYS),
        "studies": _find(port, "STUDY", "study", STUDY_KEYS),
        "all series": _find(port, "SERIES", "study", (*SERIES_KEYS, "StudyInstanceUID")),
        "all images": _find(port, "IMAGE", "study", (*IMAGE_KEYS, "SeriesInstanceUID")),
        "does": _find(port, "STUDY", "study", STUDY_KEYS, PatientName="DOE*"),
    }
    with web.client() as client:
        for path in QIDO:
            response = client.get(path, headers={"Accept": "application/dicom+json"})
            assert response.status_code == 200, response.text
            body = response.text.replace(web.url, "BASE")
            answers[path] = sorted(json.dumps(item, sort_keys=True) for item in json.loads(body))
    return answers


def _drop_database(sections: dict[str, dict[str, Any]], folder: Path) -> None:
    if "database" not in sections:
        for path in folder.glob("index.db*"):
            path.unlink()
        return
    engine = create_engine(
        sections["database"]["url"].replace("postgresql:", "postgresql+psycopg:", 1)
    )
    blobs_here = sections.get("storage", {}).get("url") == "postgresql"
    try:
        with engine.begin() as connection:
            if not blobs_here:
                connection.execute(text("DROP SCHEMA public CASCADE"))
                connection.execute(text("CREATE SCHEMA public"))
                return
            # The blobs live in this database: the index tables are lost, the blob tables kept.
            tables = connection.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            ).scalars()
            for table in tables:
                if not table.startswith("blob_"):
                    connection.execute(text(f'DROP TABLE IF EXISTS "{table}" CASCADE'))
    finally:
        engine.dispose()


def _reindex(config: Path, report: Path) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable, "-m", "openpacs", "reindex", "--config", str(config), "--workers", "2",
        "--no-progress", "--report", str(report),
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


def test_the_rebuilt_index_answers_as_before(tmp_path: Path, backend: Backend) -> None:
    folder = tmp_path / "node"
    folder.mkdir()
    sections = backend.sections(folder)
    _, datasets = archive_datasets()
    with running_web_node(folder, **sections) as web:
        statuses = scu.store(web.dicom.port, datasets)
        assert [status.Status for status in statuses] == [SUCCESS] * len(datasets)
        before = _answers(web)
    assert len(before["all images"]) == len(datasets)

    _drop_database(sections, folder)
    config = write_config(folder, sections)
    # A first run that stopped after two blobs.
    archive = build_archive(load_settings(config, environ={}))
    try:
        for key in unindexed_keys(archive)[:2]:
            assert index_blob(archive, key).outcome == "indexed"
    finally:
        archive.close()
    done = _reindex(config, tmp_path / "report.jsonl")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"indexed {len(datasets) - 2}," in done.stdout
    assert "already indexed 2" in done.stdout

    archive = build_archive(load_settings(config, environ={}))
    try:
        report = verify(archive, checksums=True, min_orphan_age=0)
        assert report.clean
        assert (report.instances, report.blobs) == (len(datasets), len(datasets))
    finally:
        archive.close()
    with running_web_node(folder, **sections) as web:
        after = _answers(web)
    assert after == before

    again = _reindex(config, tmp_path / "report.jsonl")
    assert again.returncode == 0, again.stderr
    assert (
        f"indexed 0, duplicate 0, unreadable 0, failed 0; already indexed {len(datasets)}"
        in again.stdout
    )


def test_blobs_that_are_not_instances_are_reported(tmp_path: Path) -> None:
    config = write_config(tmp_path, {})
    archive = build_archive(load_settings(config, environ={}))
    try:
        put(archive.store, "ab/cd/junk.dcm", b"not a dicom file")
    finally:
        archive.close()
    report = tmp_path / "report.jsonl"
    done = _reindex(config, report)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "unreadable 1" in done.stdout
    line = json.loads(report.read_text(encoding="utf-8"))
    assert line["key"] == "ab/cd/junk.dcm"
    assert line["outcome"] == "unreadable"
    assert "not a readable DICOM dataset" in line["reason"]
