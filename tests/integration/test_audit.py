"""The audit trail: HTTP and DIMSE accesses recorded with who, where, what and the outcome,
in the database (read through GET /api/audit) and as JSON log lines; failures too."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from openpacs.web.multipart import new_boundary, write_parts
from tests.support import scu
from tests.support.backends import Backend
from tests.support.corpus import synthetic_ct_series, to_part10_bytes
from tests.support.web import WebNode, running_web_node


def _events(web: WebNode, **filters: str) -> list[dict[str, Any]]:
    web.archive.audit.flush()
    response = httpx.get(f"{web.url}/api/audit", params=filters, auth=web.admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == len(body["items"])
    return body["items"]


def test_logins_and_dimse_operations_are_audited(
    tmp_path: Path, backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="openpacs.audit")
    with running_web_node(tmp_path, backend=backend) as web:
        bad = httpx.post(f"{web.url}/api/session", json={"username": "admin", "password": "x"})
        assert bad.status_code == 401
        series = synthetic_ct_series(2, rows=16, columns=16)
        statuses = scu.store(web.dicom.port, series)
        assert [s.Status for s in statuses] == [0, 0]
        study_uid = str(series[0].StudyInstanceUID)
        scu.find(web.dicom.port, scu.identifier("STUDY", StudyInstanceUID=study_uid))
        failed = scu.find(web.dicom.port, scu.identifier("NOSUCHLEVEL"))[1]
        assert failed.Status != 0

        failures = _events(web, action="login", outcome="failure")
        assert [(e["actor"], e["channel"], e["peer"]) for e in failures] == [
            ("admin", "http", "127.0.0.1")
        ]
        stores = _events(web, action="store", channel="dimse")
        assert {e["sop_uid"] for e in stores} == {str(d.SOPInstanceUID) for d in series}
        assert {(e["actor"], e["outcome"], e["study_uid"]) for e in stores} == {
            ("TESTSCU", "success", study_uid)
        }
        queries = _events(web, action="query", channel="dimse")
        assert sorted(e["outcome"] for e in queries) == ["failure", "success"]
        assert [e["study_uid"] for e in queries if e["outcome"] == "success"] == [study_uid]
        assert _events(web, action="login", outcome="success")  # the Basic logins above
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "openpacs.audit"]
    assert {"action": "login", "outcome": "failure", "actor": "admin"}.items() <= lines[0].items()
    assert all("at" in line and "peer" in line for line in lines)
    assert "patient_id" not in {key for line in lines for key in line}


def test_http_accesses_are_audited_with_their_outcome(tmp_path: Path) -> None:
    with running_web_node(tmp_path) as web:
        password = web.add_user("uploader1", "uploader")
        series = synthetic_ct_series(1, rows=16, columns=16)
        scu.store(web.dicom.port, series)
        study_uid = str(series[0].StudyInstanceUID)
        with web.client(auth=("uploader1", password)) as client:
            assert client.get("/api/audit").status_code == 403
        events = _events(web, actor="uploader1")
        assert [(e["action"], e["outcome"], e["resource"]) for e in events] == [
            ("access", "denied", "GET /api/audit"),
            ("login", "success", ""),
        ]
        assert _events(web, study_uid=study_uid, channel="http") == []


def test_the_audit_filters_refuse_malformed_values(tmp_path: Path) -> None:
    with running_web_node(tmp_path) as web, web.client() as client:
        for params in ({"limit": "0"}, {"since": "yesterday"}, {"study_uid": "1.2'; DROP"}):
            response = client.get("/api/audit", params=params)
            assert response.status_code == 400, params
            assert isinstance(response.json()["detail"], str)


def test_each_http_route_is_audited_with_its_action(tmp_path: Path) -> None:
    """Reads of patient data are query, view or download; changes store, delete, send or
    admin; reading users, remotes, jobs, statistics or the audit itself is not recorded."""
    with running_web_node(tmp_path) as web:
        first, second = synthetic_ct_series(2, rows=16, columns=16)
        scu.store(web.dicom.port, [first])
        study, series, sop = first.StudyInstanceUID, first.SeriesInstanceUID, first.SOPInstanceUID
        instance = f"/dicom-web/studies/{study}/series/{series}/instances/{sop}"
        boundary = new_boundary()
        stow_body = b"".join(
            write_parts(
                [({"Content-Type": "application/dicom"}, [to_part10_bytes(second)])], boundary
            )
        )
        requests = [
            ("GET", "/api/studies", None),
            ("GET", f"/api/studies/{study}", None),
            ("GET", f"/api/instances/{sop}/file", None),
            ("GET", f"/api/studies/{study}/archive", None),
            ("GET", "/dicom-web/studies", None),
            ("GET", f"/dicom-web/studies/{study}/series/{series}/metadata", None),
            ("GET", f"{instance}/frames/1", None),
            ("GET", f"{instance}/rendered", None),
            ("GET", f"/dicom-web/studies/{study}/series/{series}/thumbnail", None),
            ("GET", f"/dicom-web/studies/{study}", None),
            ("POST", "/dicom-web/studies", stow_body),
            ("POST", "/api/remotes/NOWHERE/echo", None),
            ("POST", "/api/remotes/NOWHERE/store", None),
            ("POST", "/api/users", None),
            ("DELETE", f"/api/instances/{second.SOPInstanceUID}", None),
            ("GET", "/api/users", None),
            ("GET", "/api/remotes", None),
            ("GET", "/api/jobs", None),
            ("GET", "/api/statistics", None),
            ("GET", "/api/session", None),
            ("GET", "/health", None),
        ]
        stow_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
        with web.client() as client:
            for method, path, body in requests:
                headers = {"Content-Type": stow_type} if body else {}
                json = {"study_uid": study} if path.endswith("/store") else None
                if path == "/api/users":
                    json = {"username": "x", "role": "user", "password": "p" * 16}
                response = client.request(method, path, content=body, headers=headers, json=json)
                assert response.status_code < 500, (path, response.text)
        events = _events(web, actor=web.username, channel="http")
        recorded = sorted((e["action"], e["resource"]) for e in events if e["action"] != "login")
        assert recorded == sorted(
            [
                ("query", "GET /api/studies"),
                ("view", f"GET /api/studies/{study}"),
                ("download", f"GET /api/instances/{sop}/file"),
                ("download", f"GET /api/studies/{study}/archive"),
                ("query", "GET /dicom-web/studies"),
                ("view", f"GET /dicom-web/studies/{study}/series/{series}/metadata"),
                ("view", f"GET {instance}/frames/1"),
                ("view", f"GET {instance}/rendered"),
                ("view", f"GET /dicom-web/studies/{study}/series/{series}/thumbnail"),
                ("download", f"GET /dicom-web/studies/{study}"),
                ("store", "POST /dicom-web/studies"),
                ("admin", "POST /api/remotes/NOWHERE/echo"),
                ("send", "POST /api/remotes/NOWHERE/store"),
                ("admin", "POST /api/users"),
                ("delete", f"DELETE /api/instances/{second.SOPInstanceUID}"),
            ]
        )
