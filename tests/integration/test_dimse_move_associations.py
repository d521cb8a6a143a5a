"""C-MOVE over several associations to the destination (`[dicom] move_associations`): every
instance arrives exactly once, the responses count exactly (PS3.4 C.4.2.1.4), a destination
that takes one association at a time still gets everything, and C-CANCEL stops the rest."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest
from pydicom.dataset import Dataset

from tests.support import scu
from tests.support.corpus import store_bytes, synthetic_ct_series, to_part10_bytes
from tests.support.node import HOST, Node, running_node

SUCCESS = 0x0000
CANCELLED = 0xFE00
COUNT = 120
MODEL = scu.MODELS["study"][2]


@dataclass(frozen=True)
class Setup:
    node: Node
    received: dict[str, scu.Received]
    study_uid: str
    sop_uids: list[str]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    with ExitStack() as stack:
        many_port, many = stack.enter_context(scu.storage_scp("MANYSCP"))
        one_port, one = stack.enter_context(scu.storage_scp("ONESCP", max_associations=1))
        remotes = [
            {"aet": "MANYSCP", "host": HOST, "port": many_port},
            {"aet": "ONESCP", "host": HOST, "port": one_port},
        ]
        node = stack.enter_context(
            running_node(
                tmp_path_factory.mktemp("move-node"),
                dicom={"remotes": remotes, "move_associations": 3},
            )
        )
        series = synthetic_ct_series(COUNT, rows=64, columns=64, patient_id="MA-1")
        for ds in series:
            store_bytes(node.archive, to_part10_bytes(ds))
        yield Setup(
            node=node,
            received={"MANYSCP": many, "ONESCP": one},
            study_uid=str(series[0].StudyInstanceUID),
            sop_uids=sorted(str(ds.SOPInstanceUID) for ds in series),
        )


@pytest.fixture
def env(setup: Setup) -> Iterator[Setup]:
    for received in setup.received.values():
        with received.lock:
            received.datasets.clear()
            received.peer_ports.clear()
    yield setup
    setup.node.wait_idle()


def _identifier(env: Setup) -> Dataset:
    return scu.identifier("STUDY", StudyInstanceUID=env.study_uid)


def _move(env: Setup, destination: str) -> list[tuple[Dataset, Dataset | None]]:
    with scu.association(env.node.port, [MODEL]) as assoc:
        return scu.move_on(assoc, _identifier(env), destination)


def _received(env: Setup, destination: str) -> list[str]:
    return sorted(str(ds.SOPInstanceUID) for ds in env.received[destination].datasets)


def test_sub_operations_spread_over_associations_arrive_once_and_count_exactly(
    env: Setup,
) -> None:
    responses = _move(env, "MANYSCP")
    final = responses[-1][0]
    assert final.Status == SUCCESS
    assert final.NumberOfCompletedSuboperations == COUNT
    assert final.NumberOfFailedSuboperations == 0
    assert _received(env, "MANYSCP") == env.sop_uids
    assert len(set(env.received["MANYSCP"].peer_ports)) > 1
    remaining = [int(status.NumberOfRemainingSuboperations) for status, _ in responses[:-1]]
    assert remaining == list(range(COUNT - 1, -1, -1))


def test_a_destination_taking_one_association_gets_everything_over_it(env: Setup) -> None:
    final = _move(env, "ONESCP")[-1][0]
    assert final.Status == SUCCESS
    assert final.NumberOfCompletedSuboperations == COUNT
    assert _received(env, "ONESCP") == env.sop_uids
    assert len(set(env.received["ONESCP"].peer_ports)) == 1


def test_c_cancel_stops_a_move_and_counts_what_was_delivered(env: Setup) -> None:
    responses: list[Dataset] = []
    with scu.association(env.node.port, [MODEL]) as assoc:
        scu.settle_reactor(assoc)
        for status, _ in assoc.send_c_move(_identifier(env), "MANYSCP", MODEL, msg_id=7):
            responses.append(status)
            if len(responses) == 1:
                assoc.send_c_cancel(7, query_model=MODEL)
    final = responses[-1]
    assert final.Status == CANCELLED
    completed = int(final.NumberOfCompletedSuboperations)
    assert 1 <= completed < COUNT
    assert final.NumberOfRemainingSuboperations == COUNT - completed
    env.node.wait_idle()
    received = _received(env, "MANYSCP")
    assert len(received) == len(set(received)) == completed
