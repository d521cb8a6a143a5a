"""The DICOM clients of the benchmark: DCMTK's storescu, findscu, movescu and getscu as
processes (run with TCP_NODELAY=1), and pynetdicom in the harness for C-ECHO and for C-FIND in
one open association."""

from __future__ import annotations

import logging
import resource
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
    Verification,
)

from bench.procs import HOST, BenchError, dcmtk_env

CALLING_AET = "BENCH"
RETURN_KEYS = (
    "StudyInstanceUID",
    "PatientName",
    "PatientID",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "StudyDescription",
    "NumberOfStudyRelatedInstances",
)
logging.getLogger("pynetdicom").setLevel(logging.ERROR)


def tool(name: str) -> str:
    """Debian's DCMTK binary (Python packages put scripts of the same names on PATH)."""
    path = Path("/usr/bin") / name
    if not path.is_file():
        raise BenchError(f"DCMTK's {path} is missing (apt-get install dcmtk)")
    return str(path)


def _nodelay(event: Any) -> None:
    sock = event.assoc.dul.socket
    if sock is not None and sock.socket is not None:
        sock.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _ae(timeout: float) -> AE:
    ae = AE(ae_title=CALLING_AET)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    return ae


def echo(port: int, aet: str, timeout: float = 3.0) -> bool:
    """True when a C-ECHO on `port` succeeds (a readiness probe). No bare TCP probe first:
    a connection closed without an A-ASSOCIATE-RQ may hold a server's association slot."""
    ae = _ae(timeout)
    ae.add_requested_context(Verification)
    assoc = ae.associate(HOST, port, ae_title=aet, evt_handlers=[(evt.EVT_CONN_OPEN, _nodelay)])
    if not assoc.is_established:
        return False
    try:
        status = assoc.send_c_echo()
        return bool(status) and int(status.Status) == 0
    finally:
        assoc.release()


def study_query(**conditions: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    for keyword in RETURN_KEYS:
        setattr(ds, keyword, "")
    for keyword, value in conditions.items():
        setattr(ds, keyword, value)
    return ds


class FindSession:
    """One open Study Root C-FIND association; `query` returns (seconds, matches)."""

    def __init__(self, port: int, aet: str, timeout: float = 120.0) -> None:
        self.ae = _ae(timeout)
        self.ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        self.assoc = self.ae.associate(
            HOST, port, ae_title=aet, evt_handlers=[(evt.EVT_CONN_OPEN, _nodelay)]
        )
        if not self.assoc.is_established:
            raise BenchError(f"C-FIND association to {aet} on port {port} refused or failed")

    def query(self, identifier: Dataset) -> tuple[float, int]:
        start = time.perf_counter()
        matches = 0
        for status, _ in self.assoc.send_c_find(
            identifier, StudyRootQueryRetrieveInformationModelFind
        ):
            code = int(status.Status) if status and "Status" in status else None
            if code in (0xFF00, 0xFF01):
                matches += 1
            elif code != 0x0000:
                raise BenchError(f"C-FIND failed with status {code!r}")
        return time.perf_counter() - start, matches

    def close(self) -> None:
        if self.assoc.is_established:
            self.assoc.release()
        self.ae.shutdown()


def _wait_all(processes: list[subprocess.Popen[bytes]], deadline: float) -> None:
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for other in processes:
                other.kill()
                other.wait(timeout=10)
            raise BenchError("DCMTK client did not finish before its deadline") from None


def storescu(
    port: int, aet: str, folders: Sequence[Path], *, streams: int, timeout: float, log: Path
) -> dict[str, float]:
    """Send every file of `folders` with `streams` concurrent storescu processes (the folders
    dealt out among them); returns wall seconds and the clients' CPU seconds."""
    groups = [list(folders[i::streams]) for i in range(streams)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    processes = []
    with log.open("ab") as output:
        for group in groups:
            command = [tool("storescu"), "-aet", CALLING_AET, "-aec", aet, "+sd", HOST, str(port)]
            command += [str(folder) for folder in group]
            processes.append(
                subprocess.Popen(
                    command, stdout=output, stderr=output, env=dcmtk_env(), start_new_session=True
                )
            )
        _wait_all(processes, time.monotonic() + timeout)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    failed = [p.returncode for p in processes if p.returncode != 0]
    if failed:
        raise BenchError(f"storescu exit codes {failed} (see {log.name})")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"seconds": seconds, "client_cpu_seconds": cpu}


def findscu(port: int, aet: str, conditions: dict[str, str], timeout: float = 60.0) -> float:
    """Wall seconds of one findscu process (start, association, query, release)."""
    command = [tool("findscu"), "-S", "-aet", CALLING_AET, "-aec", aet]
    command += ["-k", "QueryRetrieveLevel=STUDY"]
    for keyword in RETURN_KEYS:
        command += ["-k", f"{keyword}={conditions[keyword]}" if keyword in conditions else keyword]
    command += [HOST, str(port)]
    start = time.perf_counter()
    result = subprocess.run(
        command, capture_output=True, env=dcmtk_env(), timeout=timeout, check=False
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0 or b"E: " in result.stderr:
        raise BenchError(f"findscu: {result.stderr.decode(errors='replace').strip()[-200:]}")
    return seconds


def movescu(port: int, aet: str, destination: str, study_uid: str, timeout: float) -> float:
    """Wall seconds of a movescu process moving one study to `destination`."""
    command = [tool("movescu"), "-S", "-aet", CALLING_AET, "-aec", aet, "-aem", destination]
    command += ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study_uid}"]
    command += [HOST, str(port)]
    start = time.perf_counter()
    result = subprocess.run(
        command, capture_output=True, env=dcmtk_env(), timeout=timeout, check=False
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0 or b"E: " in result.stderr:
        raise BenchError(f"movescu: {result.stderr.decode(errors='replace').strip()[-200:]}")
    return seconds


def getscu(port: int, aet: str, study_uid: str, out: Path, timeout: float) -> float:
    """Wall seconds of a getscu process retrieving one study (C-GET) into folder `out`."""
    command = [tool("getscu"), "-S", "-aet", CALLING_AET, "-aec", aet, "-od", str(out)]
    command += ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study_uid}"]
    command += [HOST, str(port)]
    start = time.perf_counter()
    result = subprocess.run(
        command, capture_output=True, env=dcmtk_env(), timeout=timeout, check=False
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0 or b"E: " in result.stderr:
        raise BenchError(f"getscu: {result.stderr.decode(errors='replace').strip()[-200:]}")
    return seconds
