"""Fifty associations at once, storing into the same few studies while others query.

Every association is established before any of them stores (a barrier), so the node really
serves fifty peers together; afterwards the counts at every level must be exact.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tests.support import scu
from tests.support.corpus import CT_IMAGE_STORAGE, synthetic_ct_series
from tests.support.node import Node, running_node

SUCCESS = 0x0000
PEERS = 50
PER_PEER = 3
STUDIES = 5
SERIES_PER_STUDY = 2
PATIENTS = 2
WAIT = 60.0
FIND = scu.MODELS["study"][0]


@dataclass(frozen=True)
class PeerResult:
    statuses: list[int]
    find_status: int | None


@dataclass(frozen=True)
class Run:
    node: Node
    results: list[PeerResult]
    study_uids: list[str]
    series_uids: list[list[str]]


def _batches(study_uids: list[str], series_uids: list[list[str]]) -> list[list[Dataset]]:
    """Peer i stores PER_PEER new instances into study i % STUDIES, one of its two series."""
    batches = []
    for peer in range(PEERS):
        study = peer % STUDIES
        series = (peer // STUDIES) % SERIES_PER_STUDY
        patient = study % PATIENTS
        batches.append(
            synthetic_ct_series(
                PER_PEER,
                rows=8,
                columns=8,
                patient_name=f"CONCURRENT^{patient}",
                patient_id=f"CC-{patient}",
                study_uid=study_uids[study],
                series_uid=series_uids[study][series],
                series_number=series + 1,
            )
        )
    return batches


def _peer(port: int, batch: list[Dataset], barrier: threading.Barrier, query: bool) -> PeerResult:
    with scu.association(port, [(CT_IMAGE_STORAGE, [ExplicitVRLittleEndian]), FIND]) as assoc:
        scu.settle_reactor(assoc)  # parked, it does not poll while the others associate
        barrier.wait(timeout=WAIT)  # all fifty associations are up before anyone stores
        statuses = []
        for ds in batch:
            scu.settle_reactor(assoc)
            statuses.append(int(assoc.send_c_store(ds).Status))
        find_status = None
        if query:
            _, final = scu.find_on(assoc, scu.identifier("STUDY", StudyInstanceUID=""))
            find_status = int(final.Status)
    return PeerResult(statuses, find_status)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    study_uids = [generate_uid() for _ in range(STUDIES)]
    series_uids = [[generate_uid() for _ in range(SERIES_PER_STUDY)] for _ in range(STUDIES)]
    batches = _batches(study_uids, series_uids)
    folder = tmp_path_factory.mktemp("concurrency-node")
    with running_node(folder, dicom={"max_associations": 60}) as node:
        barrier = threading.Barrier(PEERS)
        with ThreadPoolExecutor(max_workers=PEERS) as pool:
            futures = [
                pool.submit(_peer, node.port, batch, barrier, peer % 5 == 0)
                for peer, batch in enumerate(batches)
            ]
            results = [future.result(timeout=WAIT) for future in futures]
        yield Run(node, results, study_uids, series_uids)


def test_every_store_and_query_of_fifty_peers_succeeds(run: Run) -> None:
    assert [r.statuses for r in run.results] == [[SUCCESS] * PER_PEER] * PEERS
    queried = [r.find_status for r in run.results if r.find_status is not None]
    assert queried == [SUCCESS] * (PEERS // 5)


def test_the_counts_are_exact_at_every_level(run: Run) -> None:
    totals = run.node.archive.totals()
    assert (totals.patients, totals.studies, totals.series, totals.instances) == (
        PATIENTS,
        STUDIES,
        STUDIES * SERIES_PER_STUDY,
        PEERS * PER_PEER,
    )


def test_c_find_reports_exact_counts_afterwards(run: Run) -> None:
    per_study = PEERS // STUDIES * PER_PEER
    matches, final = scu.find(
        run.node.port,
        scu.identifier(
            "STUDY",
            StudyInstanceUID="",
            NumberOfStudyRelatedSeries="",
            NumberOfStudyRelatedInstances="",
        ),
    )
    assert final.Status == SUCCESS
    counts = {
        str(m.StudyInstanceUID): (
            int(m.NumberOfStudyRelatedSeries),
            int(m.NumberOfStudyRelatedInstances),
        )
        for m in matches
    }
    assert counts == {uid: (SERIES_PER_STUDY, per_study) for uid in run.study_uids}

    series, final = scu.find(
        run.node.port,
        scu.identifier(
            "SERIES",
            StudyInstanceUID=run.study_uids[0],
            SeriesInstanceUID="",
            NumberOfSeriesRelatedInstances="",
        ),
    )
    assert final.Status == SUCCESS
    assert {str(m.SeriesInstanceUID): int(m.NumberOfSeriesRelatedInstances) for m in series} == {
        uid: per_study // SERIES_PER_STUDY for uid in run.series_uids[0]
    }

    patients, final = scu.find(
        run.node.port,
        scu.identifier("PATIENT", PatientID="", NumberOfPatientRelatedStudies=""),
        model="patient",
    )
    assert final.Status == SUCCESS
    studies_of = {str(m.PatientID): int(m.NumberOfPatientRelatedStudies) for m in patients}
    assert studies_of == {"CC-0": 3, "CC-1": 2}
