"""Group commit: concurrent callers share batches, each gets its own outcome."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from openpacs.grouping import GroupRunner, GroupTimeout


def test_a_caller_alone_is_processed_at_once() -> None:
    runner: GroupRunner[int, int] = GroupRunner(lambda items: [i * 2 for i in items])
    assert runner.run(21) == 42
    assert runner.batches == 1


def test_concurrent_callers_share_batches_and_get_their_own_results() -> None:
    gate = threading.Event()
    sizes: list[int] = []

    def process(items: Sequence[int]) -> list[int | BaseException]:
        sizes.append(len(items))
        gate.wait(5)  # the first batch holds the others back until all have queued
        return [ValueError(f"odd {i}") if i % 2 else i for i in items]

    runner: GroupRunner[int, int] = GroupRunner(process)
    outcomes: dict[int, object] = {}

    def call(i: int) -> None:
        try:
            outcomes[i] = runner.run(i)
        except ValueError as exc:
            outcomes[i] = str(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(9)]
    for thread in threads:
        thread.start()
    while sum(1 for t in threads if t.is_alive()) and len(runner._queue) < 8:
        threading.Event().wait(0.01)
    gate.set()
    for thread in threads:
        thread.join(10)
    assert outcomes == {i: (f"odd {i}" if i % 2 else i) for i in range(9)}
    assert sum(sizes) == 9
    assert len(sizes) <= 3  # one caller first, then the rest together


def test_a_failing_batch_fails_each_of_its_callers() -> None:
    def process(items: Sequence[int]) -> list[int | BaseException]:
        raise OSError("disk gone")

    runner: GroupRunner[int, int] = GroupRunner(process)
    with pytest.raises(OSError, match="disk gone"):
        runner.run(1)
    with pytest.raises(OSError, match="disk gone"):  # the runner is not left busy
        runner.run(2)


def test_a_caller_that_no_batch_takes_withdraws_its_item() -> None:
    runner: GroupRunner[int, int] = GroupRunner(lambda items: list(items), patience=0.0)
    runner._busy = True  # a leader that never comes back
    with pytest.raises(GroupTimeout):
        runner.run(1)
    assert runner._queue == []
