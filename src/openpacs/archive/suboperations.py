"""The C-STORE sub-operations of one C-GET or C-MOVE, counted as the final response counts them
(PS3.4 C.4.2.1.4 and C.4.3.1.3), and the audit event that reports them.

A retrieve whose sub-operations failed is not a success: its final status is Warning (0xB000),
or Failure (0xA702) when every one failed, and its audit event says "failure" with the counts
and the SOP Instance UIDs that did not arrive. The front door tells this tally which instances
it handed to the sender (`sent`) and each C-STORE response it got back (`answered`, possibly
from another thread and before `sent`); an instance sent but never answered failed, as the
sender counts it (the C-STORE could not be sent at all).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

from openpacs.archive.records import AuditEvent

SUCCESS = 0x0000
WARNING = 0xB000
ALL_FAILED = 0xA702  # PS3.4 C.4.2.1.5: unable to perform sub-operations
CANCELLED = 0xFE00
_WARNINGS = frozenset({0x0107, 0x0116})  # PS3.7 C.4: attribute list error, value out of range
_LISTED_UIDS = 1000  # the audit detail names at most this many failed instances


def storage_outcome(status: int) -> str:
    """ "success", "warning" or "failure" for a C-STORE response status (PS3.4 B.2.3)."""
    if status == SUCCESS:
        return "success"
    if status in _WARNINGS or 0xB000 <= status <= 0xBFFF:
        return "warning"
    return "failure"


@dataclass(frozen=True)
class SubOperationCounts:
    completed: int
    failed: int
    warning: int
    failed_uids: tuple[str, ...]

    @property
    def final_status(self) -> int:
        """The status of the final response once every sub-operation ran."""
        if not self.failed and not self.warning:
            return SUCCESS
        if self.failed and not self.completed and not self.warning:
            return ALL_FAILED
        return WARNING

    def detail(self) -> str:
        text = f"completed={self.completed} failed={self.failed} warning={self.warning}"
        if self.failed_uids:
            listed = self.failed_uids[:_LISTED_UIDS]
            text += " failed_sop_uids=" + ",".join(listed)
            if len(self.failed_uids) > len(listed):
                text += f",...(+{len(self.failed_uids) - len(listed)})"
        return text


class SubOperations:
    """Thread-safe tally of one retrieve's sub-operations."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent: list[str] = []
        self._answers: dict[str, int] = {}

    def sent(self, sop_uid: str) -> None:
        with self._lock:
            self._sent.append(sop_uid)

    def answered(self, sop_uid: str, status: int) -> None:
        with self._lock:
            self._answers[sop_uid] = status

    def counts(self) -> SubOperationCounts:
        completed = warning = 0
        failed: list[str] = []
        with self._lock:
            for sop_uid in self._sent:
                status = self._answers.get(sop_uid)
                outcome = "failure" if status is None else storage_outcome(status)
                if outcome == "success":
                    completed += 1
                elif outcome == "warning":
                    warning += 1
                else:
                    failed.append(sop_uid)
        return SubOperationCounts(completed, len(failed), warning, tuple(failed))


def operation_event(
    base: AuditEvent, status: int, counts: SubOperationCounts | None = None
) -> AuditEvent:
    """`base` (who, from where, what) completed with the operation's outcome.

    `status` is the operation's own status (a refused identifier, a cancel). For a retrieve
    that ran, `counts` decide: the final status is the one the sub-operations make, and any
    failed sub-operation makes the outcome a failure (only warnings: still a success)."""
    detail = f"status=0x{status:04X}"
    if counts is not None:
        if status == SUCCESS:
            status = counts.final_status
            detail = f"status=0x{status:04X}"
        detail += " " + counts.detail()
    if status == SUCCESS or (status == WARNING and counts is not None and not counts.failed):
        outcome = "success"
    elif status == CANCELLED:
        outcome = "cancelled"
    else:
        outcome = "failure"
    if base.detail:
        detail += " " + base.detail
    return replace(base, outcome=outcome, detail=detail)
