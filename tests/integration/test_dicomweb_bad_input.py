"""Bad input to DICOMweb: 4xx with a reason, nothing stored, the server still answering."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import JPEG2000Lossless, generate_uid

import openpacs.dicom.header as header_module
import openpacs.web.dicomweb.stow as stow_module
from tests.support.corpus import synthetic_ct_series, to_part10_bytes
from tests.support.web import WebNode, running_web_node

DICOM = 'multipart/related; type="application/dicom"; boundary=b'
TRAVERSALS = [
    "...",
    "..%2F..%2Fetc%2Fpasswd",
    "1.2.3%00",
    "1.2.3'%20OR%201=1--",
    "%2e%2e",
    "x" * 70,
]


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebNode]:
    with running_web_node(tmp_path_factory.mktemp("dicomweb-bad")) as node:
        yield node


@pytest.fixture
def http(web: WebNode) -> Iterator[httpx.Client]:
    with web.client() as client:
        yield client
        assert client.get("/health").status_code == 200  # still alive


def _body(*parts: tuple[str, bytes], close: bool = True) -> bytes:
    chunks = [b"--b\r\nContent-Type: " + t.encode() + b"\r\n\r\n" + d + b"\r\n" for t, d in parts]
    return b"".join(chunks) + (b"--b--\r\n" if close else b"")


def _instance() -> bytes:
    return to_part10_bytes(synthetic_ct_series(1, rows=16, columns=16)[0])


def _path_templates(bad: str) -> list[str]:
    uid = "1.2.3"
    return [
        f"/dicom-web/studies/{bad}",
        f"/dicom-web/studies/{bad}/series",
        f"/dicom-web/studies/{bad}/metadata",
        f"/dicom-web/studies/{bad}/rendered",
        f"/dicom-web/studies/{bad}/thumbnail",
        f"/dicom-web/studies/{uid}/series/{bad}",
        f"/dicom-web/studies/{uid}/series/{bad}/instances",
        f"/dicom-web/studies/{uid}/series/{bad}/metadata",
        f"/dicom-web/studies/{uid}/series/{uid}/instances/{bad}",
        f"/dicom-web/studies/{uid}/series/{uid}/instances/{bad}/frames/1",
        f"/dicom-web/studies/{uid}/series/{uid}/instances/{bad}/rendered",
        f"/dicom-web/studies/{uid}/series/{uid}/instances/{uid}/frames/{bad}",
        f"/dicom-web/studies/{uid}/series/{uid}/instances/{uid}/bulk/{bad}",
    ]


@pytest.mark.parametrize("bad", TRAVERSALS)
def test_path_parameters_are_checked(http: httpx.Client, bad: str) -> None:
    for path in _path_templates(bad):
        response = http.get(path)
        assert 400 <= response.status_code < 500, path
        if response.status_code != 404 or response.headers.get("content-type", "").startswith(
            "application/json"
        ):
            assert response.json()["detail"], path


@pytest.mark.parametrize(
    "query",
    [
        "StudyDate=2020",
        "StudyDate=20200101-notadate",
        "PatientName=x&limit=-1",
        "limit=abc",
        "offset=1e9",
        "fuzzymatching=maybe",
        "NoSuchKeyword=1",
        "includefield=NoSuchKeyword",
        "SeriesNumber=1%20OR%201%3D1",
        "StudyInstanceUID=1.2.3'%3B%20DROP%20TABLE%20studies%3B--",
        "00100010.00100020=x",
        "NumberOfStudyRelatedInstances=2",
    ],
)
def test_malformed_qido_is_400(http: httpx.Client, query: str) -> None:
    response = http.get(f"/dicom-web/studies?{query}")
    assert response.status_code == 400, query
    assert response.json()["detail"]


def test_sql_like_names_are_only_compared(http: httpx.Client) -> None:
    response = http.get("/dicom-web/studies", params={"PatientName": "' OR '1'='1"})
    assert response.status_code == 200
    assert response.json() == []


def test_unacceptable_media_types_are_406(web: WebNode, http: httpx.Client) -> None:
    assert http.get("/dicom-web/studies", headers={"Accept": "text/html"}).status_code == 406
    ds = synthetic_ct_series(1, rows=16, columns=16)[0]
    stored = http.post(
        "/dicom-web/studies",
        content=_body(("application/dicom", to_part10_bytes(ds))),
        headers={"Content-Type": DICOM},
    )
    assert stored.status_code == 200
    base = (
        f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )
    for path, accept in [
        (base, "application/json"),
        (base + "/metadata", "application/dicom+xml"),
        (base + "/rendered", "image/gif"),
        (base + "/frames/1", 'multipart/related; type="image/jp2"'),
    ]:
        response = http.get(path, headers={"Accept": accept})
        assert response.status_code == 406, path
        assert response.json()["detail"]


@pytest.mark.parametrize(
    ("content_type", "body", "status", "reason"),
    [
        ("application/json", b"{}", 415, "not multipart/related"),
        (None, b"x", 415, "missing"),
        (
            'multipart/related; type="application/dicom"',
            _body(("application/dicom", b"x")),
            400,
            "boundary",
        ),
        (
            'multipart/related; type="application/dicom+xml"; boundary=b',
            b"--b--",
            415,
            "not supported",
        ),
        (DICOM, b"not a multipart body at all", 400, "boundary line"),
        (DICOM, _body(("application/dicom", b"DICM" * 100), close=False), 400, "truncated"),
        (DICOM, b"--b--\r\n", 400, "no parts"),
    ],
)
def test_malformed_stow_bodies_store_nothing(
    web: WebNode,
    http: httpx.Client,
    content_type: str | None,
    body: bytes,
    status: int,
    reason: str,
) -> None:
    before = web.archive.totals().instances
    headers = {"Content-Type": content_type} if content_type else {}
    response = http.post("/dicom-web/studies", content=body, headers=headers)
    assert response.status_code == status
    assert reason in response.json()["detail"]
    assert web.archive.totals().instances == before


def test_truncated_instance_in_a_complete_body(web: WebNode, http: httpx.Client) -> None:
    before = web.archive.totals().instances
    good = _instance()
    response = http.post(
        "/dicom-web/studies",
        content=_body(("application/dicom", good[:-100]), ("text/plain", b"hello")),
        headers={"Content-Type": DICOM},
    )
    assert response.status_code == 409
    failed = response.json()["00081198"]["Value"]
    assert [item["00081197"]["Value"][0] for item in failed] == [0xC000, 0xC000]
    assert "truncated" in response.headers["warning"]
    assert "text/plain" in response.headers["warning"]
    assert web.archive.totals().instances == before


def test_partial_success_is_202_and_a_study_mismatch_fails(
    web: WebNode, http: httpx.Client
) -> None:
    before = web.archive.totals().instances
    good = synthetic_ct_series(1, rows=16, columns=16)[0]
    response = http.post(
        f"/dicom-web/studies/{good.StudyInstanceUID}",
        content=_body(
            ("application/dicom", to_part10_bytes(good)), ("application/dicom", _instance())
        ),
        headers={"Content-Type": DICOM},
    )
    assert response.status_code == 202
    body = response.json()
    assert body["00081199"]["Value"][0]["00081155"]["Value"] == [str(good.SOPInstanceUID)]
    mismatched = body["00081198"]["Value"][0]
    assert mismatched["00081197"]["Value"] == [0xA900]
    assert mismatched["00081155"]["Value"]  # the refused instance is named
    assert web.archive.totals().instances == before + 1


def test_a_stored_part_is_parsed_once(
    web: WebNode, http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The identifiers of the response and the stored header come from one parse."""
    parses: list[Path] = []
    parse = header_module._parse

    def counted(path: Path) -> Dataset:
        parses.append(path)
        return parse(path)

    monkeypatch.setattr(header_module, "_parse", counted)
    monkeypatch.setattr(stow_module, "dcmread", _refuse_to_read)
    good = synthetic_ct_series(1, rows=16, columns=16)[0]
    response = http.post(
        f"/dicom-web/studies/{good.StudyInstanceUID}",
        content=_body(("application/dicom", to_part10_bytes(good))),
        headers={"Content-Type": DICOM},
    )
    assert response.status_code == 200, response.text
    assert len(parses) == 1


def _refuse_to_read(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("a stored part was read again for its identifiers")


def test_oversized_body_is_413(tmp_path: Path) -> None:
    with running_web_node(tmp_path, http={"stow_max_mb": 1}) as small, small.client() as http:
        body = _body(("application/dicom", b"\0" * (1024 * 1024 + 1)))
        declared = http.post("/dicom-web/studies", content=body, headers={"Content-Type": DICOM})
        assert declared.status_code == 413
        assert "larger than" in declared.json()["detail"]

        def chunked() -> Iterator[bytes]:  # no Content-Length: the reader counts
            for start in range(0, len(body), 65536):
                yield body[start : start + 65536]

        streamed = http.post(
            "/dicom-web/studies", content=chunked(), headers={"Content-Type": DICOM}
        )
        assert streamed.status_code == 413
        assert "larger than" in streamed.json()["detail"]
        assert small.archive.totals().instances == 0
        assert http.get("/health").status_code == 200
        staging = small.archive.staging_dir()
        assert staging is None or not list(staging.glob("*.stow"))


def test_roles(web: WebNode) -> None:
    password = web.add_user("dw-uploader", "uploader")
    with web.client(auth=("dw-uploader", password)) as uploader:
        assert uploader.get("/dicom-web/studies").status_code == 403
        stored = uploader.post(
            "/dicom-web/studies",
            content=_body(("application/dicom", _instance())),
            headers={"Content-Type": DICOM},
        )
        assert stored.status_code == 200
    password = web.add_user("dw-reader", "user")
    with web.client(auth=("dw-reader", password)) as reader:
        assert reader.get("/dicom-web/studies").status_code == 200
        refused = reader.post(
            "/dicom-web/studies",
            content=_body(("application/dicom", _instance())),
            headers={"Content-Type": DICOM},
        )
        assert refused.status_code == 403
    with web.client(auth=None) as anonymous:
        assert anonymous.get("/dicom-web/studies").status_code == 401
        assert anonymous.post(f"/dicom-web/studies/{generate_uid()}").status_code == 401


def test_undecodable_pixel_data(web: WebNode, http: httpx.Client) -> None:
    """Stored as received (ingest never decodes), refused or cut short when decoding is needed."""
    ds = synthetic_ct_series(1, rows=16, columns=16)[0]
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + b"\x00" * 60])  # a broken J2K codestream
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    stored = http.post(
        "/dicom-web/studies",
        content=_body(("application/dicom", to_part10_bytes(ds))),
        headers={"Content-Type": DICOM},
    )
    assert stored.status_code == 200
    base = (
        f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )
    rendered = http.get(base + "/rendered")
    assert rendered.status_code == 406
    assert "cannot decode" in rendered.json()["detail"]
    frame = http.get(base + "/frames/1")  # octet-stream: needs decoding
    assert frame.status_code == 406
    as_stored = http.get(
        base, headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}
    )
    assert as_stored.status_code == 200
    assert as_stored.content.rstrip().endswith(b"--")
    # No transfer-syntax: Explicit VR Little Endian, whose decoding fails after the status.
    converted = http.get(base, headers={"Accept": 'multipart/related; type="application/dicom"'})
    assert converted.status_code == 200
    assert not converted.content.rstrip().endswith(b"--")
