"""Run the real `openpacs serve` as a child process, the way an operator or a container does.

Each server gets a free loopback port, its stderr goes to a file (read back for diagnostics and
log assertions), readiness is a C-ECHO that succeeds before a deadline (never a bare sleep), and
the process is always killed and reaped when the test is done with it.
"""

from __future__ import annotations

import gc
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pynetdicom.association import Association
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from tests.support.scu import HOST, make_ae

#: Seconds a server may take from exec to answering C-ECHO (imports take ~2 s on a slow box).
START_TIMEOUT = 60.0  # a bound, not a wait: start-up on a loaded 2-core machine
#: Seconds a CLI invocation that is expected to end on its own may take.
CLI_TIMEOUT = 30.0
_POLL = 0.05


def free_port() -> int:
    """A loopback port that was free a moment ago (bind port 0, read it, close it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def child_environ(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any OPENPACS_* variable, plus `extra`."""
    environ = {k: v for k, v in os.environ.items() if not k.upper().startswith("OPENPACS_")}
    environ.update(extra or {})
    return environ


def openpacs_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "openpacs", *args]


def run_cli(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = CLI_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run `python -m openpacs ARGS` to completion; output captured as text."""
    return subprocess.run(
        openpacs_command(*args),
        cwd=cwd,
        env=child_environ(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def try_associate(port: int, contexts: Sequence[str], *, timeout: float = 5.0) -> Association:
    """An association attempt that may fail, from the main thread.

    pynetdicom 3 drops (without closing) its socket when the connection is refused, a
    ResourceWarning that our warnings-as-errors setting would turn into an unraisable
    exception; that library leak is silenced here and only here.
    """
    ae = make_ae("PROBE")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    for context in contexts:
        ae.add_requested_context(context)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        assoc = ae.associate(HOST, port, ae_title="OPENPACS")
        if not assoc.is_established:
            # The dropped socket may still be held by the association's threads as they
            # wind down: let them end before collecting it, or it is found in a later test.
            for thread in (assoc, assoc.dul):
                if thread.ident is not None:
                    thread.join(timeout)
        gc.collect()
    return assoc


def echo_status(port: int, *, timeout: float = 5.0) -> int | None:
    """The C-ECHO status, or None when no association could be established."""
    assoc = try_associate(port, [Verification], timeout=timeout)
    if not assoc.is_established:
        return None
    try:
        status = assoc.send_c_echo()
        return int(status.Status) if "Status" in status else None
    finally:
        assoc.release()


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    port: int
    stderr_path: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def diagnostics(self) -> str:
        return f"openpacs exit code {self.process.poll()}, stderr:\n{self.stderr()}"

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"openpacs exited before it was ready\n{self.diagnostics()}")
            if echo_status(self.port) == 0x0000:
                return
            time.sleep(_POLL)
        raise AssertionError(f"no C-ECHO answer within {timeout} s\n{self.diagnostics()}")

    def wait_for_log(self, text: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.stderr():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{text!r} not logged within {timeout} s\n{self.diagnostics()}"
                )
            time.sleep(_POLL)

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=CLI_TIMEOUT)

    def stop_now(self) -> None:
        """SIGKILL the server if it still runs, and reap it."""
        if self.process.poll() is None:
            self.kill()
        self.process.wait(timeout=CLI_TIMEOUT)

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"openpacs still running {timeout} s later\n{self.diagnostics()}"
            ) from None


def spawn(
    config: Path | None,
    *,
    port: int,
    log_dir: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    name: str = "server",
) -> ServerProcess:
    """Start `openpacs serve [--config CONFIG] ARGS` and return at once (not yet ready: see
    `ServerProcess.wait_ready`); the caller kills and reaps it."""
    command = openpacs_command("serve", *args)
    if config is not None:
        command += ["--config", str(config)]
    stderr_path = log_dir / f"{name}.stderr.log"
    with (log_dir / f"{name}.stdout.log").open("wb") as stdout, stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=child_environ(env),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
        )
    return ServerProcess(process, port, stderr_path)


@contextmanager
def serving(
    config: Path | None,
    *,
    port: int,
    log_dir: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    name: str = "server",
) -> Iterator[ServerProcess]:
    """`openpacs serve [--config CONFIG] ARGS`, ready to answer C-ECHO on `port`.

    The process is SIGKILLed on the way out if the test left it running.
    """
    server = spawn(config, port=port, log_dir=log_dir, cwd=cwd, env=env, args=args, name=name)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop_now()
