"""The supervisor of `openpacs serve` and its link with each worker.

Workers are plain child processes (`python -m openpacs serve ... --worker N --ready-fd FD`),
not multiprocessing ones: nothing is inherited but the file descriptors passed on purpose, and
there is no resource-tracker process. Each worker gets one end of a socket pair, its link: the
worker reports "ready" (or why it cannot start) on it, and end-of-file on it tells the worker
that the supervisor is gone, however it died.

`openpacs serve` loads the settings and prepares the shared state (which needs pydantic and
SQLAlchemy), then replaces its own process image with `openpacs serve ... --supervise N`: the
same process, signals and output, without what preparing loaded (about 45 MB). This module
imports the standard library only, since everything the supervisor imports stays resident
for nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn, cast

from openpacs.cli.runtime import stop_on_signals

log = logging.getLogger("openpacs")

_READY_SECONDS = 120.0
_RESTARTS_PER_MINUTE = 5
_READY = "ready"


class WorkerLink:
    """The worker's end of its link to the supervisor."""

    def __init__(self, fd: int) -> None:
        self._socket = socket.socket(fileno=fd)

    def report(self, failure: str | None) -> None:
        """Tell the supervisor this worker serves (`failure` None) or why it cannot.

        A supervisor gone by now is no error here: `watch` has seen it go and stops us."""
        with contextlib.suppress(OSError):
            self._socket.sendall(f"{failure or _READY}\n".encode())

    def watch(self, on_gone: Callable[[], None]) -> None:
        """Call `on_gone` (on a daemon thread) once the supervisor's end closes."""

        def wait() -> None:
            try:
                while self._socket.recv(64):
                    pass  # the supervisor never writes; data would be ignored
            except OSError:
                pass
            on_gone()

        threading.Thread(target=wait, name="openpacs-supervisor-link", daemon=True).start()

    def close(self) -> None:
        self._socket.close()


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    link: socket.socket


class Supervisor:
    """Starts `count` workers, restarts one that dies, and on `stop` passes SIGTERM on and
    waits for the workers' graceful stops (killing those still running after `grace` + 10 s).
    """

    def __init__(self, command: Sequence[str], count: int, grace: float) -> None:
        self._command = list(command)
        self._count = count
        self._grace = grace
        self._workers: dict[int, _Worker] = {}
        self._restarts: list[float] = []

    def run(self, stop: threading.Event) -> int:
        """Serve until `stop` is set; the exit status."""
        for number in range(self._count):
            self._start(number)
        failure = self._await_ready(range(self._count))
        if failure is not None:
            log.error("cannot start: %s", failure)
            self._stop_workers()
            return 2
        from openpacs import __version__

        log.info("openpacs %s ready workers=%d", __version__, self._count)
        while not stop.wait(1.0):
            self._replace_dead_workers()
        log.info("stopping: asking %d workers to finish", len(self._workers))
        self._stop_workers()
        log.info("stopped")
        return 0

    def _start(self, number: int) -> None:
        ours, theirs = socket.socketpair()
        try:
            command = [*self._command, "--worker", str(number), "--ready-fd", str(theirs.fileno())]
            process = subprocess.Popen(
                command, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._workers[number] = _Worker(process, ours)

    def _await_ready(self, numbers: Sequence[int]) -> str | None:
        """None once every worker of `numbers` reported ready; otherwise the first failure."""
        deadline = time.monotonic() + _READY_SECONDS
        waiting = {self._workers[n].link: n for n in numbers}
        with selectors.DefaultSelector() as selector:
            for link in waiting:
                selector.register(link, selectors.EVENT_READ)
            while waiting:
                events = selector.select(timeout=max(deadline - time.monotonic(), 0.0))
                if not events:
                    return f"workers not ready within {_READY_SECONDS:.0f} s"
                for key, _ in events:
                    link = cast(socket.socket, key.fileobj)
                    number = waiting.pop(link)
                    selector.unregister(link)
                    message = _read_line(link)
                    if message != _READY:
                        return message or self._exit_reason(number)
        return None

    def _exit_reason(self, number: int) -> str:
        process = self._workers[number].process
        try:
            status = process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return f"worker {number} closed its link before it was ready"
        return f"worker {number} exited with status {status} before it was ready"

    def _replace_dead_workers(self) -> None:
        for number, worker in list(self._workers.items()):
            status = worker.process.poll()
            if status is None:
                continue
            worker.link.close()
            now = time.monotonic()
            self._restarts = [t for t in self._restarts if now - t < 60] + [now]
            log.error("worker %d exited with status %s", number, status)
            if len(self._restarts) > _RESTARTS_PER_MINUTE:
                log.error("workers keep dying; not restarting worker %d", number)
                del self._workers[number]
                continue
            self._start(number)
            failure = self._await_ready([number])
            if failure is None:
                log.info("worker %d restarted", number)
            else:
                log.error("worker %d cannot restart: %s", number, failure)

    def _stop_workers(self) -> None:
        for worker in self._workers.values():
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self._grace + 10
        for worker in self._workers.values():
            try:
                worker.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log.warning("killing worker pid=%s after the grace period", worker.process.pid)
                worker.process.kill()
                worker.process.wait(timeout=5)
            worker.link.close()


def _read_line(link: socket.socket) -> str:
    """One line from a worker ("" when it closed its end first)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = link.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.decode("utf-8", errors="replace").strip()


def become_supervisor(
    config_file: os.PathLike[str] | None, log_level: str, grace: float, count: int
) -> NoReturn:
    """Replace this process with the supervisor of `count` workers (see the module docstring)."""
    command = [*_serve_command(config_file, log_level, grace), "--supervise", str(count)]
    for stream in (sys.stdout, sys.stderr):  # a generated admin password may be buffered
        stream.flush()
    os.execv(sys.executable, command)  # noqa: S606 - our own interpreter, no shell


def supervise(
    config_file: os.PathLike[str] | None, log_level: str, grace: float, count: int
) -> int:
    """Run the supervisor until SIGTERM or SIGINT; the exit status."""
    stop = stop_on_signals()
    return Supervisor(_serve_command(config_file, log_level, grace), count, grace).run(stop)


def _serve_command(config_file: os.PathLike[str] | None, log_level: str, grace: float) -> list[str]:
    """`python -m openpacs serve` with the supervisor's own options (workers add theirs)."""
    command = [sys.executable, "-m", "openpacs", "serve", "--log-level", log_level]
    command += ["--grace", repr(grace)]
    if config_file is not None:
        command += ["--config", os.fspath(config_file)]
    return command
