"""Hypothesis over DICOMweb paths, parameters and bodies: never a 5xx, never a stored file."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.corpus import synthetic_ct_series, to_part10_bytes
from tests.support.web import WebNode, running_web_node

FIXTURE = [HealthCheck.function_scoped_fixture]
SEGMENTS = st.one_of(
    st.sampled_from(["1.2.3", "0", "1.2.840.10008.1.2.1", "..", "%2e%2e", "%2F", "1,2", "*"]),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20),
)
TEMPLATES = [
    "/dicom-web/studies/{a}",
    "/dicom-web/studies/{a}/series",
    "/dicom-web/studies/{a}/metadata",
    "/dicom-web/studies/{a}/thumbnail",
    "/dicom-web/studies/{a}/series/{b}/instances",
    "/dicom-web/studies/{a}/series/{b}/rendered",
    "/dicom-web/studies/{a}/series/{b}/instances/{c}",
    "/dicom-web/studies/{a}/series/{b}/instances/{c}/frames/{a}",
    "/dicom-web/studies/{a}/series/{b}/instances/{c}/frames/{a}/rendered",
    "/dicom-web/studies/{a}/series/{b}/instances/{c}/bulk/{a}",
]
NAMES = st.sampled_from(
    [
        "PatientName",
        "StudyDate",
        "00100020",
        "limit",
        "offset",
        "includefield",
        "fuzzymatching",
        "window",
        "viewport",
        "quality",
        "SeriesNumber",
        "ModalitiesInStudy",
        "StudyInstanceUID",
        "accept",
        "x",
    ]
)
VALUES = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)
ACCEPTS = st.sampled_from(
    [
        "*/*",
        "image/png",
        "application/dicom+json",
        'multipart/related; type="application/dicom"',
        'multipart/related; type="application/octet-stream"; transfer-syntax=*',
        "text/html",
        "multipart/related; type=",
        ";;;",
        "a/b; q=x, */*; q=0.1",
    ]
)


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebNode]:
    with running_web_node(tmp_path_factory.mktemp("dicomweb-fuzz")) as node:
        ds = synthetic_ct_series(1, rows=16, columns=16)[0]
        with node.client() as http:
            body = (
                b"--b\r\nContent-Type: application/dicom\r\n\r\n"
                + to_part10_bytes(ds)
                + b"\r\n--b--\r\n"
            )
            response = http.post(
                "/dicom-web/studies",
                content=body,
                headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=b'},
            )
            assert response.status_code == 200
        yield node


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    template=st.sampled_from(TEMPLATES),
    a=SEGMENTS,
    b=SEGMENTS,
    c=SEGMENTS,
    params=st.lists(st.tuples(NAMES, VALUES), max_size=4),
    accept=ACCEPTS,
)
def test_get_never_fails_with_5xx(
    web: WebNode,
    template: str,
    a: str,
    b: str,
    c: str,
    params: list[tuple[str, str]],
    accept: str,
) -> None:
    a, b, c = (quote(segment, safe="%") or "x" for segment in (a, b, c))
    path = template.format(a=a, b=b, c=c)
    with web.client() as http:
        response = http.get(path, params=params, headers={"Accept": accept})
    assert response.status_code < 500, (path, params, accept, response.text[:200])


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.binary(max_size=2000),
    content_type=st.sampled_from(
        [
            'multipart/related; type="application/dicom"; boundary=b',
            "multipart/related; boundary=b",
            "multipart/related",
            "application/dicom",
            "",
        ]
    ),
)
def test_stow_with_junk_never_fails_with_5xx_nor_stores(
    web: WebNode, body: bytes, content_type: str
) -> None:
    before = web.archive.totals().instances
    with web.client() as http:
        response = http.post(
            "/dicom-web/studies",
            content=b"--b\r\n\r\n" + body + b"\r\n--b--\r\n",
            headers={"Content-Type": content_type} if content_type else {},
        )
    assert 400 <= response.status_code < 500
    assert web.archive.totals().instances == before
