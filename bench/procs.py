"""Child processes of the harness: started in their own session, logged to files, waited for
with a deadline, and always killed (with their whole process group) when the harness is done.

Also the /proc readings the report needs: resident memory and CPU time of a process tree.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from bench.results import BenchError

HOST = "127.0.0.1"
POLL = 0.05
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_LIVE: set[Child] = set()


def free_port() -> int:
    """A loopback port that was free a moment ago (bind port 0, read it, close it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_open(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def dcmtk_env() -> dict[str, str]:
    """Debian's DCMTK leaves Nagle's algorithm on unless TCP_NODELAY is set."""
    return {**os.environ, "TCP_NODELAY": "1"}


def child_environ(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without OPENPACS_* variables (they would override the config)."""
    environ = {k: v for k, v in os.environ.items() if not k.upper().startswith("OPENPACS_")}
    environ.update(extra or {})
    return environ


class Child:
    """A long-running process (a server) in its own process group."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        log_dir: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )
        _LIVE.add(self)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, probe: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll `probe` until it is true; fail early when the process has exited."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise BenchError(
                    f"{self.name} exited (code {self.process.returncode}) before {what}: "
                    f"{self.log_tail(5)}"
                )
            if probe():
                return
            time.sleep(POLL)
        raise BenchError(f"{self.name}: no {what} within {timeout:.0f} s")

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it after `grace` seconds, reap."""
        _LIVE.discard(self)
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=grace)
        # the leader may be gone while children of its group (storescp --fork) remain
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)


def kill_all() -> None:
    """Last resort on the way out: stop every child still registered."""
    for child in list(_LIVE):
        child.stop(grace=3.0)


# --- /proc readings ----------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # fields from "state" on


def tree_pids(root: int) -> list[int]:
    """`root` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def rss_mb(root: int) -> float:
    """Resident memory (VmRSS) summed over the process tree, in MB (10^6 bytes)."""
    total_kb = 0
    for pid in tree_pids(root):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb * 1024 / 1e6


def cpu_seconds(root: int) -> float:
    """User + system CPU time of the tree, including reaped children, in seconds."""
    ticks = 0
    for pid in tree_pids(root):
        fields = _stat_fields(pid)
        if fields is not None:  # utime, stime, cutime, cstime are fields 14-17 of stat
            ticks += sum(int(v) for v in fields[11:15])
    return ticks / _CLK_TCK
