"""Whole headers built after ingest: what readers get is identical to headers built at ingest,
whether they were built on first read, by the background builder, or from the blob."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from sqlalchemy import select

from openpacs.archive.service import Archive
from openpacs.compose import build_archive
from openpacs.config import load_settings
from openpacs.dicom.levels import Level
from openpacs.dicom.metadata import headers_query, instance_metadata
from openpacs.dicom.qido import Resource, qido_query, qido_result
from openpacs.index import schema
from tests.support import corpus
from tests.support.backends import Backend
from tests.support.node import write_config


def _archive(folder: Path, backend: Backend) -> Archive:
    folder.mkdir()
    return build_archive(load_settings(write_config(folder, backend.sections(folder)), environ={}))


def _datasets() -> list[Dataset]:
    datasets = corpus.synthetic_ct_series(3, rows=16, columns=16)
    first = datasets[0]
    first.SpecificCharacterSet = "ISO_IR 192"
    first.PatientName = "Müller^Jürgen"
    first.InstitutionName = "Klinik Süd"
    item = Dataset()
    item.CodeValue = "T-D0050"
    item.CodeMeaning = "Tissue"
    first.AnatomicRegionSequence = Sequence([item])
    return datasets


def _store(archive: Archive, datasets: list[Dataset], folder: Path) -> None:
    for i, ds in enumerate(datasets):
        archive.store_file(corpus.write_part10(ds, folder / f"{i}.dcm"))


def _stored_headers(archive: Archive) -> dict[str, tuple[str, bool]]:
    i = schema.instances
    with archive.index._engine.connect() as conn:  # type: ignore[attr-defined]
        rows = conn.execute(select(i.c.sop_uid, i.c.header, i.c.header_ready))
        return {row.sop_uid: (row.header, row.header_ready) for row in rows}


def _answers(archive: Archive) -> list[object]:
    """What C-FIND, QIDO-RS and WADO-RS metadata are made of, at every level."""
    answers: list[object] = []
    for resource, params in (
        (Resource.STUDIES, [("includefield", "all")]),
        (Resource.SERIES, [("includefield", "all")]),
        (Resource.INSTANCES, [("includefield", "all")]),
        (Resource.INSTANCES, [("00082218.00080104", "Tissue")]),
        (Resource.STUDIES, [("InstitutionName", "Klinik*"), ("includefield", "00081030")]),
        (Resource.INSTANCES, [("PatientName", "Müller*"), ("includefield", "00280010")]),
    ):
        qido = qido_query(resource, params)
        matches = archive.find(qido.query)
        answers.append(matches)
        answers.append([qido_result(qido, m, base_url="") for m in matches])
    study = archive.find(qido_query(Resource.STUDIES, []).query)[0].values["StudyInstanceUID"]
    for match in archive.find(headers_query(study)):
        answers.append(instance_metadata(match.header or {}, instance_url="/i"))
    answers.append(archive.page(Level.STUDY, [], text="müller").total)
    return answers


@pytest.fixture
def datasets() -> list[Dataset]:
    return _datasets()


@pytest.fixture
def eager(tmp_path: Path, backend: Backend, datasets: list[Dataset]) -> Iterator[Archive]:
    archive = _archive(tmp_path / "eager", backend)
    _store(archive, datasets, tmp_path)
    yield archive
    archive.close()


def test_headers_built_on_first_read_are_those_built_at_ingest(
    eager: Archive, tmp_path: Path, backend: Backend, datasets: list[Dataset]
) -> None:
    expected = _answers(eager)
    lazy = _archive(tmp_path / "lazy", backend)
    try:
        lazy.headers.defer = True  # deferred, no builder thread: the first read builds them
        _store(lazy, datasets, tmp_path)
        assert not any(ready for _, ready in _stored_headers(lazy).values())
        assert _answers(lazy) == expected
        assert _stored_headers(lazy) == _stored_headers(eager)
    finally:
        lazy.close()


def test_headers_built_in_the_background_or_from_blobs_are_the_same(
    eager: Archive, tmp_path: Path, backend: Backend, datasets: list[Dataset]
) -> None:
    expected = _stored_headers(eager)
    lazy = _archive(tmp_path / "lazy", backend)
    try:
        lazy.headers.defer = True
        _store(lazy, datasets[:1], tmp_path)
        lazy.headers._kept.clear()  # as after a crash: built from the blob
        lazy.start()  # the builder settles what is pending, then what arrives
        _store(lazy, datasets[1:], tmp_path)
        deadline = time.monotonic() + 30
        while lazy.index.pending_headers(10) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _stored_headers(lazy) == expected
        assert _answers(lazy) == _answers(eager)
    finally:
        lazy.close()


def test_an_unreadable_blob_leaves_its_summary(tmp_path: Path, backend: Backend) -> None:
    archive = _archive(tmp_path / "node", backend)
    try:
        archive.headers.defer = True
        dataset = _datasets()[0]
        _store(archive, [dataset], tmp_path)
        archive.headers._kept.clear()
        instance = archive.instance(dataset.SOPInstanceUID)
        assert instance is not None
        archive.store.delete(instance.blob_key)
        (match,) = archive.find(headers_query(dataset.StudyInstanceUID))
        assert match.header is not None
        assert match.header["00100010"]["Value"] == [{"Alphabetic": "Müller^Jürgen"}]
        assert "00280010" not in match.header  # Rows: not a summary element
        assert archive.index.pending_headers(10) == []
    finally:
        archive.close()


def test_an_overwriting_copy_gets_its_own_whole_header(tmp_path: Path, backend: Backend) -> None:
    (tmp_path / "node").mkdir()
    sections = {**backend.sections(tmp_path / "node"), "archive": {"duplicates": "overwrite"}}
    archive = build_archive(load_settings(write_config(tmp_path / "node", sections), environ={}))
    try:
        archive.headers.defer = True
        dataset = _datasets()[0]
        dataset.ImageComments = "first"
        _store(archive, [dataset], tmp_path)
        dataset.ImageComments = "second"
        archive.store_file(corpus.write_part10(dataset, tmp_path / "again.dcm"))
        (match,) = archive.find(headers_query(dataset.StudyInstanceUID))
        assert match.header is not None
        assert match.header["00204000"]["Value"] == ["second"]
        assert archive.headers._kept == {}
    finally:
        archive.close()
