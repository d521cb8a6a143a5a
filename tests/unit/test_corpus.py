"""Sanity checks of the test corpus the archive's round-trip tests rely on."""

from __future__ import annotations

import io
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from pydicom import config, dcmread
from pydicom.dataelem import RawDataElement
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from tests.support import corpus


def _valid_uid(value: object) -> bool:
    text = str(value or "")
    return bool(text) and UID(text, validation_mode=config.IGNORE).is_valid


def _read(data: bytes):
    return dcmread(io.BytesIO(data))


def test_synthetic_ct_series_round_trips_through_part10(tmp_path: Path) -> None:
    series = corpus.synthetic_ct_series(
        4, rows=32, columns=48, patient_name="Doe^Jane", accession="ACC42", seed=3
    )
    read = [corpus.write_part10(ds, tmp_path / f"{n}.dcm") for n, ds in enumerate(series)]
    back = [dcmread(path) for path in read]
    assert [ds.InstanceNumber for ds in back] == [1, 2, 3, 4]
    assert len({ds.SOPInstanceUID for ds in back}) == 4
    assert len({ds.StudyInstanceUID for ds in back}) == 1
    assert len({ds.SeriesInstanceUID for ds in back}) == 1
    first = back[0]
    assert first.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert first.file_meta.MediaStorageSOPClassUID == corpus.CT_IMAGE_STORAGE
    assert first.file_meta.MediaStorageSOPInstanceUID == first.SOPInstanceUID
    assert first.SOPClassUID == corpus.CT_IMAGE_STORAGE
    assert first.SpecificCharacterSet == "ISO_IR 100"
    assert (first.Rows, first.Columns) == (32, 48)
    assert (first.BitsAllocated, first.BitsStored, first.HighBit) == (16, 12, 11)
    assert first.PixelRepresentation == 0
    assert (first.RescaleIntercept, first.RescaleSlope) == (-1024, 1)
    assert (first.WindowCenter, first.WindowWidth) == (40, 400)
    assert first.AccessionNumber == "ACC42"
    for keyword in (
        "StudyTime", "SeriesTime", "ContentTime", "ReferringPhysicianName", "StudyDescription",
        "SeriesDescription", "BodyPartExamined", "InstitutionName", "StudyID",
        "FrameOfReferenceUID", "SliceThickness", "PixelSpacing",
    ):  # fmt: skip
        assert keyword in first, keyword
    z = [float(ds.ImagePositionPatient[2]) for ds in back]
    assert z == [float(ds.SliceLocation) for ds in back]
    assert len(set(np.diff(z))) == 1
    assert z[0] != z[1]
    assert len({corpus.pixel_bytes(path) for path in read}) == 4
    for ds, path in zip(series, read, strict=True):
        assert corpus.pixel_bytes(ds) == corpus.pixel_bytes(path)
        assert len(corpus.pixel_bytes(path)) == 32 * 48 * 2
    for ds in back:
        for keyword in (*corpus.IDENTIFYING_KEYWORDS, "FrameOfReferenceUID"):
            assert _valid_uid(ds[keyword].value), keyword


def test_synthetic_ct_series_is_deterministic_and_uses_given_uids() -> None:
    study, series_uid = generate_uid(), generate_uid()
    one = corpus.synthetic_ct_series(2, rows=16, columns=16, study_uid=study, series_uid=series_uid)
    two = corpus.synthetic_ct_series(2, rows=16, columns=16, seed=0)
    other = corpus.synthetic_ct_series(2, rows=16, columns=16, seed=1)
    assert {ds.StudyInstanceUID for ds in one} == {study}
    assert {ds.SeriesInstanceUID for ds in one} == {series_uid}
    assert [corpus.pixel_bytes(ds) for ds in one] == [corpus.pixel_bytes(ds) for ds in two]
    assert corpus.pixel_bytes(one[0]) != corpus.pixel_bytes(other[0])


def test_synthetic_ct_series_of_a_hundred_full_slices_is_fast() -> None:
    started = time.perf_counter()
    series = corpus.synthetic_ct_series(100)
    assert time.perf_counter() - started < 5  # about 0.3 s; generous for loaded CI machines
    assert len(series) == 100


def test_small_instances_spread_over_patients_dates_and_modalities() -> None:
    instances = list(corpus.small_instances(10, 3, 2, rows=8, columns=8))
    assert len(instances) == 60
    assert len({ds.SOPInstanceUID for ds in instances}) == 60
    assert len({ds.StudyInstanceUID for ds in instances}) == 10
    assert len({ds.SeriesInstanceUID for ds in instances}) == 30
    assert {ds.Modality for ds in instances} == {"CT", "MR", "US", "CR"}
    names = {ds.PatientID: str(ds.PatientName) for ds in instances}
    assert len(names) == 5
    assert len(set(names.values())) == 5
    assert max(Counter(name[0] for name in names.values()).values()) > 1
    years = {ds.StudyDate[:4] for ds in instances}
    assert len(years) >= 3
    for ds in instances:
        assert all(_valid_uid(ds[keyword].value) for keyword in corpus.IDENTIFYING_KEYWORDS)
    back = _read(corpus.to_part10_bytes(instances[0]))
    assert corpus.pixel_bytes(back) == corpus.pixel_bytes(instances[0])


def test_secondary_capture_rgb_holds_its_pattern() -> None:
    ds = _read(corpus.to_part10_bytes(corpus.secondary_capture_rgb(rows=6, columns=10, seed=5)))
    assert ds.SOPClassUID == corpus.SECONDARY_CAPTURE_IMAGE_STORAGE
    assert (ds.PhotometricInterpretation, ds.SamplesPerPixel) == ("RGB", 3)
    assert ds.PlanarConfiguration == 0
    assert corpus.pixel_bytes(ds) == corpus.rgb_pattern(6, 10, seed=5).tobytes()
    assert np.array_equal(ds.pixel_array, corpus.rgb_pattern(6, 10, seed=5))


def test_multiframe_mr_holds_its_frames() -> None:
    ds = _read(corpus.to_part10_bytes(corpus.multiframe_mr(5, rows=8, columns=12, seed=2)))
    assert ds.SOPClassUID == corpus.ENHANCED_MR_IMAGE_STORAGE
    assert ds.NumberOfFrames == 5
    assert len(ds.PerFrameFunctionalGroupsSequence) == 5
    expected = corpus.multiframe_pattern(5, 8, 12, seed=2)
    assert corpus.pixel_bytes(ds) == expected.astype("<u2").tobytes()
    assert np.array_equal(ds.pixel_array, expected)


def test_part10_bytes_carry_preamble_and_prefix() -> None:
    data = corpus.to_part10_bytes(corpus.secondary_capture_rgb())
    assert data[128:132] == b"DICM"


def test_encode_dataset_round_trips_without_file_meta() -> None:
    ds = corpus.secondary_capture_rgb(rows=4, columns=4)
    body = corpus.encode_dataset(ds)
    assert not body.startswith(b"\x02\x00")  # no group 0002
    back = corpus.parse_dataset_body(body)
    assert back.SOPInstanceUID == ds.SOPInstanceUID
    assert corpus.pixel_bytes(back) == corpus.pixel_bytes(ds)


def test_pixel_bytes_is_empty_without_pixel_data() -> None:
    ds = corpus.secondary_capture_rgb(rows=2, columns=2)
    del ds.PixelData
    assert corpus.pixel_bytes(ds) == b""


def test_classification_never_warns() -> None:
    corpus._classify.cache_clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert corpus.pydicom_valid_files()


def test_pydicom_files_fall_into_exactly_one_class() -> None:
    valid = corpus.pydicom_valid_files()
    duplicates = corpus.pydicom_duplicate_files()
    malformed = corpus.pydicom_malformed_files()
    assert valid == sorted(valid)
    assert all(path.is_relative_to(corpus.PYDICOM_TEST_FILES) for path in valid)
    assert len(set(valid) | set(duplicates) | set(malformed)) == (
        len(valid) + len(duplicates) + len(malformed)
    )


TRANSFER_SYNTAXES = {
    "JPEG baseline": "1.2.840.10008.1.2.4.50",
    "JPEG 2000": ("1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"),
    "RLE": "1.2.840.10008.1.2.5",
    "JPEG-LS": ("1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"),
    "deflated": "1.2.840.10008.1.2.1.99",
    "big endian": "1.2.840.10008.1.2.2",
    "implicit VR": "1.2.840.10008.1.2",
}


@pytest.mark.parametrize("name", TRANSFER_SYNTAXES)
def test_valid_files_include_transfer_syntax(name: str) -> None:
    wanted = TRANSFER_SYNTAXES[name]
    found = [
        entry.path
        for entry in corpus.pydicom_valid_entries()
        if entry.transfer_syntax_uid in ((wanted,) if isinstance(wanted, str) else wanted)
    ]
    assert found, name
    for path in found:
        assert dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID in wanted


def test_deduplication_keeps_every_transfer_syntax() -> None:
    kept = {entry.transfer_syntax_uid for entry in corpus.pydicom_valid_entries()}
    dropped = {
        str(dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)
        for path in corpus.pydicom_duplicate_files()
    }
    assert dropped <= kept


def test_valid_files_include_multiframe_and_non_latin1_character_sets() -> None:
    entries = corpus.pydicom_valid_entries()
    multiframe = [e for e in entries if (e.frames or 1) > 1]
    assert multiframe
    assert dcmread(multiframe[0].path, stop_before_pixels=True).NumberOfFrames > 1
    exotic = [e for e in entries if set(e.character_sets) - {"", "ISO_IR 6", "ISO_IR 100"}]
    assert exotic
    charset = dcmread(exotic[0].path, stop_before_pixels=True).SpecificCharacterSet
    assert charset not in ("", "ISO_IR 100")


def test_valid_files_are_storable_and_unique() -> None:
    seen: dict[str, Path] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # odd values in third-party files are tolerated
        for path in corpus.pydicom_valid_files():
            ds = dcmread(path, stop_before_pixels=True)
            assert _valid_uid(ds.file_meta.TransferSyntaxUID), path
            assert _valid_uid(ds.file_meta.MediaStorageSOPClassUID), path
            for keyword in corpus.IDENTIFYING_KEYWORDS:
                assert _valid_uid(ds.get(keyword)), (path, keyword)
            assert ds.SOPInstanceUID not in seen, (path, seen.get(ds.SOPInstanceUID))
            seen[ds.SOPInstanceUID] = path


def test_duplicates_share_an_instance_uid_with_a_valid_file() -> None:
    def uid(path: Path) -> str:
        return str(dcmread(path, stop_before_pixels=True).SOPInstanceUID)

    kept = {uid(path) for path in corpus.pydicom_valid_files()}
    duplicates = corpus.pydicom_duplicate_files()
    assert duplicates
    assert all(uid(path) in kept for path in duplicates)


def _strict_failure(path: Path) -> bool:
    """Independent of the corpus policy: unreadable, warns, truncated, or unidentified."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            ds = dcmread(path)
        except (InvalidDicomError, UserWarning):
            return True
    for tag in list(ds.keys()):
        raw = ds.get_item(tag)
        if isinstance(raw, RawDataElement) and raw.value is not None:
            truncated = raw.length != 0xFFFFFFFF and len(raw.value) < raw.length
            if truncated:
                return True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        meta = [ds.file_meta.get(k) for k in ("TransferSyntaxUID", "MediaStorageSOPClassUID")]
        identifiers = [ds.get(keyword) for keyword in corpus.IDENTIFYING_KEYWORDS]
    return not all(_valid_uid(value) for value in meta + identifiers)


def test_malformed_files_fail_strict_reading() -> None:
    reasons = corpus.pydicom_malformed_reasons()
    assert reasons
    assert list(reasons) == corpus.pydicom_malformed_files()
    for path in reasons:
        assert _strict_failure(path), (path, reasons[path])
    names = {path.name for path in reasons}
    assert {"no_meta.dcm", "MR_truncated.dcm", "rtplan_truncated.dcm"} <= names


def test_bad_datasets_fail_to_parse_or_lack_identifiers() -> None:
    cases = corpus.bad_datasets()
    names = [name for name, _ in cases]
    assert len(set(names)) == len(names)
    assert {
        "missing_SOPInstanceUID", "missing_StudyInstanceUID", "missing_SeriesInstanceUID",
        "missing_SOPClassUID", "uid_with_letters", "uid_leading_dot", "uid_too_long",
        "truncated_in_value", "length_past_end", "garbage",
    } <= set(names)  # fmt: skip
    for name, data in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = corpus.parse_dataset_body(data)
            assert corpus.dataset_problem(ds), name
            sop_instance_uid = ds.get("SOPInstanceUID")
        if name.startswith("missing_"):
            assert name.removeprefix("missing_") not in ds
            assert "SOPClassUID" in ds or name == "missing_SOPClassUID"
        if name.startswith("uid_"):
            assert not _valid_uid(sop_instance_uid), name


def test_good_dataset_body_has_no_problem() -> None:
    (ds,) = corpus.synthetic_ct_series(1, rows=8, columns=8)
    assert corpus.dataset_problem(corpus.parse_dataset_body(corpus.encode_dataset(ds))) is None
