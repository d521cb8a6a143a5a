"""STOW-RS with DICOM JSON metadata and bulk data (PS3.18 10.5): a multipart/related;
type="application/dicom+json" body whose data sets name their bulk data parts by
Content-Location (or carry it inline as InlineBinary). What is stored retrieves equal, pixels
and attributes, through dicomweb-client's WADO-RS calls; malformed bodies get a 4xx or a
FailedSOPSequence item with the reason, and nothing of a refused instance is stored. Every
backend: the instances go through the same `Archive.store_file` as C-STORE."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from copy import deepcopy
from typing import Any

import httpx
import numpy as np
import pytest
from dicomweb_client.api import DICOMwebClient
from dicomweb_client.session_utils import create_session_from_user_pass
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.uid import (
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    RLELossless,
    generate_uid,
)

from tests.support.backends import Backend
from tests.support.corpus import synthetic_ct_series
from tests.support.images import compressed, image_dataset, jpeg_baseline, ramp
from tests.support.web import WebNode, running_web_node

BOUNDARY = "openpacs-test-boundary"
JSON_BODY = f'multipart/related; type="application/dicom+json"; boundary={BOUNDARY}'
CANNOT_UNDERSTAND = 0xC000


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory, module_backend: Backend) -> Iterator[WebNode]:
    with running_web_node(tmp_path_factory.mktemp("stow-json"), backend=module_backend) as node:
        yield node


@pytest.fixture(scope="module")
def http(web: WebNode) -> Iterator[httpx.Client]:
    with web.client() as client:
        yield client


@pytest.fixture(scope="module")
def dicomweb(web: WebNode) -> DICOMwebClient:
    session = create_session_from_user_pass(*web.admin)
    return DICOMwebClient(f"{web.url}/dicom-web", session=session)


def _body(*parts: tuple[dict[str, str], bytes]) -> bytes:
    out = io.BytesIO()
    for headers, data in parts:
        out.write(f"--{BOUNDARY}\r\n".encode())
        for name, value in headers.items():
            out.write(f"{name}: {value}\r\n".encode())
        out.write(b"\r\n" + data + b"\r\n")
    out.write(f"--{BOUNDARY}--\r\n".encode())
    return out.getvalue()


def _json_part(datasets: list[dict[str, Any]]) -> tuple[dict[str, str], bytes]:
    return {"Content-Type": "application/dicom+json"}, json.dumps(datasets).encode()


def _described(ds: Dataset, base: str) -> tuple[dict[str, Any], list[tuple[dict[str, str], bytes]]]:
    """`ds` as DICOM JSON whose bulk data (above 64 bytes) are octet-stream parts named
    `{base}/{tag}`, and those parts; smaller binary values stay inline."""
    parts: list[tuple[dict[str, str], bytes]] = []

    def bulk(element: Any) -> str:
        uri = f"{base}/{element.tag:08X}"
        value = element.value if isinstance(element.value, bytes) else element.value.encode()
        headers = {"Content-Type": "application/octet-stream", "Content-Location": uri}
        parts.append((headers, value))
        return uri

    metadata = ds.to_json_dict(bulk_data_threshold=64, bulk_data_element_handler=bulk)
    return metadata, parts


def _post(http: httpx.Client, body: bytes, path: str = "/dicom-web/studies") -> httpx.Response:
    return http.post(path, content=body, headers={"Content-Type": JSON_BODY})


def _failures(response: httpx.Response) -> list[Dataset]:
    return list(Dataset.from_json(response.json()).get("FailedSOPSequence", []))


def _header(ds: Dataset) -> dict[str, Any]:
    """Attributes as DICOM JSON, without file meta and pixel data (compared separately)."""
    attributes = ds.to_json_dict(bulk_data_threshold=1 << 30)
    return {k: v for k, v in attributes.items() if k != "7FE00010" and not k.startswith("0002")}


def _without_pixels(ds: Dataset) -> Dataset:
    copy = deepcopy(ds)
    del copy.PixelData
    return copy


def _retrieve(dicomweb: DICOMwebClient, ds: Dataset) -> Dataset:
    return dicomweb.retrieve_instance(
        str(ds.StudyInstanceUID),
        str(ds.SeriesInstanceUID),
        str(ds.SOPInstanceUID),
        media_types=(("application/dicom", "*"),),
    )


def test_metadata_with_octet_stream_bulk_data_round_trips(
    http: httpx.Client, dicomweb: DICOMwebClient
) -> None:
    (ds,) = synthetic_ct_series(1, rows=32, columns=32)
    ds.add_new(0x00091010, "OB", b"\x01\x02\x03\x04")  # small: inline, as InlineBinary
    ds.add_new(0x00090010, "LO", "OPENPACS TEST")
    metadata, parts = _described(ds, "http://client.example/bulk/1")
    assert "InlineBinary" in metadata["00091010"]
    response = _post(http, _body(_json_part([metadata]), *parts))
    assert response.status_code == 200, response.text
    stored = Dataset.from_json(response.json()).ReferencedSOPSequence
    assert [str(item.ReferencedSOPInstanceUID) for item in stored] == [str(ds.SOPInstanceUID)]

    retrieved = _retrieve(dicomweb, ds)
    assert retrieved.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert _header(retrieved) == _header(ds)
    assert np.array_equal(retrieved.pixel_array, ds.pixel_array)
    metadata_back = dicomweb.retrieve_instance_metadata(
        str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)
    )
    assert metadata_back["00100010"] == metadata["00100010"]


@pytest.mark.parametrize(
    ("media_type", "syntax", "encode"),
    [
        ("image/jpeg", JPEGBaseline8Bit, None),  # the syntax read from the frame header
        ("image/jp2", JPEG2000Lossless, JPEG2000Lossless),
        ("image/dicom-rle", RLELossless, RLELossless),
    ],
)
def test_compressed_pixel_data_in_its_media_type_round_trips(
    http: httpx.Client, dicomweb: DICOMwebClient, media_type: str, syntax: str, encode: Any
) -> None:
    if encode is None:
        pixels = (ramp(32, 64, 0, 255)).astype(np.uint8)
        original = jpeg_baseline(pixels)
    else:
        original = compressed(image_dataset(ramp(32, 64)), encode)
    (frame,) = generate_frames(original.PixelData, number_of_frames=1)
    metadata = _without_pixels(original).to_json_dict()
    uri = f"urn:openpacs-test:{generate_uid()}"
    metadata["7FE00010"] = {"vr": "OB", "BulkDataURI": uri}
    content_type = media_type if encode is None else f"{media_type}; transfer-syntax={syntax}"
    part = ({"Content-Type": content_type, "Content-Location": uri}, frame)
    response = _post(http, _body(_json_part([metadata]), part))
    assert response.status_code == 200, response.text

    retrieved = _retrieve(dicomweb, original)
    assert retrieved.file_meta.TransferSyntaxUID == syntax
    assert _header(retrieved) == _header(original)
    assert np.array_equal(retrieved.pixel_array, original.pixel_array)
    # and decompressed on request, as any stored instance
    native = dicomweb.retrieve_instance(
        str(original.StudyInstanceUID),
        str(original.SeriesInstanceUID),
        str(original.SOPInstanceUID),
        media_types=(("application/dicom", "1.2.840.10008.1.2.1"),),
    )
    assert native.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert np.array_equal(native.pixel_array, original.pixel_array)


def test_a_bad_json_part_is_a_400_with_the_reason(http: httpx.Client) -> None:
    body = _body(({"Content-Type": "application/dicom+json"}, b'[{"00080018": '))
    response = _post(http, body)
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["detail"]
    not_a_list = _post(http, _body(({"Content-Type": "application/dicom+json"}, b'"x"')))
    assert not_a_list.status_code == 400
    assert "array of data sets" in not_a_list.json()["detail"]


def test_missing_and_unknown_bulk_parts_fail_the_instance_with_the_reason(
    http: httpx.Client, dicomweb: DICOMwebClient
) -> None:
    good, missing, elsewhere = synthetic_ct_series(3, rows=16, columns=16)
    good_metadata, good_parts = _described(good, "http://client.example/good")
    missing_metadata, _dropped = _described(missing, "http://client.example/missing")
    elsewhere_metadata, elsewhere_parts = _described(elsewhere, "http://client.example/one")
    (headers, data), *_rest = elsewhere_parts
    misnamed = ({**headers, "Content-Location": "http://client.example/another"}, data)
    body = _body(
        _json_part([good_metadata, missing_metadata, elsewhere_metadata]), *good_parts, misnamed
    )
    response = _post(http, body)
    assert response.status_code == 202, response.text
    failures = _failures(response)
    assert sorted(str(f.ReferencedSOPInstanceUID) for f in failures) == sorted(
        [str(missing.SOPInstanceUID), str(elsewhere.SOPInstanceUID)]
    )
    assert {int(f.FailureReason) for f in failures} == {CANNOT_UNDERSTAND}
    warning = response.headers["Warning"]
    assert "names no part of the request" in warning
    assert "no data set names the part at 'http://client.example/another'" in warning
    found = dicomweb.search_for_instances(
        str(good.StudyInstanceUID), fields=["SOPInstanceUID"], get_remaining=True
    )
    assert [i["00080018"]["Value"][0] for i in found] == [str(good.SOPInstanceUID)]


def test_refused_data_sets_get_the_reasons_a_c_store_would(http: httpx.Client) -> None:
    bad_uid, other_study = synthetic_ct_series(2, rows=16, columns=16)
    bad_uid_metadata, bad_uid_parts = _described(bad_uid, "urn:x:bad-uid")
    bad_uid_metadata["0020000E"]["Value"] = ["1.02.3"]  # a leading zero: not a UID
    jpeg = jpeg_baseline(ramp(16, 16, 0, 255).astype(np.uint8))
    (frame,) = generate_frames(jpeg.PixelData, number_of_frames=1)
    described = _without_pixels(jpeg)
    del described.Rows
    bare = described.to_json_dict()
    bare["7FE00010"] = {"vr": "OB", "BulkDataURI": "urn:x:jpeg"}
    jpeg_part = ({"Content-Type": "image/jpeg", "Content-Location": "urn:x:jpeg"}, frame)
    body = _body(_json_part([bad_uid_metadata, bare]), *bad_uid_parts, jpeg_part)
    response = _post(http, body)
    assert response.status_code == 409, response.text
    assert len(_failures(response)) == 2
    warning = response.headers["Warning"]
    assert "'1.02.3' is not a valid UID" in warning
    assert "Image Pixel Description attributes; missing: Rows" in warning

    # /studies/{study}: a data set of another study is refused like an application/dicom part
    metadata, parts = _described(other_study, "urn:x:other")
    response = _post(http, _body(_json_part([metadata]), *parts), "/dicom-web/studies/1.2.3")
    assert response.status_code == 409
    assert "not in the study of the URL" in response.headers["Warning"]


def test_malformed_requests_are_refused_whole(http: httpx.Client) -> None:
    (ds,) = synthetic_ct_series(1, rows=16, columns=16)
    metadata, parts = _described(ds, "urn:x:twice")
    twice = _body(_json_part([metadata]), parts[0], parts[0])
    response = _post(http, twice)
    assert response.status_code == 400
    assert "two parts have the Content-Location" in response.json()["detail"]
    no_metadata = _body(*parts)
    response = _post(http, no_metadata)
    assert response.status_code == 400
    assert "application/dicom+json" in response.json()["detail"]
    xml = http.post(
        "/dicom-web/studies",
        content=_body(({"Content-Type": "application/dicom+xml"}, b"<x/>")),
        headers={
            "Content-Type": f'multipart/related; type="application/dicom+xml"; boundary={BOUNDARY}'
        },
    )
    assert xml.status_code == 415
    assert (
        http.get("/dicom-web/studies", params={"StudyInstanceUID": ds.StudyInstanceUID}).json()
        == []
    )


def test_application_dicom_parts_may_ride_along(
    http: httpx.Client, dicomweb: DICOMwebClient
) -> None:
    described, plain = synthetic_ct_series(2, rows=16, columns=16)
    metadata, parts = _described(described, "urn:x:along")
    buffer = io.BytesIO()
    plain.save_as(buffer, enforce_file_format=True)
    instance = ({"Content-Type": "application/dicom"}, buffer.getvalue())
    response = _post(http, _body(_json_part([metadata]), *parts, instance))
    assert response.status_code == 200, response.text
    for ds in (described, plain):
        assert _retrieve(dicomweb, ds).SOPInstanceUID == ds.SOPInstanceUID
    assert dcmread(io.BytesIO(buffer.getvalue())).SOPInstanceUID == plain.SOPInstanceUID
