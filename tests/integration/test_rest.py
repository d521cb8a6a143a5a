"""The REST API over a real server and index (every backend): search, paging, sort, one
resource, Part 10 and ZIP downloads, delete, statistics, bad input."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from pydicom import dcmread

from tests.support import scu
from tests.support.backends import Backend
from tests.support.corpus import synthetic_ct_series, to_part10_bytes
from tests.support.web import WebNode, running_web_node


@dataclass
class Loaded:
    web: WebNode
    studies: dict[str, list]  # study uid -> datasets


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory, module_backend: Backend) -> Iterator[Loaded]:
    with running_web_node(tmp_path_factory.mktemp("rest"), backend=module_backend) as web:
        studies = {}
        specs = [
            ("Adams^Ann", "P1", "20200105", "CT", 2),
            ("Baker^Bob", "P2", "20210310", "MR", 1),
            ("Adler^Al", "P3", "20190720", "CT", 3),
            ("Clark^Cy", "P4", "20220101", "CT", 1),
        ]
        for seed, (name, pid, date, modality, count) in enumerate(specs):
            series = synthetic_ct_series(
                count, rows=8, columns=8, patient_name=name, patient_id=pid,
                study_date=date, modality=modality, accession=f"A{seed}", seed=seed,
            )  # fmt: skip
            assert {s.Status for s in scu.store(web.dicom.port, series)} == {0}
            studies[str(series[0].StudyInstanceUID)] = series
        yield Loaded(web, studies)


def _get(loaded: Loaded, path: str, **params: object) -> dict:
    with loaded.web.client() as client:
        response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_search_filters_with_c_find_syntax(loaded: Loaded) -> None:
    adams = _get(loaded, "/api/studies", PatientName="AD*")
    assert adams["total"] == 2
    assert {i["PatientID"] for i in adams["items"]} == {"P1", "P3"}
    ranged = _get(loaded, "/api/studies", StudyDate="20200101-20211231")
    assert {i["PatientID"] for i in ranged["items"]} == {"P1", "P2"}
    mr = _get(loaded, "/api/studies", ModalitiesInStudy="MR")
    assert [i["PatientID"] for i in mr["items"]] == ["P2"]
    assert mr["items"][0]["ModalitiesInStudy"] == ["MR"]
    assert mr["items"][0]["NumberOfStudyRelatedInstances"] == 1
    series = _get(loaded, "/api/series", Modality="CT", PatientID="P3")
    assert series["total"] == 1
    assert series["items"][0]["NumberOfSeriesRelatedInstances"] == 3


def test_search_on_attributes_of_the_stored_header(loaded: Loaded) -> None:
    # No index column holds these: they are matched in the stored headers, in SQL.
    assert _get(loaded, "/api/series", ImageType="AXIAL")["total"] == 4
    assert _get(loaded, "/api/series", ImageType="SECONDARY")["total"] == 0
    one = _get(loaded, "/api/studies", ConvolutionKernel="STAND*", PatientID="P2")
    assert [i["PatientID"] for i in one["items"]] == ["P2"]
    by_tag = _get(loaded, "/api/instances", **{"00185100": "HFS"}, limit=3)  # PatientPosition
    assert by_tag["total"] == 7
    assert len(by_tag["items"]) == 3
    assert _get(loaded, "/api/studies", PatientPosition="FFS\\HFS")["total"] == 4
    with loaded.web.client() as client:
        for params in ({"OperatorsName": "X"}, {"ContentDate": "20200105"}):
            response = client.get("/api/studies", params=params)
            assert response.status_code == 400
            assert "stored headers" in response.json()["detail"]


def test_free_text_search(loaded: Loaded) -> None:
    def found(level: str, q: str) -> list[str]:
        return sorted(i["PatientID"] for i in _get(loaded, f"/api/{level}", q=q)["items"])

    assert found("studies", "adams") == ["P1"]
    assert found("studies", "ADAM contrast") == ["P1"]  # word prefixes, any case, all words
    assert found("studies", "ann bob") == []
    assert found("studies", "axial") == ["P1", "P2", "P3", "P4"]  # a series description
    counted = _get(loaded, "/api/studies", q="axial")
    assert (counted["total"], counted["more"]) == (4, False)  # counted exactly up to 1,000
    assert found("series", "bak") == ["P2"]
    assert found("instances", "baker") == ["P2"]
    assert found("studies", "'; DROP TABLE studies;--") == []
    assert found("studies", "  ") == ["P1", "P2", "P3", "P4"]  # no words: no condition
    narrowed = _get(loaded, "/api/studies", q="chest", StudyDate="20200101-20211231")
    assert sorted(i["PatientID"] for i in narrowed["items"]) == ["P1", "P2"]
    with loaded.web.client() as client:
        response = client.get("/api/studies", params={"q": " ".join(["w"] * 9)})
        assert response.status_code == 400
        assert "words" in response.json()["detail"]


def test_paging_and_sort(loaded: Loaded) -> None:
    dates = [i["StudyDate"] for i in _get(loaded, "/api/studies", sort="StudyDate")["items"]]
    assert dates == sorted(dates)
    newest = _get(loaded, "/api/studies", sort="-StudyDate", limit=2)
    assert newest["total"] == 4
    assert [i["StudyDate"] for i in newest["items"]] == ["20220101", "20210310"]
    rest = _get(loaded, "/api/studies", sort="-StudyDate", limit=2, offset=2)
    assert [i["StudyDate"] for i in rest["items"]] == ["20200105", "20190720"]
    names = [i["PatientName"] for i in _get(loaded, "/api/patients", sort="PatientName")["items"]]
    assert names == ["Adams^Ann", "Adler^Al", "Baker^Bob", "Clark^Cy"]
    instances = _get(loaded, "/api/instances", limit=5, offset=5)
    assert instances["total"] == 7
    assert len(instances["items"]) == 2


def test_one_study_with_its_series_and_instances(loaded: Loaded) -> None:
    uid, datasets = next((u, d) for u, d in loaded.studies.items() if len(d) == 3)
    study = _get(loaded, f"/api/studies/{uid}")
    assert study["StudyInstanceUID"] == uid
    assert study["PatientName"] == "Adler^Al"
    assert [s["SeriesInstanceUID"] for s in study["series"]] == [str(datasets[0].SeriesInstanceUID)]
    series = _get(loaded, f"/api/series/{datasets[0].SeriesInstanceUID}")
    assert sorted(i["SOPInstanceUID"] for i in series["instances"]) == sorted(
        str(d.SOPInstanceUID) for d in datasets
    )
    patient = _get(loaded, "/api/patients/P3")
    assert [s["StudyInstanceUID"] for s in patient["studies"]] == [uid]


def test_instance_download_is_the_stored_part10_file(loaded: Loaded) -> None:
    dataset = next(iter(loaded.studies.values()))[0]
    with loaded.web.client() as client:
        response = client.get(f"/api/instances/{dataset.SOPInstanceUID}/file")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/dicom"
    assert dcmread(io.BytesIO(response.content)).SOPInstanceUID == dataset.SOPInstanceUID
    assert len(response.content) >= len(to_part10_bytes(dataset)) - 1024


def test_study_and_series_zip_hold_exactly_their_instances(loaded: Loaded) -> None:
    uid, datasets = next((u, d) for u, d in loaded.studies.items() if len(d) == 3)
    with loaded.web.client() as client:
        with client.stream("GET", f"/api/studies/{uid}/archive") as response:
            assert response.status_code == 200
            assert "content-length" not in response.headers  # streamed
            body = b"".join(response.iter_bytes())
        series_zip = client.get(f"/api/series/{datasets[0].SeriesInstanceUID}/archive").content
    for content in (body, series_zip):
        archive = zipfile.ZipFile(io.BytesIO(content))
        assert archive.testzip() is None
        names = archive.namelist()
        assert sorted(n.rsplit("/", 1)[1] for n in names) == sorted(
            f"{d.SOPInstanceUID}.dcm" for d in datasets
        )
        for name in names:
            parsed = dcmread(io.BytesIO(archive.read(name)))
            assert name.startswith(f"{uid}/{parsed.SeriesInstanceUID}/")


def test_cursor_paging_walks_forward_and_back(loaded: Loaded) -> None:
    everything = _get(loaded, "/api/studies", sort="-StudyDate")
    order = [i["StudyDate"] for i in everything["items"]]
    assert everything["next"] is None
    assert everything["previous"] is None
    pages = [_get(loaded, "/api/studies", sort="-StudyDate", limit=3)]
    while pages[-1]["next"]:
        pages.append(
            _get(loaded, "/api/studies", sort="-StudyDate", limit=3, cursor=pages[-1]["next"])
        )
    assert [[i["StudyDate"] for i in p["items"]] for p in pages] == [order[:3], order[3:]]
    assert [p["offset"] for p in pages] == [0, 3]
    assert all(p["total"] == 4 for p in pages)
    back = _get(loaded, "/api/studies", sort="-StudyDate", limit=3, cursor=pages[1]["previous"])
    assert back["items"] == pages[0]["items"]
    assert back["previous"] is None


@pytest.mark.parametrize(
    "path",
    [
        "/api/studies/..%2F..%2Fetc%2Fpasswd",
        "/api/studies/1.2.3'%20OR%201=1--",
        "/api/series/../../../etc/passwd/archive",
        "/api/instances/%2e%2e%2f%2e%2e%2findex.db/file",
        "/api/patients/..%2F..%2Findex.db",
        "/api/studies?StudyDate=2020-13-45",
        "/api/studies?limit=-1",
        "/api/studies?limit=abc",
        "/api/studies?offset=99999999999",
        "/api/studies?sort=password",
        "/api/studies?sort=SeriesNumber",
        "/api/studies?SOPInstanceUID=1.2",
        "/api/studies?NotAKeyword=1",
        "/api/studies?NumberOfStudyRelatedSeries=1",
        "/api/studies?InstitutionName=" + "x" * 2000,
        "/api/instances/1.2.3/file",
        "/api/studies?cursor=not+a+cursor",
        "/api/studies?cursor=e30",
        "/api/studies?cursor=eyJzIjpudWxsLCJkIjpmYWxzZSwiYiI6ZmFsc2UsInYiOm51bGwsImsiOjF9&offset=1",
        "/api/studies?sort=StudyDate&cursor=eyJzIjpudWxsLCJkIjpmYWxzZSwiYiI6ZmFsc2UsInYiOm51bGwsImsiOjF9",
    ],
)
def test_bad_input_gets_a_4xx_with_a_reason(loaded: Loaded, path: str) -> None:
    with loaded.web.client() as client:
        response = client.get(path)
        assert 400 <= response.status_code < 500, (path, response.status_code)
        if response.headers.get("content-type") == "application/json":
            assert isinstance(response.json()["detail"], str)
        assert client.get("/api/statistics").json()["studies"] == 4  # nothing dropped


@pytest.mark.parametrize(
    "value", ["'; DROP TABLE studies;--", '" OR 1=1 --', "A*' UNION SELECT * FROM users--"]
)
def test_sql_like_search_values_are_only_values(loaded: Loaded, value: str) -> None:
    assert _get(loaded, "/api/studies", PatientName=value)["total"] == 0
    assert _get(loaded, "/api/studies", AccessionNumber=value)["total"] == 0
    assert _get(loaded, "/api/statistics")["studies"] == 4


def test_statistics(loaded: Loaded) -> None:
    stats = _get(loaded, "/api/statistics")
    assert {k: stats[k] for k in ("patients", "studies", "series", "instances")} == {
        "patients": 4,
        "studies": 4,
        "series": 4,
        "instances": 7,
    }
    assert stats["bytes"] > 0


def test_delete_at_each_level(tmp_path_factory: pytest.TempPathFactory) -> None:
    with running_web_node(tmp_path_factory.mktemp("delete")) as web, web.client() as client:
        series = synthetic_ct_series(3, rows=8, columns=8, patient_id="DEL")
        other = synthetic_ct_series(1, rows=8, columns=8, patient_id="DEL")
        scu.store(web.dicom.port, [*series, *other])
        headers = {"X-Requested-With": "XMLHttpRequest"}
        gone = client.delete(f"/api/instances/{series[0].SOPInstanceUID}", headers=headers)
        assert gone.json() == {"deleted_instances": 1}
        assert client.delete(f"/api/series/{series[1].SeriesInstanceUID}").json() == {
            "deleted_instances": 2
        }
        assert client.delete(f"/api/studies/{other[0].StudyInstanceUID}").status_code == 200
        assert client.delete(f"/api/studies/{other[0].StudyInstanceUID}").status_code == 404
        assert client.get("/api/statistics").json()["instances"] == 0
        scu.store(web.dicom.port, other)
        assert client.delete("/api/patients/DEL").json() == {"deleted_instances": 1}
        assert client.get("/api/patients").json()["total"] == 0
