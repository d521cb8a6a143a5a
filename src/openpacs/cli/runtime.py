"""Process set-up shared by every `openpacs` process: the log format and the stop signals.
Standard library only, since the supervisor imports it."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

log = logging.getLogger("openpacs")


def configure_logging(level: str, *, worker: int | None = None) -> None:
    who = "" if worker is None else f" worker={worker}"
    logging.basicConfig(
        level=level.upper(),
        format=f"%(asctime)s %(levelname)s %(name)s{who} %(message)s",
        force=True,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT (logged), for the main loop to wait on."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop
