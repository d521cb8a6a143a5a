"""The supervisor's side of the worker protocol, with real child processes that speak it, and
the worker's link: a report on it, and the supervisor's end closing."""

from __future__ import annotations

import socket
import sys
import threading
import time

from openpacs.cli.supervisor import Supervisor, WorkerLink


def _fake_worker(body: str) -> list[str]:
    """A child that takes `--worker N --ready-fd FD` like `openpacs serve` and runs `body`."""
    script = "import socket, sys\nlink = socket.socket(fileno=int(sys.argv[-1]))\n" + body
    return [sys.executable, "-c", script]


def test_a_worker_reporting_a_failure_stops_the_start_with_its_reason() -> None:
    command = _fake_worker("link.sendall(b'dicom.port: 4242 is in use\\n')\n")
    stop = threading.Event()
    assert Supervisor(command, 2, grace=1.0).run(stop) == 2


def test_a_worker_exiting_before_it_is_ready_stops_the_start() -> None:
    stop = threading.Event()
    assert Supervisor(_fake_worker("sys.exit(3)\n"), 1, grace=1.0).run(stop) == 2


def test_ready_workers_are_stopped_when_asked() -> None:
    body = "import signal, time\nlink.sendall(b'ready\\n')\ntime.sleep(60)\n"
    stop = threading.Event()
    timer = threading.Timer(1.5, stop.set)
    timer.start()
    started = time.monotonic()
    try:
        assert Supervisor(_fake_worker(body), 2, grace=1.0).run(stop) == 0
    finally:
        timer.cancel()
    assert time.monotonic() - started < 20


def test_the_link_reports_ready_and_notices_the_supervisor_going() -> None:
    supervisor, worker = socket.socketpair()
    link = WorkerLink(worker.detach())
    gone = threading.Event()
    link.watch(gone.set)
    link.report(None)
    assert supervisor.recv(64) == b"ready\n"
    assert not gone.wait(0.2)
    supervisor.close()
    assert gone.wait(5)
    link.report(None)  # the supervisor is gone: nothing to tell, no error
    link.close()
