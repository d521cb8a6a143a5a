"""Durable before acknowledged (architecture decision 3), checked the hard way: SIGKILL a real
`openpacs serve` while several associations are storing, restart it on the same data, and
check that every acknowledged instance survived, whole and findable, and that the crash left
at most an orphan blob per store in flight, never a half-written blob under a final name.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import evt

from openpacs.archive.verify import verify
from openpacs.compose import build_archive
from openpacs.config import load_settings
from openpacs.storage.folder import STAGING
from tests.support.corpus import (
    CR_IMAGE_STORAGE,
    CT_IMAGE_STORAGE,
    MR_IMAGE_STORAGE,
    US_IMAGE_STORAGE,
    pixel_bytes,
    small_instances,
    synthetic_ct_series,
)
from tests.support.node import write_config
from tests.support.process import ServerProcess, free_port, serving
from tests.support.scu import HOST, association, get, identifier, make_ae

pytestmark = pytest.mark.slow

THREADS = 4
SMALL_PER_THREAD = 100  # 5 studies x 2 series x 10 instances, 64 x 64
LARGE_PER_THREAD = 2  # 512 x 512 CT slices, interleaved with the small ones
KILL_AFTER_ACKS = 100
FIND_MODEL = "1.2.840.10008.5.1.4.1.2.2.1"  # Study Root Query/Retrieve Information Model - FIND
STORAGE = [
    (sop_class, [ExplicitVRLittleEndian])
    for sop_class in (CT_IMAGE_STORAGE, MR_IMAGE_STORAGE, US_IMAGE_STORAGE, CR_IMAGE_STORAGE)
]


@dataclass
class Ledger:
    """What the clients sent and which stores got a success status, shared by the threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: dict[str, Dataset] = field(default_factory=dict)
    acked: set[str] = field(default_factory=set)

    def sending(self, ds: Dataset) -> None:
        with self.lock:
            self.sent[str(ds.SOPInstanceUID)] = ds

    def ack(self, ds: Dataset) -> None:
        with self.lock:
            self.acked.add(str(ds.SOPInstanceUID))

    def acked_count(self) -> int:
        with self.lock:
            return len(self.acked)


class Sender(threading.Thread):
    """One association storing its instances one after the other until it ends or breaks."""

    def __init__(self, port: int, datasets: list[Dataset], ledger: Ledger, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.port, self.datasets, self.ledger = port, datasets, ledger
        self.error: BaseException | None = None
        self.sockets: list[socket.socket] = []

    def run(self) -> None:
        ae = make_ae(self.name.upper())
        for context in STORAGE:
            ae.add_requested_context(*context)
        handlers = [(evt.EVT_CONN_OPEN, self._keep_socket)]
        try:
            assoc = ae.associate(HOST, self.port, ae_title="OPENPACS", evt_handlers=handlers)
            if not assoc.is_established:
                raise ConnectionError("store association was not established")
            for ds in self.datasets:
                self.ledger.sending(ds)
                status = assoc.send_c_store(ds).get("Status")
                if status is None:
                    return  # no response: the association is gone
                if status == 0x0000:
                    self.ledger.ack(ds)
            assoc.release()
        except BaseException as exc:  # the kill breaks associations: expected, kept for asserts
            self.error = exc
        finally:
            # pynetdicom 3 skips close() when shutdown() fails on a connection the peer
            # dropped; close it here so no ResourceWarning surfaces in a later test.
            for sock in self.sockets:
                sock.close()

    def _keep_socket(self, event: Any) -> None:
        transport = event.assoc.dul.socket
        if transport is not None and transport.socket is not None:
            self.sockets.append(transport.socket)


def _workload() -> list[list[Dataset]]:
    large = synthetic_ct_series(THREADS * LARGE_PER_THREAD, rows=512, columns=512)
    loads = []
    for thread in range(THREADS):
        small = list(small_instances(5, 2, SMALL_PER_THREAD // 10, seed=thread + 1))
        # one large slice early (before the kill), one late (likely in flight or never sent)
        small.insert(5, large[thread * LARGE_PER_THREAD])
        small.insert(60, large[thread * LARGE_PER_THREAD + 1])
        loads.append(small)
    return loads


def _wait_for_acks(ledger: Ledger, senders: list[Sender], server: ServerProcess) -> None:
    deadline = time.monotonic() + 60
    while ledger.acked_count() < KILL_AFTER_ACKS:
        if time.monotonic() > deadline or not any(s.is_alive() for s in senders):
            errors = [repr(s.error) for s in senders if s.error]
            raise AssertionError(
                f"only {ledger.acked_count()} acks before the kill; errors {errors}\n"
                f"{server.diagnostics()}"
            )
        time.sleep(0.005)


def _findable(port: int, instances: list[Dataset]) -> set[str]:
    found: set[str] = set()
    with association(port, [FIND_MODEL]) as assoc:
        for ds in instances:
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


def _files_outside_staging(root: Path) -> dict[str, Path]:
    """Every file under the blob root but staging, by its key (relative path)."""
    files: dict[str, Path] = {}
    for folder, subfolders, names in os.walk(root):
        if Path(folder) == root:
            subfolders[:] = [name for name in subfolders if name != STAGING]
        for name in names:
            path = Path(folder, name)
            files[path.relative_to(root).as_posix()] = path
    return files


def test_sigkill_mid_store_loses_no_acknowledged_instance(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, {"dicom": {"port": port}})
    loads = _workload()
    total = sum(len(load) for load in loads)
    ledger = Ledger()

    with serving(config, port=port, log_dir=tmp_path, name="killed") as server:
        senders = [Sender(port, load, ledger, name=f"sender-{n}") for n, load in enumerate(loads)]
        for sender in senders:
            sender.start()
        _wait_for_acks(ledger, senders, server)
        in_flight = sum(sender.is_alive() for sender in senders)
        server.process.kill()  # SIGKILL: no handler, no cleanup, no flush
        server.process.wait(timeout=30)
        for sender in senders:
            sender.join(30)
        assert not any(sender.is_alive() for sender in senders), "a client hung after the kill"

    acked = set(ledger.acked)
    assert in_flight >= 1, "every client had finished: the kill came too late"
    assert KILL_AFTER_ACKS <= len(acked) < total, "the kill did not land mid-way"
    originals = dict(ledger.sent)

    # Restarted on the same configuration: every acknowledged instance is there.
    with serving(config, port=port, log_dir=tmp_path, name="restarted") as restarted:
        acked_datasets = [originals[uid] for uid in sorted(acked)]
        assert _findable(port, acked_datasets) == acked, restarted.diagnostics()
        large = [ds for ds in acked_datasets if ds.Rows == 512]
        assert large, "no large instance was acknowledged before the kill"
        for ds in large:
            query = identifier(
                "IMAGE",
                StudyInstanceUID=ds.StudyInstanceUID,
                SeriesInstanceUID=ds.SeriesInstanceUID,
                SOPInstanceUID=ds.SOPInstanceUID,
            )
            statuses, received = get(port, query, [(CT_IMAGE_STORAGE, [ExplicitVRLittleEndian])])
            assert statuses[-1].Status == 0x0000, restarted.diagnostics()
            assert [pixel_bytes(r) for r in received.datasets] == [pixel_bytes(ds)]

    # The same data read through a fresh archive, as `openpacs verify` would.
    settings = load_settings(config, environ={})
    archive = build_archive(settings)
    try:
        root = settings.storage.folder_path
        for uid in acked:
            stored = archive.instance(uid)
            assert stored is not None, f"acknowledged {uid} is not in the index"
            with archive.open_local(stored) as path:
                assert path.stat().st_size == stored.blob_size
                assert pixel_bytes(path) == pixel_bytes(originals[uid])

        files = _files_outside_staging(root)
        indexed_keys = archive.index.all_blob_keys()
        orphans = set(verify(archive, min_orphan_age=0).orphan_blobs)
        totals = archive.totals()
        assert indexed_keys <= set(files), "index rows whose blob is missing"
        assert orphans == set(files) - indexed_keys
        assert len(orphans) <= in_flight, f"{len(orphans)} orphans for {in_flight} in flight"
        assert totals.instances == len(indexed_keys) == len(files) - len(orphans)
        assert len(acked) <= totals.instances <= len(acked) + in_flight

        # No partial file under a final name: each one is a whole instance we sent.
        for key, path in files.items():
            ds = dcmread(path)
            uid = str(ds.SOPInstanceUID)
            assert uid in originals, f"{key} holds an instance nobody sent"
            assert pixel_bytes(ds) == pixel_bytes(originals[uid]), f"{key} is incomplete"
            if key in indexed_keys:
                stored = archive.instance(uid)
                assert stored is not None
                assert stored.blob_key == key
                assert path.stat().st_size == stored.blob_size
    finally:
        archive.close()
