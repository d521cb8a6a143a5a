"""`[dicom] workers`: several processes share the DICOM port; SIGTERM stops them all, a dead
worker is replaced, and a killed supervisor takes its workers with it."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from pathlib import Path

import pytest

from tests.support import scu
from tests.support.node import write_config
from tests.support.process import ServerProcess, free_port, serving

pytestmark = pytest.mark.slow


def _children(supervisor: int) -> dict[int, bytes]:
    """The supervisor's child processes and their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == supervisor:
            found[int(entry.name)] = command
    return found


def _workers(supervisor: int) -> set[int]:
    """The supervisor's worker processes: `openpacs serve ... --worker N`."""
    return {pid for pid, command in _children(supervisor).items() if b"\0--worker\0" in command}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _start(tmp_path: Path) -> tuple[Path, int]:
    port = free_port()
    return write_config(tmp_path, {"dicom": {"port": port, "workers": 2}}), port


def _ready(server: ServerProcess) -> set[int]:
    server.wait_for_log("ready workers=2", timeout=60)
    workers = _workers(server.process.pid)
    assert len(workers) == 2
    return workers


def test_workers_share_the_port_and_stop_together(tmp_path: Path) -> None:
    config, port = _start(tmp_path)
    with serving(config, port=port, log_dir=tmp_path) as server:
        workers = _ready(server)
        for _ in range(24):  # all on one worker by chance: 2 in 2**24
            assert scu.echo(port) == 0x0000
        served = set(re.findall(r"worker=(\d) op=C-ECHO", server.stderr()))
        assert served == {"0", "1"}
        server.terminate()
        assert server.wait_exit(30) == 0
        assert "stopped" in server.stderr()
        assert not any(_alive(pid) for pid in workers)


def test_a_killed_supervisor_leaves_no_worker_behind(tmp_path: Path) -> None:
    config, port = _start(tmp_path)
    with serving(config, port=port, log_dir=tmp_path) as server:
        workers = _ready(server)
        server.kill()
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in workers)
    # Nothing listens on the port any more. A killed worker's leader shows as a zombie while
    # its other threads still exit and hold its sockets, so allow them a moment to go.
    assert _refused_within(port, 10), "something still listens on the port"


def _refused_within(port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        except ConnectionRefusedError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def test_the_supervisor_runs_its_workers_and_nothing_else(tmp_path: Path) -> None:
    """Plain child processes: no multiprocessing resource tracker beside the workers."""
    config, port = _start(tmp_path)
    with serving(config, port=port, log_dir=tmp_path) as server:
        workers = _ready(server)
        assert set(_children(server.process.pid)) == workers


def test_a_dead_worker_is_replaced(tmp_path: Path) -> None:
    config, port = _start(tmp_path)
    with serving(config, port=port, log_dir=tmp_path) as server:
        workers = _ready(server)
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        server.wait_for_log("restarted", timeout=60)
        assert f"exited with status {-signal.SIGKILL}" in server.stderr()
        now = _workers(server.process.pid)
        assert len(now) == 2
        assert victim not in now
        for _ in range(8):
            assert scu.echo(port) == 0x0000
        server.terminate()
        assert server.wait_exit(30) == 0
        assert not any(_alive(pid) for pid in now)


def test_the_supervisor_holds_no_library_of_the_serving_stack(tmp_path: Path) -> None:
    """After preparing, serve replaced its process image: pydantic, SQLAlchemy and pydicom's
    numpy are no longer mapped in the supervisor."""
    config, port = _start(tmp_path)
    with serving(config, port=port, log_dir=tmp_path) as server:
        _ready(server)
        maps = Path(f"/proc/{server.process.pid}/maps").read_text()
        for library in ("pydantic_core", "sqlalchemy", "numpy"):
            assert library not in maps
