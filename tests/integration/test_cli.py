"""The `openpacs` command as an operator runs it: help, version, refusing a bad configuration,
the embedded default set-up, and a graceful stop on SIGTERM.

Every server here is the real `python -m openpacs serve` in a child process (tests/support/
process.py): a free loopback port, readiness by C-ECHO, stderr in a file, killed at the end.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian

import openpacs
from tests.support.corpus import CT_IMAGE_STORAGE, small_instances, synthetic_ct_series
from tests.support.node import write_config
from tests.support.process import (
    ServerProcess,
    echo_status,
    free_port,
    run_cli,
    serving,
    try_associate,
)
from tests.support.scu import HOST, association, find, identifier, store

GRACE = 10.0
VERIFICATION = "1.2.840.10008.1.1"
FIND_MODEL = "1.2.840.10008.5.1.4.1.2.2.1"  # Study Root Query/Retrieve Information Model - FIND


def _script() -> str:
    """The `openpacs` console script of this interpreter's environment."""
    beside = Path(sys.executable).with_name("openpacs")
    found = str(beside) if beside.is_file() else shutil.which("openpacs")
    assert found, "the openpacs console script is not installed"
    return found


# --- help and version --------------------------------------------------------------------------


def test_help_lists_the_commands() -> None:
    result = run_cli(["--help"])
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout
    assert "serve" in result.stdout


def test_serve_help_documents_its_options() -> None:
    result = run_cli(["serve", "--help"])
    assert result.returncode == 0, result.stderr
    for option in ("--config", "--log-level", "--grace"):
        assert option in result.stdout


def test_version_is_the_package_version_from_both_entry_points() -> None:
    script = subprocess.run(
        [_script(), "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    module = run_cli(["--version"])
    assert script.returncode == module.returncode == 0, script.stderr + module.stderr
    assert openpacs.__version__ in script.stdout.split()
    assert script.stdout == module.stdout


# --- a bad configuration stops start-up --------------------------------------------------------


def _bad_config(case: str, folder: Path) -> tuple[Path, dict[str, str], list[str]]:
    """(config file, extra environment, texts stderr must show) for one bad configuration."""
    port = free_port()
    sections: dict[str, dict[str, Any]] = {"dicom": {"port": port}}
    env: dict[str, str] = {}
    expected: list[str]
    if case == "unknown-key":
        sections["dicom"]["prot"] = 104
        expected = ["dicom.prot", "unknown key"]
    elif case == "port-out-of-range":
        sections["dicom"]["port"] = 70000
        expected = ["dicom.port", "70000"]
    elif case == "missing-tls-files":
        sections["dicom"].update(
            tls_port=free_port(),
            tls_cert=str(folder / "absent-cert.pem"),
            tls_key=str(folder / "absent-key.pem"),
        )
        expected = ["dicom.tls_cert", "absent-cert.pem", "dicom.tls_key", "absent-key.pem"]
    elif case == "tls-port-without-files":
        sections["dicom"]["tls_port"] = free_port()
        expected = ["dicom.tls_cert", "dicom.tls_key", "required"]
    elif case == "unknown-env-key":
        env["OPENPACS_DICOM__PROT"] = "104"
        expected = ["OPENPACS_DICOM__PROT"]
    elif case == "unknown-env-section":
        env["OPENPACS_DICM__PORT"] = "104"
        expected = ["OPENPACS_DICM__PORT"]
    else:
        raise AssertionError(case)
    return write_config(folder, sections), env, expected


@pytest.mark.parametrize(
    "case",
    [
        "unknown-key",
        "port-out-of-range",
        "missing-tls-files",
        "tls-port-without-files",
        "unknown-env-key",
        "unknown-env-section",
    ],
)
def test_bad_configuration_stops_start_up(case: str, tmp_path: Path) -> None:
    config, env, expected = _bad_config(case, tmp_path)
    started = time.monotonic()
    result = run_cli(["serve", "--config", str(config)], env=env, timeout=20)
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert elapsed < 15, f"took {elapsed:.1f} s to give up"
    for text in expected:
        assert text in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "blobs").exists(), "storage touched before the settings were valid"


def test_missing_config_file_stops_start_up(tmp_path: Path) -> None:
    result = run_cli(["serve", "--config", str(tmp_path / "absent.toml")], timeout=20)
    assert result.returncode != 0
    assert "absent.toml" in result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def test_port_in_use_stops_start_up_naming_the_key(tmp_path: Path) -> None:
    """The configured port taken by another program is an operator's problem with dicom.port,
    told as one line like any other configuration problem, not as a traceback."""
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path, {"dicom": {"port": port}})
        result = run_cli(["serve", "--config", str(config)], timeout=20)
    assert result.returncode != 0
    assert "dicom.port" in result.stderr, result.stderr
    assert str(port) in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr


# --- the embedded default ----------------------------------------------------------------------


@pytest.mark.slow
def test_default_run_uses_sqlite_and_a_data_folder(tmp_path: Path) -> None:
    port = free_port()
    (workdir := tmp_path / "work").mkdir()
    http_port = free_port()  # not the default 8042: other test runs may hold it
    env = {"OPENPACS_DICOM__PORT": str(port), "OPENPACS_HTTP__PORT": str(http_port)}
    with serving(None, port=port, log_dir=tmp_path, cwd=workdir, env=env) as server:
        assert "created user 'admin' with password" in server.stderr()
        health = httpx.get(f"http://127.0.0.1:{http_port}/health", timeout=30)
        assert health.json() == {"status": "ok"}
        assert (workdir / "data" / "index.db").is_file()
        assert (workdir / "data" / "blobs").is_dir()
        assert f"port={port} aet=OPENPACS" in server.stderr()
        assert echo_status(port) == 0x0000

        ds = next(small_instances(1, 1, 1))
        statuses = store(port, [ds])
        assert [s.Status for s in statuses] == [0x0000], server.diagnostics()
        query = identifier(
            "IMAGE",
            StudyInstanceUID=ds.StudyInstanceUID,
            SeriesInstanceUID=ds.SeriesInstanceUID,
            SOPInstanceUID=ds.SOPInstanceUID,
            RetrieveAETitle="",
        )
        matches, final = find(port, query)
        assert final.Status == 0x0000
        assert [m.SOPInstanceUID for m in matches] == [ds.SOPInstanceUID]
        blobs = [p for p in (workdir / "data" / "blobs").rglob("*") if p.is_file()]
        assert len([p for p in blobs if ".staging" not in p.parts]) == 1
        # The only place a peer sees our AE title: asked for, it must come back (PS3.4
        # C.4.1.1.3.2), and by default it is OPENPACS.
        assert matches[0].get("RetrieveAETitle") == "OPENPACS", matches[0]


# --- SIGTERM -----------------------------------------------------------------------------------


def _refuses_connections(port: int, timeout: float) -> bool:
    """True once a plain TCP connect to `port` is refused, within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=1):
                pass
        except OSError:
            return True
        time.sleep(0.05)
    return False


def _association_fails(port: int) -> bool:
    assoc = try_associate(port, [VERIFICATION])
    if assoc.is_established:
        assoc.release()
        return False
    return True


class SeriesSender(threading.Thread):
    """Stores a series one instance at a time on one association, pausing half-way until
    told to go on, so the association is open in the middle of its work when SIGTERM comes."""

    def __init__(self, port: int, series: list[Dataset]) -> None:
        super().__init__(name="series-sender", daemon=True)
        self.port, self.series = port, series
        self.halfway, self.go_on = threading.Event(), threading.Event()
        self.statuses: dict[str, int] = {}
        self.released = False
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            contexts = [(CT_IMAGE_STORAGE, [ExplicitVRLittleEndian])]
            with association(self.port, contexts) as assoc:
                for position, ds in enumerate(self.series):
                    if position == len(self.series) // 2:
                        self.halfway.set()
                        if not self.go_on.wait(30):
                            raise TimeoutError("never told to go on")
                    status = assoc.send_c_store(ds)
                    self.statuses[ds.SOPInstanceUID] = int(status.get("Status", -1))
            self.released = assoc.is_released
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.halfway.set()


def _find_all(port: int, series: list[Dataset]) -> set[str]:
    found: set[str] = set()
    with association(port, [FIND_MODEL]) as assoc:
        for ds in series:
            query = identifier(
                "IMAGE",
                StudyInstanceUID=ds.StudyInstanceUID,
                SeriesInstanceUID=ds.SeriesInstanceUID,
                SOPInstanceUID=ds.SOPInstanceUID,
            )
            for status, match in assoc.send_c_find(query, FIND_MODEL):
                if status and status.Status in (0xFF00, 0xFF01):
                    found.add(str(match.SOPInstanceUID))
    return found


def _stopped_within(server: ServerProcess, seconds: float) -> float:
    started = time.monotonic()
    code = server.wait_exit(seconds)
    assert code == 0, server.diagnostics()
    return time.monotonic() - started


@pytest.mark.slow
def test_sigterm_refuses_newcomers_and_lets_the_running_association_finish(
    tmp_path: Path,
) -> None:
    port = free_port()
    config = write_config(tmp_path, {"dicom": {"port": port}})
    series = synthetic_ct_series(24, rows=256, columns=256)
    args = ["--grace", str(GRACE)]
    with serving(config, port=port, log_dir=tmp_path, args=args, name="first") as server:
        sender = SeriesSender(port, series)
        sender.start()
        assert sender.halfway.wait(30), server.diagnostics()
        assert sender.error is None, sender.error
        sigterm_at = time.monotonic()
        server.terminate()
        server.wait_for_log("stopping")
        assert _refuses_connections(port, timeout=5), "still accepting after SIGTERM"
        assert _association_fails(port), "a new association was accepted after SIGTERM"
        assert server.process.poll() is None, "exited while an association was running"
        sender.go_on.set()
        sender.join(30)
        assert not sender.is_alive()
        assert sender.error is None, f"{sender.error!r}\n{server.diagnostics()}"
        assert sender.released, "the running association did not end with a release"
        _stopped_within(server, GRACE + 5)
        # The release above shows the server did not abort at the end of its grace; the clock
        # here also counts this test's own probes and the sender's remaining work, hence the
        # margin for a loaded machine.
        assert time.monotonic() - sigterm_at <= GRACE + 3, "exit took longer than the grace period"
        log = server.stderr()
        assert "stopped" in log
        assert "aborting association" not in log
        assert "Traceback" not in log, log

    acked = {uid for uid, status in sender.statuses.items() if status == 0x0000}
    assert len(acked) == len(series), sender.statuses
    with serving(config, port=port, log_dir=tmp_path, name="second"):
        assert _find_all(port, series) == acked


@pytest.mark.slow
def test_sigterm_on_an_idle_server_exits_quickly(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, {"dicom": {"port": port}})
    args = ["--grace", str(GRACE)]
    with serving(config, port=port, log_dir=tmp_path, args=args) as server:
        server.terminate()
        elapsed = _stopped_within(server, GRACE)
        assert elapsed < 5, f"an idle server took {elapsed:.1f} s to stop"
        log = server.stderr()
        assert "received SIGTERM" in log
        assert "stopped" in log
        assert "Traceback" not in log, log


# --- check ---------------------------------------------------------------------------------------


def test_check_reports_a_ready_installation_and_what_it_supports(tmp_path: Path) -> None:
    config = write_config(tmp_path, {})
    result = run_cli(["check", "--config", str(config)], timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "configuration: ok" in result.stdout
    assert "index: ok" in result.stdout
    assert "store: ok" in result.stdout
    assert "storage SOP classes: 170" in result.stdout


def test_check_fails_naming_an_unreachable_index(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"database": {"url": "postgresql://nobody@127.0.0.1:1/absent"}})
    result = run_cli(["check", "--config", str(config)], timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "index: FAILED" in result.stdout
    assert "Traceback" not in result.stderr, result.stderr


def test_check_lists_transfer_syntaxes_with_their_decoders() -> None:
    result = run_cli(["check", "--list", "transfer-syntaxes"], timeout=60)
    assert result.returncode == 0, result.stderr
    lines = {line.split("  ")[0]: line for line in result.stdout.splitlines()}
    # Every codec family the archive converts from has a decoder installed.
    for uid in (
        "1.2.840.10008.1.2.4.50",  # JPEG Baseline
        "1.2.840.10008.1.2.4.70",  # JPEG Lossless SV1
        "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
        "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
        "1.2.840.10008.1.2.4.201",  # HTJ2K Lossless
        "1.2.840.10008.1.2.5",  # RLE Lossless
    ):
        assert "stored and sent as received only" not in lines[uid], lines[uid]
