"""`openpacs serve`: one process, or a supervisor and DIMSE worker processes.

Python runs one thread at a time per process, so one process cannot use more than one core.
Workers share the DICOM ports (SO_REUSEPORT) and the kernel spreads associations over them;
they share nothing else but the database and the store, which is what makes several servers
safe in the first place (decision 4 of the architecture). The supervisor prepares the schema
once, starts the workers, restarts one that dies, and on SIGTERM passes the signal on and
waits for the workers' graceful stops.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from pathlib import Path
from types import FrameType

from openpacs import __version__
from openpacs.config import Settings, load_settings, redacted
from openpacs.errors import OpenPacsError

log = logging.getLogger("openpacs")

_MAX_AUTO_WORKERS = 8
_READY_SECONDS = 120.0
_RESTARTS_PER_MINUTE = 5
_PR_SET_PDEATHSIG = 1


def worker_count(settings: Settings) -> int:
    return settings.dicom.workers or min(os.cpu_count() or 1, _MAX_AUTO_WORKERS)


def serve(config_file: Path | None, log_level: str, grace: float) -> int:
    """Run until SIGTERM or SIGINT; the exit status."""
    try:
        settings = load_settings(config_file)
        workers = worker_count(settings)
        if workers == 1:
            return _serve_here(settings, grace, share_ports=False, ready=None)
        from openpacs.compose import prepare_shared_state

        prepare_shared_state(settings)
    except OpenPacsError as exc:
        log.error("cannot start: %s", exc.reason)
        return 2
    return _Supervisor(config_file, log_level, grace, workers).run()


def _serve_here(
    settings: Settings, grace: float, *, share_ports: bool, ready: Queue[str | None] | None
) -> int:
    from openpacs.compose import (
        build_archive,
        build_dicom_server,
        build_http_server,
        configure_libraries,
    )

    stop = _stop_on_signals()
    http = None
    try:
        archive = build_archive(settings)
        configure_libraries(archive.staging_dir())
        server = build_dicom_server(archive, settings, share_ports=share_ports)
        server.start()
        if settings.http.port:
            # In each worker: HTTP shares its port like DIMSE does; the supervisor has
            # created the admin already (create_admin only for a single process).
            http = build_http_server(
                archive,
                settings,
                share_port=share_ports,
                grace_seconds=grace,
                create_admin=not share_ports,
            )
            http.start()
    except OpenPacsError as exc:
        log.error("cannot start: %s", exc.reason)
        if ready is not None:
            ready.put(exc.reason)
        return 2
    log.debug("settings %s", redacted(settings))
    if ready is None:
        log.info("openpacs %s ready", __version__)
    else:
        ready.put(None)
    parent = os.getppid()
    while not stop.wait(1.0):
        if ready is not None and os.getppid() != parent:
            log.error("the supervisor is gone; stopping")
            break
    log.info("stopping: refusing new associations, waiting up to %.0f s", grace)
    if http is not None:
        http.stop()
    server.stop(grace_seconds=grace)
    archive.close()
    log.info("stopped")
    return 0


def _worker_main(
    config_file: Path | None, log_level: str, grace: float, number: int, ready: Queue[str | None]
) -> None:
    _die_with_parent()
    configure_logging(log_level, worker=number)
    try:
        settings = load_settings(config_file)
    except OpenPacsError as exc:
        ready.put(exc.reason)
        raise SystemExit(2) from None
    raise SystemExit(_serve_here(settings, grace, share_ports=True, ready=ready))


class _Supervisor:
    def __init__(self, config_file: Path | None, log_level: str, grace: float, workers: int):
        self._args = (config_file, log_level, grace)
        self._grace = grace
        self._context = multiprocessing.get_context("spawn")
        self._ready: Queue[str | None] = self._context.Queue()
        self._workers: dict[int, BaseProcess] = {}
        self._count = workers
        self._restarts: list[float] = []

    def run(self) -> int:
        stop = _stop_on_signals()
        for number in range(self._count):
            self._start(number)
        failure = self._await_ready(self._count)
        if failure is not None:
            log.error("cannot start: %s", failure)
            self._stop_workers()
            return 2
        log.info("openpacs %s ready workers=%d", __version__, self._count)
        while not stop.wait(1.0):
            self._replace_dead_workers()
        log.info("stopping: asking %d workers to finish", len(self._workers))
        self._stop_workers()
        log.info("stopped")
        return 0

    def _start(self, number: int) -> None:
        process = self._context.Process(
            target=_worker_main,
            args=(*self._args, number, self._ready),
            name=f"openpacs-worker-{number}",
        )
        process.start()
        self._workers[number] = process

    def _await_ready(self, count: int) -> str | None:
        deadline = time.monotonic() + _READY_SECONDS
        for _ in range(count):
            remaining = deadline - time.monotonic()
            try:
                message = self._ready.get(timeout=max(remaining, 0.1))
            except Exception:  # queue.Empty
                return f"workers not ready within {_READY_SECONDS:.0f} s"
            if message is not None:
                return message
        return None

    def _replace_dead_workers(self) -> None:
        for number, process in list(self._workers.items()):
            if process.is_alive():
                continue
            now = time.monotonic()
            self._restarts = [t for t in self._restarts if now - t < 60] + [now]
            log.error("worker %d exited with status %s", number, process.exitcode)
            if len(self._restarts) > _RESTARTS_PER_MINUTE:
                log.error("workers keep dying; not restarting worker %d", number)
                del self._workers[number]
                continue
            self._start(number)
            failure = self._await_ready(1)
            if failure is not None:
                log.error("worker %d cannot restart: %s", number, failure)

    def _stop_workers(self) -> None:
        for process in self._workers.values():
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self._grace + 10
        for process in self._workers.values():
            process.join(timeout=max(deadline - time.monotonic(), 0.1))
            if process.is_alive():
                log.warning("killing worker pid=%s after the grace period", process.pid)
                process.kill()
                process.join(timeout=5)


def _die_with_parent() -> None:
    """Linux: the kernel kills this worker when the supervisor dies, even by SIGKILL, so no
    orphan keeps serving the port. Elsewhere the worker notices its parent is gone."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop


def configure_logging(level: str, *, worker: int | None = None) -> None:
    who = "" if worker is None else f" worker={worker}"
    logging.basicConfig(
        level=level.upper(),
        format=f"%(asctime)s %(levelname)s %(name)s{who} %(message)s",
        force=True,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
