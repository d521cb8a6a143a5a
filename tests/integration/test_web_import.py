"""Imports started from the web by an administrator: a server folder below
`[archive] import_folders`, an s3:// prefix, or an uploaded ZIP archive, each a job whose
progress /api/jobs/{id} reports; paths outside the import folders and bodies that are not ZIP
archives are refused before anything is read or stored."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import corpus
from tests.support.backends import Backend
from tests.support.s3 import client as s3_client
from tests.support.s3 import make_bucket
from tests.support.web import running_web_node


def _wait(client: httpx.Client, job: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        state = client.get(f"/api/jobs/{job['id']}").json()
        if state["state"] in ("succeeded", "failed"):
            return state
        if time.monotonic() > deadline:
            raise TimeoutError(f"job still {state['state']} after {timeout} s: {state}")
        time.sleep(0.1)


def _files(folder: Path, count: int) -> list[str]:
    folder.mkdir(parents=True)
    uids = []
    for number, dataset in enumerate(corpus.synthetic_ct_series(count, rows=16, columns=16)):
        corpus.write_part10(dataset, folder / f"IM{number}")
        uids.append(str(dataset.SOPInstanceUID))
    return uids


def test_a_server_folder_is_imported_as_a_job(tmp_path: Path, backend: Backend) -> None:
    intake = tmp_path / "intake"
    uids = _files(intake / "disk1", 4)
    whole = (intake / "disk1" / "IM0").read_bytes()
    (intake / "disk1" / "cut.dcm").write_bytes(whole[:-20])
    (intake / "disk1" / "notes.txt").write_text("skipped", encoding="utf-8")
    node = tmp_path / "node"
    archive = {"import_folders": [str(intake)]}
    with running_web_node(node, backend=backend, archive=archive) as web, web.client() as client:
        started = client.post("/api/import", json={"source": str(intake / "disk1")})
        assert started.status_code == 202, started.text
        assert started.json()["kind"] == "import"
        job = _wait(client, started.json())
        assert job["state"] == "failed"  # one file refused: the job says which and why
        assert job["progress"] == {"done": 5, "total": 6, "failed": 1}
        assert "cut.dcm" in job["error"]
        assert "truncated" in job["error"]
        assert web.dicom.instance_count() == len(uids)

        again = _wait(client, client.post("/api/import", json={"source": str(intake)}).json())
        assert again["progress"]["failed"] == 1  # the same file, refused again
        assert web.dicom.instance_count() == len(uids)  # nothing stored twice

        listed = client.get("/api/jobs").json()["items"]
        assert [item["kind"] for item in listed[:2]] == ["import", "import"]


def test_a_job_stores_its_files_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder's files go to the index in batches (one commit each), not one by one."""
    intake = tmp_path / "intake"
    uids = _files(intake / "disk", 20)
    archive = {"import_folders": [str(intake)]}
    with running_web_node(tmp_path / "node", archive=archive) as web, web.client() as client:
        batches: list[int] = []
        add_instances = web.archive.index.add_instances

        def counted(entries: Any, **kwargs: Any) -> Any:
            batches.append(len(entries))
            return add_instances(entries, **kwargs)

        monkeypatch.setattr(web.archive.index, "add_instances", counted)
        job = _wait(client, client.post("/api/import", json={"source": str(intake)}).json())
        assert job["state"] == "succeeded", job
        assert sum(batches) == len(uids)
        assert len(batches) <= 2, batches
        assert web.dicom.instance_count() == len(uids)


def test_paths_outside_the_import_folders_are_refused(tmp_path: Path) -> None:
    intake = tmp_path / "intake"
    intake.mkdir()
    secret = tmp_path / "secret"
    _files(secret, 1)
    (intake / "escape").symlink_to(secret)
    archive = {"import_folders": [str(intake)]}
    with running_web_node(tmp_path / "node", archive=archive) as web, web.client() as client:
        for source, status in (
            (str(secret), 403),
            (f"{intake}/../secret", 403),
            (str(intake / "escape"), 403),  # a link leading out
            ("relative/path", 400),
            (str(intake / "missing"), 404),
            ("s3://", 400),
        ):
            answer = client.post("/api/import", json={"source": source})
            assert answer.status_code == status, (source, answer.text)
            assert answer.json()["detail"]
        assert client.get("/api/jobs").json()["total"] == 0
        user = web.add_user("reader", "user")
        with web.client(auth=("reader", user)) as reader:
            answer = reader.post("/api/import", json={"source": str(intake)})
            assert answer.status_code == 403
    with running_web_node(tmp_path / "closed") as web, web.client() as client:
        answer = client.post("/api/import", json={"source": str(intake)})
        assert answer.status_code == 403
        assert "import_folders" in answer.json()["detail"]


def test_an_uploaded_zip_is_imported(tmp_path: Path, backend: Backend) -> None:
    datasets = corpus.synthetic_ct_series(3, rows=16, columns=16)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for number, dataset in enumerate(datasets):
            bundle.writestr(f"study/{number}", corpus.to_part10_bytes(dataset))
        bundle.writestr("README", "not an image")
    with running_web_node(tmp_path / "node", backend=backend) as web, web.client() as client:
        headers = {"Content-Type": "application/zip"}
        refused = client.post("/api/import/zip", content=b"PK not really", headers=headers)
        assert refused.status_code == 400
        assert "not a ZIP archive" in refused.json()["detail"]
        started = client.post(
            "/api/import/zip?name=cd.zip", content=buffer.getvalue(), headers=headers
        )
        assert started.status_code == 202, started.text
        job = _wait(client, started.json())
        assert job["state"] == "succeeded", job
        assert job["params"]["name"] == "cd.zip"
        assert job["progress"] == {"done": 4, "total": 4, "failed": 0}
        assert web.dicom.instance_count() == 3
        deadline = time.monotonic() + 10  # audit rows are written in batches, soon after
        while not (events := client.get("/api/audit", params={"action": "import"}).json()["items"]):
            assert time.monotonic() < deadline, "the import was not audited"
            time.sleep(0.1)
        assert events[0]["outcome"] == "success"
        assert events[0]["resource"] == f"job={job['id']} source=cd.zip"
        staging = web.archive.staging_dir()
        if staging is not None:  # the upload is gone once imported
            assert list(staging.glob("*.zip")) == []


def test_an_s3_prefix_is_imported_as_a_job(
    tmp_path: Path, postgres_url: str, s3_endpoint_session: str
) -> None:
    backend = Backend("postgresql-s3", postgres_url, s3_endpoint_session)
    bucket = make_bucket(s3_endpoint_session)
    s3 = s3_client(s3_endpoint_session)
    for number, dataset in enumerate(corpus.synthetic_ct_series(2, rows=16, columns=16)):
        s3.put_object(Bucket=bucket, Key=f"drop/{number}", Body=corpus.to_part10_bytes(dataset))
    with running_web_node(tmp_path / "node", backend=backend) as web, web.client() as client:
        started = client.post("/api/import", json={"source": f"s3://{bucket}/drop/"})
        assert started.status_code == 202, started.text
        job = _wait(client, started.json())
        assert job["state"] == "succeeded", job
        assert web.dicom.instance_count() == 2
