"""Many concurrent C-STORE associations with per-request latency: one storescu process per
association, each logging timestamped lines to its own file.

DCMTK's storescu is the client rather than pynetdicom in the harness: a pynetdicom association
runs two reactor threads that poll every millisecond, so fifty of them in one Python process
would make the client the bottleneck on a small machine; storescu processes cost little CPU
each and sleep while they wait. The latencies are read from the logs afterwards
(`bench.latency`), so measuring adds nothing on the wire.
"""

from __future__ import annotations

import resource
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import latency
from bench.dimse import CALLING_AET, tool
from bench.procs import HOST, dcmtk_env
from bench.results import BenchError


@dataclass
class StoreOutcome:
    seconds: float
    """From the first process's start to the last one's exit."""
    window_seconds: float
    """From the first C-STORE request to the last response (no process start-up)."""
    instances: int
    latencies: list[float]
    client_cpu_seconds: float

    @property
    def instances_per_s(self) -> float:
        return self.instances / self.window_seconds

    def latency_ms(self, q: float) -> float:
        return 1000 * latency.percentile(self.latencies, q)


class TimedStore:
    """`len(groups)` storescu processes started at once, process i sending `groups[i]` in one
    association; `running()` while any is busy, `finish()` waits and reads the logs."""

    def __init__(
        self, port: int, aet: str, groups: Sequence[Sequence[Path]], folder: Path, timeout: float
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "storescu-log.cfg"
        config.write_text(latency.LOG_CONFIG, encoding="ascii")
        self.instances = sum(len(group) for group in groups)
        self.logs = [folder / f"storescu-{index:03d}.log" for index in range(len(groups))]
        self.deadline = time.monotonic() + timeout
        self.cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.start = time.perf_counter()
        self.processes: list[subprocess.Popen[bytes]] = []
        try:
            for group, log in zip(groups, self.logs, strict=True):
                command = [tool("storescu"), "-lc", str(config), "-aet", CALLING_AET]
                command += ["-aec", aet, HOST, str(port), *(str(path) for path in group)]
                with log.open("wb") as output:
                    self.processes.append(
                        subprocess.Popen(
                            command,
                            stdout=output,
                            stderr=subprocess.STDOUT,
                            env=dcmtk_env(),
                            start_new_session=True,
                        )
                    )
        except BaseException:
            self.kill()
            raise
        self.ended: float | None = None

    def running(self) -> bool:
        busy = any(process.poll() is None for process in self.processes)
        if not busy and self.ended is None:
            self.ended = time.perf_counter()
        return busy

    def kill(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)

    def finish(self) -> StoreOutcome:
        """Wait for every process (until the deadline), check exit codes and statuses."""
        try:
            for process in self.processes:
                process.wait(timeout=max(0.1, self.deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.kill()
            raise BenchError("storescu did not finish before its deadline") from None
        self.running()  # sets `ended` if no poll saw the last one end
        seconds = (self.ended or time.perf_counter()) - self.start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        before = self.cpu_before
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        failed = [
            (p.returncode, log.name)
            for p, log in zip(self.processes, self.logs, strict=True)
            if p.returncode
        ]
        if failed:
            raise BenchError(
                f"{len(failed)} storescu failed, e.g. exit {failed[0][0]} ({failed[0][1]})"
            )
        latencies: list[float] = []
        parsed_logs = []
        for log in self.logs:
            parsed = latency.parse_store_log(log.read_text(errors="replace").splitlines())
            if parsed.failures or parsed.unanswered:
                raise BenchError(
                    f"{log.name}: {parsed.unanswered} unanswered, statuses {parsed.failures[:3]}"
                )
            latencies += parsed.latencies
            parsed_logs.append(parsed)
        window = latency.window_seconds(parsed_logs)
        if len(latencies) != self.instances or not window:
            raise BenchError(f"{len(latencies)} C-STORE responses logged for {self.instances}")
        return StoreOutcome(seconds, window, self.instances, latencies, cpu)


def corpus_files(parts: Sequence[Path]) -> list[Path]:
    """Every file of a corpus's part folders, in order (part by part, by name)."""
    return [path for part in parts for path in sorted(part.iterdir()) if path.is_file()]
