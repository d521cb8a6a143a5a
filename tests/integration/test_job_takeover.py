"""Jobs outlive their server. Two `openpacs serve` processes share one database (every
backend); server A runs two send jobs to slow receivers while server B, alive beside it,
never takes them. Then A is killed (SIGKILL, mid-job): once A's lease runs out B takes both
over, resumes the first where its progress says (every planned instance arrives, at most the
one in flight twice) and fails the second, whose remote was removed meanwhile, with that
reason. Also in one process: a server that stops cleanly hands its job back at once, and the
next server to start resumes it."""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from openpacs.archive.jobs import MAX_TAKEOVERS, _not_resumable
from openpacs.archive.records import Job, RemoteNode
from tests.support import scu
from tests.support.backends import Backend
from tests.support.corpus import synthetic_ct_series
from tests.support.node import write_config
from tests.support.process import ServerProcess, free_port, spawn
from tests.support.web import running_web_node

pytestmark = pytest.mark.slow

LEASE = 4.0  # seconds; servers renew every third of it
INSTANCES = 20
DELAY = 0.5  # seconds each receiver takes per C-STORE: a send takes ~10 s
WAIT = 90.0  # a bound, not a wait


def _job(client: httpx.Client, job_id: str) -> dict[str, Any]:
    response = client.get(f"/api/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def _wait(client: httpx.Client, job_id: str, until: Any, what: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT
    while True:
        job = _job(client, job_id)
        if until(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job not {what} after {WAIT} s: {job}")
        time.sleep(0.2)


def _finished(job: dict[str, Any]) -> bool:
    return job["state"] in ("succeeded", "failed")


@contextmanager
def _servers(
    folder: Path, shared: dict[str, dict[str, Any]], password_file: Path, names: list[str]
) -> Iterator[list[tuple[ServerProcess, httpx.Client]]]:
    """`openpacs serve` processes sharing `shared` (started at once, then waited for), each
    with an admin HTTP client."""
    password = password_file.read_text().strip()
    started: list[tuple[ServerProcess, httpx.Client]] = []
    with ExitStack() as stack:
        for name in names:
            (folder / name).mkdir()
            dicom_port, http_port = free_port(), free_port()
            sections = {
                **shared,
                "dicom": {"port": dicom_port, "workers": 1},
                "http": {"host": "127.0.0.1", "port": http_port},
                "auth": {"admin_user": "admin", "admin_password_file": str(password_file)},
                "archive": {"server_lease_seconds": LEASE},
            }
            config = write_config(folder / name, sections)
            server = spawn(config, port=dicom_port, log_dir=folder / name, name=name)
            stack.callback(server.stop_now)
            client = httpx.Client(
                base_url=f"http://127.0.0.1:{http_port}", auth=("admin", password), timeout=30
            )
            stack.enter_context(client)
            started.append((server, client))
        for server, _client in started:
            server.wait_ready()
        yield started


def test_a_killed_servers_jobs_are_taken_over_and_a_live_servers_never(
    tmp_path: Path, backend: Backend
) -> None:
    shared = backend.sections(tmp_path)
    shared.setdefault("database", {"url": f"sqlite:///{tmp_path / 'index.db'}"})
    shared.setdefault("storage", {"url": str(tmp_path / "blobs")})
    password_file = tmp_path / "admin-password"
    password_file.write_text(secrets.token_urlsafe(16) + "\n")
    series = synthetic_ct_series(INSTANCES, rows=8, columns=8)
    study = str(series[0].StudyInstanceUID)
    planned = {str(ds.SOPInstanceUID) for ds in series}

    with (
        scu.storage_scp("SLOW1", delay=DELAY) as (port1, received1),
        scu.storage_scp("SLOW2", delay=DELAY) as (port2, _received2),
        _servers(tmp_path, shared, password_file, ["a", "b"]) as [(a, http_a), (b, http_b)],
    ):
        assert [int(s.Status) for s in scu.store(a.port, series)] == [0] * INSTANCES
        for aet, port in (("SLOW1", port1), ("SLOW2", port2)):
            remote = {"aet": aet, "host": "127.0.0.1", "port": port}
            assert http_a.post("/api/remotes", json=remote).status_code == 201
        jobs = [
            http_a.post(f"/api/remotes/{aet}/store", json={"level": "study", "uid": study})
            for aet in ("SLOW1", "SLOW2")
        ]
        assert [j.status_code for j in jobs] == [202, 202], [j.text for j in jobs]
        sending, doomed = (j.json()["id"] for j in jobs)

        # A runs both; B, alive beside it and reaping every beat, takes neither.
        on_a = f":{a.process.pid}"

        def a_label(job: dict[str, Any]) -> str:
            return job["note"].split("after server ")[1].split(" ")[0]

        _wait(http_b, sending, lambda j: j["progress"]["done"] >= 2, "under way")
        watch_until = time.monotonic() + 1.25 * LEASE
        while time.monotonic() < watch_until:
            for job_id in (sending, doomed):
                job = _job(http_b, job_id)
                assert job["state"] == "running", job
                assert job["server"].endswith(on_a), job
                assert job["takeovers"] == 0, job
            time.sleep(0.3)
        assert http_b.delete("/api/remotes/SLOW2").status_code == 204

        a.process.kill()  # SIGKILL mid-job: no clean-up of any kind
        a.process.wait(timeout=30)
        done_before = _job(http_b, sending)["progress"]["done"]
        assert done_before < INSTANCES

        resumed = _wait(http_b, sending, _finished, "finished")
        assert resumed["state"] == "succeeded", f"{resumed.get('error')} {resumed.get('note')}"
        assert resumed["progress"] == {"done": INSTANCES, "total": INSTANCES, "failed": 0}
        assert resumed["server"].endswith(f":{b.process.pid}"), resumed
        assert resumed["takeovers"] == 1
        assert "taken over by server" in resumed["note"]
        assert f"after server {a_label(resumed)}" in resumed["note"]

        failed = _wait(http_b, doomed, _finished, "finished")
        assert failed["state"] == "failed", failed
        assert "SLOW2" in failed["error"]
        assert "no longer known" in failed["error"]

        # Every planned instance arrived; only what was in flight at the kill came twice.
        counts = Counter(str(ds.SOPInstanceUID) for ds in received1.datasets)
        assert set(counts) == planned
        assert sum(n - 1 for n in counts.values()) <= 1, counts

        listed = http_b.get("/api/jobs").json()
        assert {j["id"]: j["state"] for j in listed["items"]} == {
            sending: "succeeded",
            doomed: "failed",
        }


def test_a_server_that_stops_hands_its_job_back_and_the_next_one_resumes_it(
    tmp_path: Path,
) -> None:
    shared = {
        "database": {"url": f"sqlite:///{tmp_path / 'index.db'}"},
        "storage": {"url": str(tmp_path / "blobs")},
    }
    series = synthetic_ct_series(8, rows=8, columns=8)
    study = str(series[0].StudyInstanceUID)
    with scu.storage_scp("SLOW", delay=0.3) as (port, received):
        remote = {"aet": "SLOW", "host": "127.0.0.1", "port": port}
        with (
            running_web_node(tmp_path / "a", dicom={"remotes": [remote]}, **shared) as web,
            web.client() as client,
        ):
            scu.store(web.dicom.port, series)
            job = client.post("/api/remotes/SLOW/store", json={"level": "study", "uid": study})
            assert job.status_code == 202, job.text
            job_id = job.json()["id"]
            _wait(client, job_id, lambda j: j["progress"]["done"] >= 1, "under way")
            admin = web.admin  # the next node shares the database, and so its users
        # The node stopped: the job is pending, held by no server, and says why.
        with (
            running_web_node(tmp_path / "b", dicom={"remotes": [remote]}, **shared) as web,
            web.client(auth=admin) as client,
        ):
            done = _wait(client, job_id, _finished, "finished")
            assert done["state"] == "succeeded", done
            assert done["progress"]["done"] == 8
            assert done["takeovers"] == 0  # handed back is not taken over
            assert "handed back when server" in done["note"]
            assert "resumed by server" in done["note"]
    counts = Counter(str(ds.SOPInstanceUID) for ds in received.datasets)
    assert set(counts) == {str(ds.SOPInstanceUID) for ds in series}
    assert sum(n - 1 for n in counts.values()) <= 1, counts


def test_what_cannot_be_resumed_says_why() -> None:
    remote = RemoteNode("R", "127.0.0.1", 104)
    send = Job("j", "store", "running", {"remote": "R"}, "admin", "", "", plan=("1.2",))
    assert _not_resumable(send, remote) is None
    assert "no longer known" in str(_not_resumable(send, None))
    unplanned = Job(**{**send.__dict__, "plan": ()})
    assert "no list of instances" in str(_not_resumable(unplanned, remote))
    again = Job(**{**send.__dict__, "takeovers": MAX_TAKEOVERS + 1})
    assert "not resumed again" in str(_not_resumable(again, remote))
    move = Job("m", "move", "running", {"remote": "R", "uid": "1.2"}, "admin", "", "")
    assert _not_resumable(move, remote) is None
