"""WADO-RS without a transfer-syntax parameter sends Explicit VR Little Endian (PS3.18 8.7.3.5.2).

dicomweb-client's default `retrieve_series` and `retrieve_study` accept
`multipart/related; type="application/dicom"` and nothing else: every instance must come back
in Explicit VR Little Endian, whatever it is stored in, with the pixels of the stored file (as
pydicom decodes them, which for a lossy codec is the reference). So must `retrieve_instance`
asked the same way, and a client that accepts anything (`*/*`, no Accept header).
dicomweb-client's default `retrieve_instance` itself asks `transfer-syntax=*` (0.61), which
means "as stored": that, and only that, returns the stored bytes.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
from dicomweb_client.api import DICOMwebClient
from dicomweb_client.session_utils import create_session_from_auth
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian
from requests.auth import HTTPBasicAuth

from tests.support import scu
from tests.support.syntaxes import SOURCES, Sample, samples
from tests.support.web import WebNode, multipart_parts, running_web_node

pytestmark = pytest.mark.dcmtk  # dcmcjpeg makes the JPEG Extended sample


@dataclass(frozen=True)
class Stored:
    web: WebNode
    client: DICOMwebClient
    samples: dict[str, Sample]


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stored]:
    folder = tmp_path_factory.mktemp("default-syntax")
    made = {sample.label: sample for sample in samples(folder / "samples")}
    with running_web_node(folder / "node") as web:
        contexts = sorted({(s.sop_class_uid, s.transfer_syntax) for s in made.values()})
        with scu.association(web.dicom.port, [(c, [t]) for c, t in contexts]) as assoc:
            for sample in made.values():
                status = assoc.send_c_store(sample.path)
                assert status.Status == 0x0000, (sample.label, status)
        session = create_session_from_auth(HTTPBasicAuth(*web.admin))
        yield Stored(web, DICOMwebClient(url=f"{web.url}/dicom-web", session=session), made)


def _instance_url(sample: Sample) -> str:
    return (
        f"/dicom-web/studies/{sample.study_uid}/series/{sample.series_uid}"
        f"/instances/{sample.sop_uid}"
    )


def _check_explicit_little(received: Dataset, sample: Sample) -> None:
    assert received.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian, sample.label
    assert received.SOPInstanceUID == sample.sop_uid
    expected = sample.pixels()
    pixels = received.pixel_array
    assert pixels.shape == expected.shape, sample.label
    np.testing.assert_array_equal(pixels, expected, err_msg=sample.label)


@pytest.mark.parametrize("label", SOURCES)
def test_retrieve_instance_without_syntax_is_explicit_little_endian(
    stored: Stored, label: str
) -> None:
    sample = stored.samples[label]
    received = stored.client.retrieve_instance(
        sample.study_uid, sample.series_uid, sample.sop_uid, media_types=("application/dicom",)
    )
    _check_explicit_little(received, sample)


@pytest.mark.parametrize("accept", ["*/*", None, "multipart/related"])
def test_a_client_accepting_anything_gets_explicit_little_endian(
    stored: Stored, accept: str | None
) -> None:
    sample = stored.samples["big-endian-16bit"]
    headers = {"Accept": accept} if accept else {}
    with stored.web.client() as client:
        response = client.get(_instance_url(sample), headers=headers)
    assert response.status_code == 200, response.text
    [(head, body)] = multipart_parts(response.content, response.headers["content-type"])
    assert f"transfer-syntax={ExplicitVRLittleEndian}" in head
    _check_explicit_little(dcmread(io.BytesIO(body)), sample)


@pytest.mark.parametrize("label", ["implicit-le", "big-endian-16bit", "rle", "jpeg-2000"])
def test_default_retrieve_instance_asks_for_the_stored_syntax(stored: Stored, label: str) -> None:
    sample = stored.samples[label]
    received = stored.client.retrieve_instance(sample.study_uid, sample.series_uid, sample.sop_uid)
    assert received.file_meta.TransferSyntaxUID == sample.transfer_syntax


@pytest.mark.parametrize("label", SOURCES)
def test_default_retrieve_series_is_explicit_little_endian(stored: Stored, label: str) -> None:
    sample = stored.samples[label]
    [received] = stored.client.retrieve_series(sample.study_uid, sample.series_uid)
    _check_explicit_little(received, sample)


def test_default_retrieve_study_is_explicit_little_endian(stored: Stored) -> None:
    [study] = {sample.study_uid for sample in stored.samples.values()}
    received = stored.client.retrieve_study(study)
    by_uid = {sample.sop_uid: sample for sample in stored.samples.values()}
    assert sorted(ds.SOPInstanceUID for ds in received) == sorted(by_uid)
    for ds in received:
        _check_explicit_little(ds, by_uid[ds.SOPInstanceUID])


@pytest.mark.parametrize("label", SOURCES)
def test_any_syntax_returns_the_stored_bytes(stored: Stored, label: str) -> None:
    sample = stored.samples[label]
    accept = 'multipart/related; type="application/dicom"; transfer-syntax=*'
    with stored.web.client() as client:
        response = client.get(_instance_url(sample), headers={"Accept": accept})
    assert response.status_code == 200, response.text
    [(headers, body)] = multipart_parts(response.content, response.headers["content-type"])
    assert f"transfer-syntax={sample.transfer_syntax}" in headers
    assert body.endswith(sample.data_set_bytes())
