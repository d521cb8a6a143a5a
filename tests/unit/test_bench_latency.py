"""The benchmark's latency arithmetic: percentiles, dealing files among associations, and the
C-STORE latencies read from storescu's timestamped log."""

from __future__ import annotations

import pytest
from bench import latency
from bench.report import cell, ratio
from bench.results import Figure

LOG = """\
1796312925 759.655 checking input files ...
1796312925 761.451 Association Accepted (Max Send PDV: 16372)
1796312925 761.457 Sending file: f0.dcm
1796312925 761.590 Sending Store Request (MsgID 1, MR)
XMIT: .
1796312925 848.035 Received Store Response (Success)
1796312925 999.264 Sending Store Request (MsgID 2, MR)
XMIT: .
1796312926 001.264 Received Store Response (Success)
1796312926 031.988 Releasing Association
"""


def test_percentile_interpolates_between_ranks() -> None:
    samples = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert latency.percentile(samples, 0) == 1.0
    assert latency.percentile(samples, 50) == 3.0
    assert latency.percentile(samples, 100) == 5.0
    assert latency.percentile(samples, 95) == pytest.approx(4.8)
    assert latency.percentile([7.0], 99) == 7.0


def test_percentile_of_one_hundred_samples_p99() -> None:
    samples = [float(value) for value in range(1, 101)]
    assert latency.percentile(samples, 99) == pytest.approx(99.01)


@pytest.mark.parametrize(("samples", "q"), [([], 50), ([1.0], -1), ([1.0], 101)])
def test_percentile_rejects_bad_input(samples: list[float], q: float) -> None:
    with pytest.raises(ValueError, match="percentile"):
        latency.percentile(samples, q)


def test_chunks_are_contiguous_and_balanced() -> None:
    assert latency.chunks(list(range(7)), 3) == [[0, 1, 2], [3, 4], [5, 6]]
    assert latency.chunks(list(range(100)), 50)[1] == [2, 3]
    assert latency.chunks([1, 2], 5) == [[1], [2]]  # no empty association
    assert latency.chunks([], 4) == []
    with pytest.raises(ValueError, match="at least 1"):
        latency.chunks([1], 0)


def test_store_log_pairs_requests_with_responses() -> None:
    parsed = latency.parse_store_log(LOG.splitlines())
    assert parsed.latencies == pytest.approx([0.086445, 0.002000])
    assert parsed.failures == []
    assert parsed.unanswered == 0


def test_store_log_reports_failures_and_unanswered_requests() -> None:
    lines = [
        "1796312925 100.000 Sending Store Request (MsgID 1, CT)",
        "1796312925 150.000 Received Store Response (Error: Failed - Out of Resources)",
        "1796312925 200.000 Sending Store Request (MsgID 2, CT)",
        "1796312925 300.000 Sending Store Request (MsgID 3, CT)",
        "1796312925 400.000 Received Store Response (Warning: Coercion Of Data Elements)",
        "1796312925 500.000 Sending Store Request (MsgID 4, CT)",
        "E: Store SCU Failed: DIMSE Failed to receive message",
    ]
    parsed = latency.parse_store_log(lines)
    assert parsed.latencies == pytest.approx([0.05, 0.1])
    assert parsed.failures == [
        "Error: Failed - Out of Resources",
        "Warning: Coercion Of Data Elements",
    ]
    assert parsed.unanswered == 2  # MsgID 2 (followed by 3) and MsgID 4 (log ends)


def test_store_log_ignores_a_response_without_request() -> None:
    parsed = latency.parse_store_log(["1 000.500 Received Store Response (Success)"])
    assert parsed.latencies == []
    assert parsed.unanswered == 0


def test_a_ratio_row_shows_its_value_and_no_second_ratio() -> None:
    figure = Figure("ingest.ct.4.floor", "openpacs / storescp", "x", True)
    figure.entries = {"openpacs-sqlite": {"value": 0.4567}, "orthanc-sqlite": {"value": 1.0}}
    assert cell(figure.entries["openpacs-sqlite"], "x") == "0.46x"
    assert ratio(figure, "openpacs-sqlite", "orthanc-sqlite") == ""


def test_window_spans_first_request_to_last_response_of_all_logs() -> None:
    one = latency.parse_store_log(LOG.splitlines())
    other = latency.parse_store_log(
        [
            "1796312925 700.000 Sending Store Request (MsgID 1, CT)",
            "1796312925 800.000 Received Store Response (Success)",
        ]
    )
    assert latency.window_seconds([one, other]) == pytest.approx(0.301264)
    assert latency.window_seconds([latency.StoreLog()]) is None
