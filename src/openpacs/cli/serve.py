"""`openpacs serve`: one process, or a supervisor and DIMSE worker processes.

Python runs one thread at a time per process, so one process cannot use more than one core.
Workers share the DICOM ports (SO_REUSEPORT) and the kernel spreads associations over them;
they share nothing else but the database and the store, which is what makes several servers
safe in the first place (decision 4 of the architecture). This process prepares the schema
once, then becomes the supervisor (`supervisor.py`), which starts the workers, restarts one
that dies, and on SIGTERM passes the signal on and waits for the workers' graceful stops.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
from pathlib import Path

from openpacs import __version__
from openpacs.cli.runtime import configure_logging, stop_on_signals
from openpacs.cli.supervisor import WorkerLink, become_supervisor
from openpacs.config import Settings, load_settings, redacted
from openpacs.errors import OpenPacsError

log = logging.getLogger("openpacs")

_MAX_AUTO_WORKERS = 8
_PR_SET_PDEATHSIG = 1


def worker_count(settings: Settings) -> int:
    return settings.dicom.workers or min(os.cpu_count() or 1, _MAX_AUTO_WORKERS)


def serve(config_file: Path | None, log_level: str, grace: float) -> int:
    """Run until SIGTERM or SIGINT; the exit status."""
    try:
        settings = load_settings(config_file)
        workers = worker_count(settings)
        if workers == 1:
            return _serve_here(settings, grace, share_ports=False, link=None)
        from openpacs.compose import prepare_shared_state

        prepare_shared_state(settings)
    except OpenPacsError as exc:
        log.error("cannot start: %s", exc.reason)
        return 2
    become_supervisor(config_file, log_level, grace, workers)


def serve_worker(
    config_file: Path | None, log_level: str, grace: float, number: int, fd: int
) -> int:
    """One worker started by the supervisor, reporting on its link (file descriptor `fd`)."""
    _die_with_parent()
    configure_logging(log_level, worker=number)
    link = WorkerLink(fd)
    try:
        settings = load_settings(config_file)
    except OpenPacsError as exc:
        link.report(exc.reason)
        return 2
    return _serve_here(settings, grace, share_ports=True, link=link)


def _serve_here(
    settings: Settings, grace: float, *, share_ports: bool, link: WorkerLink | None
) -> int:
    from openpacs.compose import (
        build_archive,
        build_dicom_server,
        build_http_server,
        configure_libraries,
    )

    stop = stop_on_signals()
    if link is not None:

        def supervisor_gone() -> None:
            log.error("the supervisor is gone; stopping")
            stop.set()

        link.watch(supervisor_gone)
    http = None
    archive = None
    try:
        archive = build_archive(settings)
        archive.start()  # its lease, staging leftovers, jobs of servers that are gone
        configure_libraries(archive.staging_dir())
        if settings.http.port:
            # In each worker: HTTP shares its port like DIMSE does; the supervisor has
            # created the admin already (create_admin only for a single process). HTTP
            # starts first, so a worker that answers C-ECHO answers HTTP too.
            http = build_http_server(
                archive,
                settings,
                share_port=share_ports,
                grace_seconds=grace,
                create_admin=not share_ports,
            )
            http.start()
        server = build_dicom_server(archive, settings, share_ports=share_ports)
        server.start()
    except OpenPacsError as exc:
        log.error("cannot start: %s", exc.reason)
        if link is not None:
            link.report(exc.reason)
        if archive is not None:
            archive.close()  # leaves the servers table and hands back what it took over
        return 2
    log.debug("settings %s", redacted(settings))
    if link is None:
        log.info("openpacs %s ready", __version__)
    else:
        link.report(None)
    stop.wait()
    log.info("stopping: refusing new associations, waiting up to %.0f s", grace)
    if http is not None:
        http.stop()
    server.stop(grace_seconds=grace)
    archive.close()
    if link is not None:
        link.close()
    log.info("stopped")
    return 0


def _die_with_parent() -> None:
    """Linux: the kernel kills this worker when the supervisor dies, even by SIGKILL, so no
    orphan keeps serving the port. Elsewhere, and when the supervisor died before this call,
    the worker's link reports it gone and the worker stops."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
