"""Remote AEs through the REST API, C-ECHO, and jobs against real peers: a pynetdicom
Storage SCP receives a sent study; a second openpacs node answers a C-MOVE into the first."""

from __future__ import annotations

import gc
import time
import warnings
from pathlib import Path
from typing import Any

import httpx

from tests.support import scu
from tests.support.backends import Backend
from tests.support.corpus import synthetic_ct_series
from tests.support.node import HOST, running_node
from tests.support.process import free_port
from tests.support.web import running_web_node


def _wait_for_job(client: httpx.Client, job: dict[str, Any], timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        state = client.get(f"/api/jobs/{job['id']}").json()
        if state["state"] in ("succeeded", "failed"):
            return state
        if time.monotonic() > deadline:
            raise TimeoutError(f"job still {state['state']} after {timeout} s: {state}")
        time.sleep(0.1)


def test_remotes_echo_and_send_job(tmp_path: Path, backend: Backend) -> None:
    configured = {"aet": "CONFIGAE", "host": HOST, "port": 1}
    with (
        scu.storage_scp("MOVESCP") as (port, received),
        running_web_node(tmp_path, backend=backend, dicom={"remotes": [configured]}) as web,
        web.client() as client,
    ):
        added = client.post("/api/remotes", json={"aet": "MOVESCP", "host": HOST, "port": port})
        assert added.status_code == 201
        again = client.post("/api/remotes", json={"aet": "MOVESCP", "host": HOST, "port": port})
        assert again.status_code == 409
        listed = client.get("/api/remotes").json()
        assert [(r["aet"], r["source"]) for r in listed] == [
            ("CONFIGAE", "config"),
            ("MOVESCP", "database"),
        ]
        assert (
            client.put("/api/remotes/CONFIGAE", json={"host": HOST, "port": 2}).status_code == 403
        )
        assert client.post("/api/remotes/MOVESCP/echo").json()["success"] is True
        dead = client.post("/api/remotes", json={"aet": "DEAD", "host": HOST, "port": free_port()})
        assert dead.status_code == 201
        with warnings.catch_warnings():
            # pynetdicom drops the socket of a refused connection without closing it.
            warnings.simplefilter("ignore", ResourceWarning)
            unreachable = client.post("/api/remotes/DEAD/echo")
            gc.collect()
        assert unreachable.status_code == 502
        assert "DEAD" in unreachable.json()["detail"]
        assert client.delete("/api/remotes/DEAD").status_code == 204
        assert client.post("/api/remotes/DEAD/echo").status_code == 404

        series = synthetic_ct_series(3, rows=8, columns=8)
        scu.store(web.dicom.port, series)
        study = str(series[0].StudyInstanceUID)
        job = client.post("/api/remotes/MOVESCP/store", json={"level": "study", "uid": study})
        assert job.status_code == 202
        assert job.json()["state"] in ("pending", "running", "succeeded")
        done = _wait_for_job(client, job.json())
        assert done["state"] == "succeeded", done
        assert done["progress"] == {"done": 3, "total": 3, "failed": 0}
        assert sorted(str(d.SOPInstanceUID) for d in received.datasets) == sorted(
            str(d.SOPInstanceUID) for d in series
        )
        missing = client.post("/api/remotes/MOVESCP/store", json={"level": "series", "uid": "1.2"})
        assert missing.status_code == 404

        # A remote kept in the database is a C-MOVE destination for DIMSE peers too.
        received.datasets.clear()
        responses = scu.move(
            web.dicom.port, scu.identifier("STUDY", StudyInstanceUID=study), "MOVESCP"
        )
        assert responses[-1].Status == 0
        assert len(received.datasets) == 3
        web.archive.audit.flush()
        sent = client.get("/api/audit", params={"action": "send", "channel": "dimse"}).json()
        assert {e["outcome"] for e in sent["items"]} == {"success"}


def test_move_job_pulls_a_study_from_a_remote(tmp_path: Path) -> None:
    with running_web_node(tmp_path / "a") as web, web.client() as client:
        peer = {"aet": web.settings.dicom.aet, "host": HOST, "port": web.dicom.port}
        with running_node(tmp_path / "b", dicom={"aet": "NODEB", "remotes": [peer]}) as other:
            series = synthetic_ct_series(2, rows=8, columns=8)
            scu.store(other.port, series, called="NODEB")
            study = str(series[0].StudyInstanceUID)
            remote = {"aet": "NODEB", "host": HOST, "port": other.port}
            assert client.post("/api/remotes", json=remote).status_code == 201
            job = client.post("/api/remotes/NODEB/move", json={"uid": study})
            assert job.status_code == 202
            done = _wait_for_job(client, job.json())
            assert done["state"] == "succeeded", done
            assert done["progress"]["done"] == 2
            assert client.get(f"/api/studies/{study}").json()["NumberOfStudyRelatedInstances"] == 2
            unknown = client.post("/api/remotes/NODEB/move", json={"uid": "1.2.3.999"})
            failed = _wait_for_job(client, unknown.json())
            assert failed["state"] in ("succeeded", "failed")
            assert failed["progress"]["done"] == 0
