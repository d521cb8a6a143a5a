"""What a crash leaves in the store's staging folder is found and swept, and nothing a live
server is still writing is touched. A real `openpacs serve` is killed (SIGKILL) while it
receives a C-STORE; its partial spool file is reported by `openpacs verify` once its lease has
run out, and swept by the next server at start-up once older than the grace period. A file of
a live server, however old, stays until that server has stopped. Folder stores only: an S3
deployment has no staging folder (it spools to the system's temporary folder)."""

from __future__ import annotations

import gc
import os
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import evt
from pynetdicom.pdu import P_DATA_TF

from tests.support import scu
from tests.support.backends import Backend
from tests.support.corpus import CT_IMAGE_STORAGE, synthetic_ct_series
from tests.support.node import write_config
from tests.support.process import ServerProcess, free_port, run_cli, serving

pytestmark = pytest.mark.slow

LEASE = 3.0
TWO_HOURS_AGO = time.time() - 7200
WAIT = 60.0  # a bound, not a wait


@pytest.fixture(params=["sqlite-folder", "postgresql-folder"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, dict[str, Any]]:
    """Sections for servers sharing one index and one blob folder."""
    backend = Backend(request.param)
    if request.param == "postgresql-folder":
        backend = Backend(request.param, postgres_url=request.getfixturevalue("postgres_url"))
    sections = backend.sections(tmp_path)
    sections.setdefault("database", {"url": f"sqlite:///{tmp_path / 'index.db'}"})
    sections["storage"] = {"url": str(tmp_path / "blobs")}
    return sections


def _config(folder: Path, shared: dict[str, dict[str, Any]], port: int) -> Path:
    folder.mkdir()
    dicom = {"port": port, "workers": 1, "max_pdu": 4096}  # a CT image in ~130 PDUs
    return write_config(
        folder, {**shared, "dicom": dicom, "archive": {"server_lease_seconds": LEASE}}
    )


def _staged(staging: Path) -> dict[str, list[str]]:
    """Files in staging by the folder (server id) they lie in."""
    found: dict[str, list[str]] = {}
    for path in sorted(p for p in staging.rglob("*") if p.is_file()):
        owner = path.parent.name if path.parent != staging else ""
        found.setdefault(owner, []).append(path.name)
    return found


def _verify(config: Path, *args: str) -> str:
    result = run_cli(["verify", "--config", str(config), *args])
    assert result.returncode == 0, result.stdout + result.stderr  # leftovers are not damage
    return result.stdout


def _slowly(event: Any) -> None:
    """EVT_PDU_SENT: hold each P-DATA a moment, so a C-STORE takes seconds to arrive."""
    if isinstance(event.pdu, P_DATA_TF):
        time.sleep(0.05)


def _store_until_killed(server: ServerProcess, staging: Path) -> Path:
    """Kill the server while it spools a C-STORE; the partial spool file it left."""
    (ds,) = synthetic_ct_series(1, rows=512, columns=512)
    failures: list[BaseException] = []

    def send() -> None:
        try:
            with scu.association(
                server.port,
                [(CT_IMAGE_STORAGE, [ExplicitVRLittleEndian])],
                evt_handlers=[(evt.EVT_PDU_SENT, _slowly)],
            ) as assoc:
                assoc.dimse_timeout = assoc.network_timeout = 10
                assoc.send_c_store(ds)
        except Exception as exc:  # the server is killed under it: any ending will do
            failures.append(exc)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # the killed peer's socket
        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        deadline = time.monotonic() + WAIT
        while not [p for p in staging.rglob("*") if p.is_file() and p.stat().st_size > 0]:
            assert time.monotonic() < deadline, "no spool file appeared"
            time.sleep(0.01)
        server.process.kill()
        server.process.wait(timeout=30)
        sender.join(timeout=WAIT)
        gc.collect()
    (spooled,) = [p for p in staging.rglob("*") if p.is_file()]
    return spooled


def test_a_killed_servers_spool_is_reported_then_swept_and_a_live_ones_is_kept(
    tmp_path: Path, shared: dict[str, dict[str, Any]]
) -> None:
    staging = tmp_path / "blobs" / ".staging"
    port_a, port_b = free_port(), free_port()
    config_a = _config(tmp_path / "a", shared, port_a)
    config_b = _config(tmp_path / "b", shared, port_b)

    with serving(config_a, port=port_a, log_dir=tmp_path / "a") as a:
        spooled = _store_until_killed(a, staging)
    dead = spooled.parent.name
    assert spooled.parent.parent == staging  # in the killed server's own folder
    young = spooled.parent / "young.part"  # left by the same crash, but only just
    young.write_bytes(b"partial")

    time.sleep(LEASE)  # the killed server's lease runs out
    os.utime(spooled, (TWO_HOURS_AGO, TWO_HOURS_AGO))
    report = _verify(config_a)
    assert "staging files:     2" in report
    assert "left over (no live server, older than 3600 s): 1" in report
    assert f"{dead}/{spooled.name}" in report
    assert "young.part" not in report  # within the grace period
    assert spooled.exists()  # reported, not removed, without --repair

    with serving(config_b, port=port_b, log_dir=tmp_path / "b") as b:
        # B swept at start-up: the old spool of the dead server went, the young one stays.
        staged = _staged(staging)
        assert staged.get(dead) == ["young.part"], staged
        live = [owner for owner in staged if owner not in (dead, "")]
        assert len(live) <= 1
        mine = next(p for p in staging.iterdir() if p.is_dir() and p.name != dead)
        old_but_live = mine / "in-flight.part"
        old_but_live.write_bytes(b"a long upload")
        os.utime(old_but_live, (TWO_HOURS_AGO, TWO_HOURS_AGO))
        report = _verify(config_a, "--repair")
        assert "left over (no live server, older than 3600 s): 0" in report
        assert old_but_live.exists()  # B is alive: its files are its own
        b.terminate()
        assert b.wait_exit(timeout=WAIT) == 0
    report = _verify(config_a, "--repair")
    assert f"removed staging leftover {old_but_live.name}" in report
    assert not old_but_live.exists()
    assert young.exists()  # still within the grace period


def test_a_server_spools_into_its_own_folder_and_removes_it_when_it_stops(
    tmp_path: Path,
) -> None:
    port = free_port()
    config = write_config(tmp_path, {"dicom": {"port": port, "workers": 1}})
    staging = tmp_path / "blobs" / ".staging"
    with serving(config, port=port, log_dir=tmp_path) as server:
        (folder,) = [p for p in staging.iterdir() if p.is_dir()]
        assert len(folder.name) == 32  # the server's id
        (ds,) = synthetic_ct_series(1, rows=16, columns=16)
        assert [int(s.Status) for s in scu.store(port, [ds])] == [0]
        assert _staged(staging) == {}  # the spool became the blob
        server.terminate()
        assert server.wait_exit(timeout=WAIT) == 0
    assert list(staging.iterdir()) == []
