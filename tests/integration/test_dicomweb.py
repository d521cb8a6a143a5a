"""DICOMweb against a real server on a loopback port, driven by dicomweb-client and httpx.

The same data is read back over DIMSE (C-FIND, C-GET with pynetdicom) and compared.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
from dicomweb_client.api import DICOMwebClient
from dicomweb_client.session_utils import create_session_from_auth
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
    generate_uid,
)
from requests.auth import HTTPBasicAuth

from tests.support import scu
from tests.support.corpus import synthetic_ct_series
from tests.support.images import compressed, image_dataset, jpeg_baseline, ramp
from tests.support.web import WebNode, running_web_node

CT = str(CTImageStorage)


@dataclass
class Loaded:
    web: WebNode
    client: DICOMwebClient
    datasets: list[Dataset]
    stow: Dataset
    ct_study: str
    ct_series: str
    other_study: str
    rle: Dataset
    j2k: Dataset
    j2k_frames: np.ndarray


def _client(web: WebNode, auth: tuple[str, str] | None = None) -> DICOMwebClient:
    session = create_session_from_auth(HTTPBasicAuth(*(auth or web.admin)))
    return DICOMwebClient(url=f"{web.url}/dicom-web", session=session)


def _corpus() -> tuple[list[Dataset], dict[str, object]]:
    ct = synthetic_ct_series(3, rows=64, columns=64, patient_name="Doe^Jane")
    study = generate_uid()
    series = generate_uid()
    common = {"study_uid": study, "series_uid": series}
    rle = compressed(
        image_dataset(ramp(rows=16, columns=64), bits_stored=12, **common), RLELossless
    )
    frames = np.stack([ramp(rows=32, columns=32, high=500 * (k + 1)) for k in range(3)])
    j2k = compressed(image_dataset(frames, **common), JPEG2000Lossless)
    rgb = np.zeros((16, 16, 3), dtype=np.uint8)
    rgb[..., 1] = 180
    jpeg = jpeg_baseline(rgb)
    jpeg.StudyInstanceUID = study
    jpeg.SeriesInstanceUID = generate_uid()
    for ds in (rle, j2k, jpeg):
        ds.PatientName = "Smith^John"
        ds.PatientID = "PID-SMITH"
        ds.Modality = "OT"
        ds.StudyDate = "20230301"
        ds.InstanceNumber = 1
    rle.InstanceNumber, j2k.InstanceNumber = 1, 2
    return [*ct, rle, j2k, jpeg], {"rle": rle, "j2k": j2k, "frames": frames}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    with running_web_node(tmp_path_factory.mktemp("dicomweb")) as web:
        datasets, named = _corpus()
        client = _client(web)
        stow = client.store_instances(datasets=datasets)
        yield Loaded(
            web,
            client,
            datasets,
            stow,
            ct_study=str(datasets[0].StudyInstanceUID),
            ct_series=str(datasets[0].SeriesInstanceUID),
            other_study=str(named["rle"].StudyInstanceUID),  # type: ignore[attr-defined]
            rle=named["rle"],  # type: ignore[arg-type]
            j2k=named["j2k"],  # type: ignore[arg-type]
            j2k_frames=named["frames"],  # type: ignore[arg-type]
        )


def _value(result: dict[str, object], tag: str) -> object:
    element = result.get(tag) or {}
    values = element.get("Value") if isinstance(element, dict) else None
    return values[0] if values else None


def test_stow_lists_every_stored_instance(loaded: Loaded) -> None:
    referenced = loaded.stow.ReferencedSOPSequence
    assert sorted(item.ReferencedSOPInstanceUID for item in referenced) == sorted(
        str(ds.SOPInstanceUID) for ds in loaded.datasets
    )
    assert "FailedSOPSequence" not in loaded.stow
    # dicomweb-client sends its Host header without the port, so only the path is certain.
    by_uid = {str(ds.SOPInstanceUID): ds for ds in loaded.datasets}
    for item in referenced:
        ds = by_uid[item.ReferencedSOPInstanceUID]
        assert item.RetrieveURL.endswith(
            f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
            f"/instances/{ds.SOPInstanceUID}"
        )
    with loaded.web.client() as http:  # a Host header with the port: absolute URLs to us
        [study] = http.get("/dicom-web/studies", params={"PatientID": "PID-SMITH"}).json()
    assert study["00081190"]["Value"] == [
        f"{loaded.web.url}/dicom-web/studies/{loaded.other_study}"
    ]
    assert loaded.web.archive.totals().instances == len(loaded.datasets)


def test_qido_filters_limit_and_offset(loaded: Loaded) -> None:
    found = loaded.client.search_for_studies(search_filters={"PatientName": "doe*"})
    assert [_value(r, "0020000D") for r in found] == [loaded.ct_study]
    assert _value(found[0], "00201208") == 3  # NumberOfStudyRelatedInstances
    assert _value(found[0], "00080061") == "CT"  # ModalitiesInStudy
    fuzzy = loaded.client.search_for_studies(
        fuzzymatching=True, search_filters={"PatientName": "jan"}
    )
    assert [_value(r, "0020000D") for r in fuzzy] == [loaded.ct_study]
    every = [_value(r, "0020000D") for r in loaded.client.search_for_studies()]
    assert sorted(every) == sorted([loaded.ct_study, loaded.other_study])
    pages = [
        _value(r, "0020000D")
        for offset in (0, 1)
        for r in loaded.client.search_for_studies(limit=1, offset=offset)
    ]
    assert pages == every
    by_modality = loaded.client.search_for_studies(search_filters={"ModalitiesInStudy": "OT"})
    assert [_value(r, "0020000D") for r in by_modality] == [loaded.other_study]
    by_tag = loaded.client.search_for_studies(search_filters={"00100020": "PID-SMITH"})
    assert [_value(r, "0020000D") for r in by_tag] == [loaded.other_study]
    dated = loaded.client.search_for_studies(search_filters={"StudyDate": "20230101-20231231"})
    assert [_value(r, "0020000D") for r in dated] == [loaded.other_study]


def test_qido_six_resources(loaded: Loaded) -> None:
    client = loaded.client
    assert len(client.search_for_series()) == 3
    assert len(client.search_for_series(loaded.other_study)) == 2
    assert len(client.search_for_instances()) == len(loaded.datasets)
    assert len(client.search_for_instances(loaded.other_study)) == 3
    in_series = client.search_for_instances(loaded.ct_study, loaded.ct_series)
    assert len(in_series) == 3
    assert _value(in_series[0], "00280010") == 64  # Rows, from the stored header
    modality = client.search_for_series(search_filters={"Modality": "OT"})
    assert {_value(r, "0020000D") for r in modality} == {loaded.other_study}
    with_field = client.search_for_studies(fields=["InstitutionName"])
    assert any(_value(r, "00080080") == "OpenPACS Test Hospital" for r in with_field)


def _cfind(web: WebNode, level: str, **keys: object) -> list[Dataset]:
    matches, final = scu.find(web.dicom.port, scu.identifier(level, **keys))
    assert final.Status == 0
    return matches


def test_qido_answers_what_cfind_answers(loaded: Loaded) -> None:
    web = loaded.web
    dimse = _cfind(
        web,
        "STUDY",
        PatientName="",
        StudyDate="",
        NumberOfStudyRelatedInstances="",
        StudyInstanceUID="",
    )
    qido = loaded.client.search_for_studies()
    from_dimse = sorted(
        (
            str(m.StudyInstanceUID),
            str(m.PatientName),
            str(m.StudyDate),
            int(m.NumberOfStudyRelatedInstances),
        )
        for m in dimse
    )
    from_qido = sorted(
        (
            str(_value(r, "0020000D")),
            str((_value(r, "00100010") or {}).get("Alphabetic")),  # type: ignore[union-attr]
            str(_value(r, "00080020")),
            int(_value(r, "00201208")),  # type: ignore[arg-type]
        )
        for r in qido
    )
    assert from_qido == from_dimse
    series = _cfind(
        web,
        "SERIES",
        StudyInstanceUID=loaded.other_study,
        SeriesInstanceUID="",
        Modality="",
        NumberOfSeriesRelatedInstances="",
    )
    qido_series = loaded.client.search_for_series(loaded.other_study)
    assert sorted(
        (str(m.SeriesInstanceUID), int(m.NumberOfSeriesRelatedInstances)) for m in series
    ) == sorted(
        (str(_value(r, "0020000E")), int(_value(r, "00201209")))  # type: ignore[arg-type]
        for r in qido_series
    )
    images = _cfind(
        web,
        "IMAGE",
        StudyInstanceUID=loaded.ct_study,
        SeriesInstanceUID=loaded.ct_series,
        SOPInstanceUID="",
        InstanceNumber="",
    )
    qido_images = loaded.client.search_for_instances(loaded.ct_study, loaded.ct_series)
    assert sorted((str(m.SOPInstanceUID), int(m.InstanceNumber)) for m in images) == sorted(
        (str(_value(r, "00080018")), int(_value(r, "00200013")))  # type: ignore[arg-type]
        for r in qido_images
    )


def test_wado_study_series_instance_as_stored(loaded: Loaded) -> None:
    stored = (("application/dicom", "*"),)
    client = loaded.client
    study = client.retrieve_study(loaded.other_study, media_types=stored)
    by_uid = {str(ds.SOPInstanceUID): ds for ds in loaded.datasets}
    assert sorted(str(ds.SOPInstanceUID) for ds in study) == sorted(
        uid for uid, ds in by_uid.items() if ds.StudyInstanceUID == loaded.other_study
    )
    for ds in study:
        original = by_uid[str(ds.SOPInstanceUID)]
        assert ds.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
        assert ds.PixelData == original.PixelData
    series = client.retrieve_series(loaded.ct_study, loaded.ct_series, media_types=stored)
    assert len(series) == 3
    rle = loaded.rle
    [instance] = [
        client.retrieve_instance(
            loaded.other_study,
            str(rle.SeriesInstanceUID),
            str(rle.SOPInstanceUID),
            media_types=stored,
        )
    ]
    assert instance.file_meta.TransferSyntaxUID == RLELossless


def test_wado_transcodes_to_the_requested_syntax(loaded: Loaded) -> None:
    rle = loaded.rle
    instance = loaded.client.retrieve_instance(
        loaded.other_study,
        str(rle.SeriesInstanceUID),
        str(rle.SOPInstanceUID),
        media_types=(("application/dicom", ExplicitVRLittleEndian),),
    )
    assert instance.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    np.testing.assert_array_equal(instance.pixel_array, ramp(rows=16, columns=64))
    with loaded.web.client() as http:
        response = http.get(
            f"/dicom-web/studies/{loaded.other_study}/series/{rle.SeriesInstanceUID}"
            f"/instances/{rle.SOPInstanceUID}",
            headers={
                "Accept": 'multipart/related; type="application/dicom"; '
                "transfer-syntax=1.2.840.10008.1.2.4.80"
            },
        )
    assert response.status_code == 406
    assert "cannot be converted" in response.json()["detail"]


def test_wado_equals_cget(loaded: Loaded) -> None:
    web = loaded.web
    # One context per (SOP class, stored syntax), so C-GET too sends what is stored.
    unique = sorted(
        {(str(ds.SOPClassUID), (str(ds.file_meta.TransferSyntaxUID),)) for ds in loaded.datasets}
    )
    responses, received = scu.get(
        web.dicom.port, scu.identifier("STUDY", StudyInstanceUID=loaded.other_study), unique
    )
    assert responses[-1].Status == 0
    wado = loaded.client.retrieve_study(
        loaded.other_study, media_types=(("application/dicom", "*"),)
    )
    from_dimse = {str(ds.SOPInstanceUID): ds.PixelData for ds in received.datasets}
    from_wado = {str(ds.SOPInstanceUID): ds.PixelData for ds in wado}
    assert from_dimse == from_wado


def test_metadata_and_bulk_data_uris(loaded: Loaded) -> None:
    client = loaded.client
    study = client.retrieve_study_metadata(loaded.other_study)
    assert len(study) == 3
    j2k = loaded.j2k
    instance = client.retrieve_instance_metadata(
        loaded.other_study, str(j2k.SeriesInstanceUID), str(j2k.SOPInstanceUID)
    )
    uri = instance["7FE00010"]["BulkDataURI"]
    assert uri.endswith(f"/instances/{j2k.SOPInstanceUID}/frames/1,2,3")
    assert instance["00100010"]["Value"] == [{"Alphabetic": "Smith^John"}]
    series = client.retrieve_series_metadata(loaded.ct_study, loaded.ct_series)
    assert sorted(m["00080018"]["Value"][0] for m in series) == sorted(
        str(ds.SOPInstanceUID) for ds in loaded.datasets[:3]
    )
    # dicomweb-client's Host header has no port, so ask for the metadata with httpx, whose
    # URIs are then absolute URLs of this server.
    with loaded.web.client() as http:
        path = uri.split("/dicom-web/", 1)[1].rsplit("/frames/", 1)[0]
        [metadata] = http.get(f"/dicom-web/{path}/metadata").json()
    uri = metadata["7FE00010"]["BulkDataURI"]
    assert uri.startswith(loaded.web.url)
    frames = client.retrieve_bulkdata(
        uri, media_types=(("application/octet-stream", "1.2.840.10008.1.2.1"),)
    )
    assert frames == [loaded.j2k_frames[k].astype("<u2").tobytes() for k in range(3)]


def test_frames_native_and_as_stored(loaded: Loaded) -> None:
    j2k = loaded.j2k
    uids = (loaded.other_study, str(j2k.SeriesInstanceUID), str(j2k.SOPInstanceUID))
    native = loaded.client.retrieve_instance_frames(
        *uids,
        frame_numbers=[3, 1],
        media_types=(("application/octet-stream", "1.2.840.10008.1.2.1"),),
    )
    assert native == [
        loaded.j2k_frames[2].astype("<u2").tobytes(),
        loaded.j2k_frames[0].astype("<u2").tobytes(),
    ]
    as_stored = loaded.client.retrieve_instance_frames(
        *uids, frame_numbers=[2], media_types=(("image/jp2", JPEG2000Lossless),)
    )
    assert as_stored == [list(generate_frames(j2k.PixelData, number_of_frames=3))[1]]
    ct = loaded.datasets[0]
    [first] = loaded.client.retrieve_instance_frames(
        loaded.ct_study,
        loaded.ct_series,
        str(ct.SOPInstanceUID),
        frame_numbers=[1],
        media_types=(("application/octet-stream", "1.2.840.10008.1.2.1"),),
    )
    assert first == ct.PixelData
    with loaded.web.client() as http:
        missing = http.get(
            f"/dicom-web/studies/{uids[0]}/series/{uids[1]}/instances/{uids[2]}/frames/4"
        )
    assert missing.status_code == 404


def test_rendered_ramp_through_a_window(loaded: Loaded) -> None:
    rle = loaded.rle  # a 0..4095 ramp over 64 columns, no rescale
    data = loaded.client.retrieve_instance_rendered(
        loaded.other_study,
        str(rle.SeriesInstanceUID),
        str(rle.SOPInstanceUID),
        media_types=("image/png",),
        params={"window": "2048,4096"},
    )
    got = np.asarray(Image.open(io.BytesIO(data)))
    x = ramp(rows=16, columns=64).astype(np.float64)
    expected = np.clip(np.rint(((x - 2047.5) / 4095 + 0.5) * 255), 0, 255)
    np.testing.assert_array_equal(got, expected.astype(np.uint8))
    frame = loaded.client.retrieve_instance_frames_rendered(
        loaded.other_study,
        str(loaded.j2k.SeriesInstanceUID),
        str(loaded.j2k.SOPInstanceUID),
        frame_numbers=[2],
        media_types=("image/jpeg",),
        params={"viewport": "16,16"},
    )
    assert Image.open(io.BytesIO(frame)).size == (16, 16)
    with loaded.web.client() as http:
        thumb = http.get(
            f"/dicom-web/studies/{loaded.ct_study}/series/{loaded.ct_series}/thumbnail",
            headers={"Accept": "image/jpeg"},
        )
        assert thumb.status_code == 200
        assert thumb.headers["content-type"] == "image/jpeg"
        assert max(Image.open(io.BytesIO(thumb.content)).size) == 128
        study = http.get(
            f"/dicom-web/studies/{loaded.ct_study}/rendered", params={"accept": "image/png"}
        )
        assert study.status_code == 200
        assert study.headers["content-type"].startswith('multipart/related; type="image/png"')
        assert study.content.count(b"\x89PNG") == 3
