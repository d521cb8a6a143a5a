"""Study visibility: users named by `[[auth.visibility]]` rules see only the studies the rules
give them (by InstitutionName, the calling and called AE of the C-STORE, the referring
physician, labels), whichever way they come in. The route walk takes every GET route with
path parameters from the application's own route table: for a study outside the rules each
answers 404, as if it did not exist, while the same route answers for a visible study; the
searches (REST, QIDO-RS, statistics) never show it either."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydicom.dataset import Dataset

from openpacs.archive.records import Visibility
from openpacs.dicom.levels import Level
from openpacs.dicom.query import Query
from openpacs.errors import NotFound
from tests.support import scu
from tests.support.backends import Backend
from tests.support.corpus import store_bytes, synthetic_ct_series, to_part10_bytes
from tests.support.web import WebNode, running_web_node

RULES = [
    {"users": ["north"], "institutions": ["North Hospital"]},
    {"users": ["ctroom"], "calling_aets": ["CT_NORTH"]},
    {"users": ["teacher"], "labels": ["teaching"]},
    {"users": ["referrer"], "referring_physicians": ["smith^john"]},
    {"users": ["north"], "labels": ["shared"]},
]
# Path parameters of routes that are not about stored studies: walked separately.
NOT_STUDY_PARAMS = {"aet", "job_id", "username", "token_id", "label"}


@dataclass
class Study:
    patient_id: str
    study: str
    series: str
    instance: str


@dataclass
class Site:
    web: WebNode
    north: Study  # InstitutionName North Hospital
    south: Study  # South Clinic, sent by CT_NORTH over DIMSE
    referred: Study  # referring physician SMITH^JOHN
    other: Study  # nothing matches until it is labelled
    north_hidden: Study  # north's patient, South Clinic: the patient is visible, this not
    passwords: dict[str, str]


def _study(web: WebNode, tag: str, **attributes: Any) -> tuple[Study, list[Dataset]]:
    series = synthetic_ct_series(2, rows=32, columns=32, patient_id=f"PID-{tag}")
    for dataset in series:
        for keyword, value in attributes.items():
            setattr(dataset, keyword, value)
    first = series[0]
    return (
        Study(
            first.PatientID, first.StudyInstanceUID, first.SeriesInstanceUID, first.SOPInstanceUID
        ),
        series,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, module_backend: Backend) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("visibility")
    with running_web_node(folder, backend=module_backend, auth={"visibility": RULES}) as web:
        north, north_data = _study(web, "N", InstitutionName="North Hospital")
        south, south_data = _study(web, "S", InstitutionName="South Clinic")
        referred, referred_data = _study(web, "R", ReferringPhysicianName="Smith^John")
        other, other_data = _study(web, "O", InstitutionName="Elsewhere")
        north_hidden, hidden_data = _study(web, "N", InstitutionName="South Clinic")
        for dataset in [*north_data, *referred_data, *other_data, *hidden_data]:
            assert store_bytes(web.archive, to_part10_bytes(dataset)).stored
        statuses = scu.store(web.dicom.port, south_data, aet="CT_NORTH")
        assert [s.Status for s in statuses] == [0, 0]
        passwords = {name: web.add_user(name, "user") for name in ("north", "ctroom", "teacher")}
        passwords["referrer"] = web.add_user("referrer", "user")
        passwords["everyone"] = web.add_user("everyone", "user")  # named by no rule
        yield Site(web, north, south, referred, other, north_hidden, passwords)


def _client(site: Site, user: str) -> httpx.Client:
    return site.web.client(auth=(user, site.passwords[user]))


def _visible_studies(site: Site, user: str) -> set[str]:
    with _client(site, user) as client:
        rest = {item["StudyInstanceUID"] for item in client.get("/api/studies").json()["items"]}
        qido = client.get("/dicom-web/studies")
        found = {s["0020000D"]["Value"][0] for s in qido.json()} if qido.content else set()
    assert rest == found, user
    return rest


def test_each_rule_shows_its_studies_only(site: Site) -> None:
    assert _visible_studies(site, "north") == {site.north.study}
    assert _visible_studies(site, "ctroom") == {site.south.study}  # the C-STORE's calling AE
    assert _visible_studies(site, "referrer") == {site.referred.study}  # case-insensitive
    assert _visible_studies(site, "teacher") == set()
    everything = {
        site.north.study,
        site.south.study,
        site.referred.study,
        site.other.study,
        site.north_hidden.study,
    }
    assert _visible_studies(site, "everyone") == everything
    with site.web.client() as admin:
        assert {i["StudyInstanceUID"] for i in admin.get("/api/studies").json()["items"]} == (
            everything
        )
    with _client(site, "north") as client:
        totals = client.get("/api/statistics").json()
        assert (totals["patients"], totals["studies"], totals["instances"]) == (1, 1, 2)
        # The patient is visible through one study: its counts show that study only.
        patients = client.get("/api/patients").json()["items"]
        assert [p["NumberOfPatientRelatedStudies"] for p in patients] == [1]
        patient = client.get(f"/api/patients/{site.north.patient_id}").json()
        assert [s["StudyInstanceUID"] for s in patient["studies"]] == [site.north.study]


def test_labels_are_added_searched_and_removed_by_admins(site: Site) -> None:
    uid = site.other.study
    with site.web.client() as admin:
        assert admin.put(f"/api/studies/{uid}/labels/teaching").json() == {"labels": ["teaching"]}
        assert admin.put(f"/api/studies/{uid}/labels/teaching").json() == {"labels": ["teaching"]}
        found = admin.get("/api/studies", params={"label": "teaching"}).json()["items"]
        assert [item["StudyInstanceUID"] for item in found] == [uid]
        assert admin.get(f"/api/studies/{uid}").json()["labels"] == ["teaching"]
        assert admin.put(f"/api/studies/{uid}/labels/bad*label").status_code == 400
        assert admin.put("/api/studies/1.2.3.4/labels/teaching").status_code == 404
    assert _visible_studies(site, "teacher") == {uid}
    with _client(site, "teacher") as client:
        assert client.put(f"/api/studies/{uid}/labels/mine").status_code == 403
        assert client.get(f"/api/studies/{uid}/labels").json() == {"labels": ["teaching"]}
    with site.web.client() as admin:
        assert admin.delete(f"/api/studies/{uid}/labels/teaching").json() == {"labels": []}
        assert admin.get("/api/studies", params={"label": "teaching"}).json()["total"] == 0
    assert _visible_studies(site, "teacher") == set()


def _concrete(path: str, study: Study) -> str:
    values = {
        "patient_id": study.patient_id,
        "study": study.study,
        "series": study.series,
        "instance": study.instance,
        "frames": "1",
        "path": "7FE00010",
    }

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "uid":  # /api/{level}/{uid}
            level = path.split("/")[2]
            return {
                "studies": study.study,
                "series": study.series,
                "instances": study.instance,
            }[level]
        if name not in values:
            raise AssertionError(f"the route walk does not know the parameter {name} of {path}")
        return values[name]

    return re.sub(r"\{([^}]+)\}", value, path)


def _study_routes(web: WebNode) -> list[str]:
    routes = []
    for path, operations in web.app.openapi()["paths"].items():
        names = set(re.findall(r"\{([^}]+)\}", path))
        if "get" in operations and names and not names & NOT_STUDY_PARAMS:
            routes.append(path)
    return routes


def test_every_route_answers_404_for_a_study_outside_the_rules(site: Site) -> None:
    routes = _study_routes(site.web)
    assert len(routes) >= 25, routes  # REST, ZIP, QIDO-RS, WADO-RS, rendered, frames, bulk
    hidden, shown = [], []
    absent = Study("PID-NONE", "1.2.3.4.5", "1.2.3.4.5.6", "1.2.3.4.5.6.7")
    with _client(site, "north") as client:
        for path in routes:
            # As if it did not exist: 404, or for the searches nested under a study (QIDO-RS)
            # the same empty answer as for a study never stored.
            nowhere = client.get(_concrete(path, absent))
            assert nowhere.status_code == 404 or nowhere.json() == [], path
            for study in (site.south, site.referred, site.other, site.north_hidden):
                if study is site.north_hidden and "{patient_id}" in path:
                    continue  # its patient is visible, through the north study
                response = client.get(_concrete(path, study))
                if (response.status_code, response.content) != (
                    nowhere.status_code,
                    nowhere.content,
                ) and response.status_code != 404:
                    hidden.append((path, study.study, response.status_code))
            response = client.get(_concrete(path, site.north))
            if response.status_code == 404 and not path.endswith("/bulk/{path}"):
                shown.append(path)  # the walk would prove nothing if visible studies 404 too
    assert hidden == []
    assert shown == []


def test_searches_never_show_a_study_outside_the_rules(site: Site) -> None:
    searches = [
        "/api/patients",
        "/api/studies",
        "/api/series",
        "/api/instances",
        "/dicom-web/studies",
        "/dicom-web/series",
        "/dicom-web/instances",
        f"/api/studies?StudyInstanceUID={site.south.study}",
        f"/dicom-web/studies?StudyInstanceUID={site.south.study}",
        f"/dicom-web/instances?SOPInstanceUID={site.south.instance}",
        f"/api/patients?PatientID={site.south.patient_id}",
    ]
    with _client(site, "north") as client:
        for path in searches:
            response = client.get(path)
            assert response.status_code in (200, 204), path
            for hidden in (site.south, site.other, site.referred):
                assert hidden.study not in response.text, path
                assert hidden.patient_id not in response.text, path
            assert site.north_hidden.study not in response.text, path
        assert site.north.study in client.get("/api/studies").text


def test_refused_reads_are_audited(site: Site) -> None:
    with _client(site, "north") as client:
        assert client.get(f"/api/studies/{site.south.study}/archive").status_code == 404
    with site.web.client() as admin:
        site.web.archive.audit.flush()
        events = admin.get("/api/audit", params={"actor": "north", "limit": 500}).json()["items"]
    refused = [e for e in events if e["outcome"] != "success" and "archive" in e["resource"]]
    assert refused, events[:5]


def test_a_restricted_view_deletes_nothing_it_cannot_see(site: Site) -> None:
    with _client(site, "north") as client:
        assert client.delete(f"/api/studies/{site.south.study}").status_code == 403  # role
    north = site.web.archive.scoped(Visibility(institutions=frozenset({"North Hospital"})))
    with pytest.raises(NotFound):
        north.delete(Level.STUDY, site.south.study)
    assert site.web.archive.instances_for_uid(Level.STUDY, site.south.study)


def test_ingest_records_where_a_study_came_from(site: Site) -> None:
    archive = site.web.archive
    by_calling = archive.scoped(Visibility(calling_aets=frozenset({"CT_NORTH"})))
    by_called = archive.scoped(Visibility(called_aets=frozenset({site.web.dicom.aet})))
    for view in (by_calling, by_called):  # only the study that came over DIMSE
        page = view.page(Level.STUDY, [])
        assert [item["StudyInstanceUID"] for item in page.items] == [site.south.study]
    nothing = archive.scoped(Visibility())
    assert nothing.totals().studies == 0
    assert nothing.find(Query(Level.PATIENT, ())) == []
