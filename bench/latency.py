"""Per-request latency: percentiles, dealing files among associations, and the C-STORE
latencies read back from storescu's timestamped log.

storescu runs with a log configuration (`-lc`) whose pattern stamps every line with the wall
clock to the microsecond (`%D{%s %Q}`: epoch seconds, then milliseconds with three decimals).
A C-STORE's latency is the time from "Sending Store Request" (logged after the file is read,
just before the first byte goes out) to "Received Store Response": the request on the wire,
the server's work and the response.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

LOG_CONFIG = """\
log4cplus.rootLogger = INFO, console
log4cplus.appender.console = log4cplus::ConsoleAppender
log4cplus.appender.console.layout = log4cplus::PatternLayout
log4cplus.appender.console.layout.ConversionPattern = %D{%s %Q} %m%n
"""
_LINE = re.compile(r"^(\d+) (\d+)\.(\d{3}) (.*)$")
_REQUEST = re.compile(r"Sending Store Request \(MsgID (\d+)")
_RESPONSE = re.compile(r"Received Store Response(?: \((.*)\))?")


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between the closest ranks (as
    numpy's default); ValueError when there are no samples."""
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0-100")
    ordered = sorted(samples)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def chunks(items: Sequence[T], count: int) -> list[list[T]]:
    """`items` cut into `count` contiguous chunks whose sizes differ by at most one (the first
    ones larger); no empty chunk, so fewer than `count` when there are fewer items."""
    if count < 1:
        raise ValueError("count must be at least 1")
    count = min(count, len(items))
    size, extra = divmod(len(items), count) if count else (0, 0)
    result, start = [], 0
    for index in range(count):
        end = start + size + (index < extra)
        result.append(list(items[start:end]))
        start = end
    return result


@dataclass
class StoreLog:
    """What one storescu log says: each answered C-STORE's latency (seconds), the statuses
    that were not Success, and when (epoch microseconds) the first request went out and the
    last response came in."""

    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    unanswered: int = 0
    first_request: int | None = None
    last_response: int | None = None


def parse_store_log(lines: Iterable[str]) -> StoreLog:
    """Pair each "Sending Store Request" with the next "Received Store Response" of the same
    log (storescu sends one request at a time); lines without a timestamp (progress dots,
    other output) are ignored."""
    found = StoreLog()
    pending: int | None = None
    for line in lines:
        match = _LINE.match(line.strip())
        if match is None:
            continue
        seconds, milliseconds, microseconds = (int(group) for group in match.groups()[:3])
        stamp = (seconds * 1000 + milliseconds) * 1000 + microseconds  # integer: no rounding
        message = match.group(4)
        if _REQUEST.search(message):
            if pending is not None:
                found.unanswered += 1
            pending = stamp
            if found.first_request is None:
                found.first_request = stamp
            continue
        response = _RESPONSE.search(message)
        if response is None or pending is None:
            continue
        found.latencies.append((stamp - pending) / 1e6)
        found.last_response = stamp
        pending = None
        status = response.group(1) or ""
        if status != "Success":
            found.failures.append(status or "no status")
    if pending is not None:
        found.unanswered += 1
    return found


def window_seconds(logs: Iterable[StoreLog]) -> float | None:
    """Seconds from the first request of any log to the last response of any: the time the
    server was storing, without the clients' start-up and association set-up before it."""
    firsts = [log.first_request for log in logs if log.first_request is not None]
    lasts = [log.last_response for log in logs if log.last_response is not None]
    if not firsts or not lasts:
        return None
    return (max(lasts) - min(firsts)) / 1e6
