"""DCMTK's storescp as a real C-MOVE destination, and small helpers for DCMTK tool tests."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from tests.support.dcmtk import dcmtk_env, require, run

HOST = "127.0.0.1"
READY_SECONDS = 10.0


def free_port() -> int:
    """A loopback port that was free a moment ago (bound to port 0, then closed)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def output(result: subprocess.CompletedProcess[str]) -> str:
    """What a tool said, for assertion messages."""
    return f"exit status {result.returncode}\n{result.stdout}\n{result.stderr}"


@dataclass(frozen=True)
class StoreScp:
    aet: str
    port: int
    folder: Path
    """Where storescp writes what it receives (one file per instance)."""
    log: Path

    def received(self) -> list[Dataset]:
        return [dcmread(path) for path in sorted(self.folder.iterdir()) if path.is_file()]


@contextmanager
def storescp(folder: Path, port: int, aet: str = "STORESCP") -> Iterator[StoreScp]:
    """DCMTK's storescp, single process, listening on `port` until the block ends."""
    received = folder / "received"
    received.mkdir(parents=True)
    peer = StoreScp(aet, port, received, folder / "storescp.log")
    command = [require("storescp"), "--aetitle", aet, "--output-directory", str(received)]
    with peer.log.open("w") as log:
        process = subprocess.Popen(
            [*command, str(port)], stdout=log, stderr=subprocess.STDOUT, env=dcmtk_env()
        )
        try:
            _wait_until_accepting(process, peer)
            yield peer
        finally:
            process.kill()
            process.wait(timeout=10)


def _wait_until_accepting(process: subprocess.Popen[bytes], peer: StoreScp) -> None:
    """Poll with C-ECHO (bounded) until storescp accepts associations."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"storescp exited with {process.returncode}: {peer.log.read_text()}")
        echo = run("echoscu", "-to", "2", "-aec", peer.aet, HOST, str(peer.port), timeout=10)
        if echo.returncode == 0:
            return
        time.sleep(0.05)
    pytest.fail(f"storescp did not accept associations within {READY_SECONDS} s")
