"""The portal's pure helpers (DICOM JSON values for display, series order, frame decoding and
the opening window), run in Chromium as the portal runs them."""

from __future__ import annotations

import pytest

from tests.ui.conftest import Modules


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("DOE^JANE", "DOE, JANE"),
        ("DOE^JANE^M^DR^JR", "DOE, DR JANE M JR"),
        ({"Alphabetic": "Hue^Harriet"}, "Hue, Harriet"),
        ({"Ideographic": "山田^太郎"}, "山田, 太郎"),
        ("DOE^JOHN=ドウ^ジョン", "DOE, JOHN"),
        ("", ""),
        (None, ""),
    ],
)
def test_person_names_for_display(modules: Modules, raw: object, shown: str) -> None:
    assert modules.call("dicom.js", "personName", raw) == shown


@pytest.mark.parametrize(
    ("name", "raw", "shown"),
    [
        ("formatDate", "20200131", "2020-01-31"),
        ("formatDate", "2020", "2020"),
        ("formatDate", None, ""),
        ("formatTime", "235959.123", "23:59:59"),
        ("formatTime", "0930", "09:30"),
        ("formatTime", "x", "x"),
    ],
)
def test_dates_and_times_for_display(modules: Modules, name: str, raw: str, shown: str) -> None:
    assert modules.call("dicom.js", name, raw) == shown


def test_values_from_dicom_json_or_flat_objects(modules: Modules) -> None:
    result = modules.run(
        "const d = await load('dicom.js');"
        " const json = { '00200011': { vr: 'IS', Value: ['7'] }, '00080060': { vr: 'CS' } };"
        " const flat = { SeriesNumber: 3, Modality: '' };"
        " return [d.number(json, 'SeriesNumber'), d.value(json, 'Modality', '-'),"
        "  d.number(flat, 'SeriesNumber'), d.value(flat, 'Modality', '-'),"
        "  d.number({ '00200011': { vr: 'IS', Value: ['x'] } }, 'SeriesNumber', 0),"
        "  d.joined({ '00080061': { vr: 'CS', Value: ['CT', 'PT'] } }, 'ModalitiesInStudy')];"
    )
    assert result == [7, "-", 3, "-", 0, "CT, PT"]


def test_tag_panel_texts(modules: Modules) -> None:
    result = modules.run(
        "const { elementText } = await load('dicom.js');"
        " return [elementText({ vr: 'DA', Value: ['20200131'] }),"
        "  elementText({ vr: 'DS', Value: ['1.5', null, '2'] }),"
        "  elementText({ vr: 'PN', Value: [{ Alphabetic: 'DOE^JANE' }] }),"
        "  elementText({ vr: 'SQ', Value: [{}, {}] }), elementText({ vr: 'SQ', Value: [{}] }),"
        "  elementText({ vr: 'OB', InlineBinary: 'AAAA' }),"
        "  elementText({ vr: 'OW', BulkDataURI: 'http://x' }), elementText({ vr: 'LO' })];"
    )
    assert result == [
        "2020-01-31",
        "1.5\\\\2",
        "DOE^JANE",
        "2 items",
        "1 item",
        "(binary, 3 bytes)",
        "(bulk data)",
        "",
    ]


def test_series_in_series_number_order_then_by_uid(modules: Modules) -> None:
    series = [
        {"SeriesNumber": 2, "SeriesInstanceUID": "1.2"},
        {"SeriesInstanceUID": "1.0"},  # no number: last
        {"SeriesNumber": 1, "SeriesInstanceUID": "1.9"},
        {"SeriesNumber": 1, "SeriesInstanceUID": "1.3"},
    ]
    ordered = modules.call("catalog.js", "sortSeries", series)
    assert [s["SeriesInstanceUID"] for s in ordered] == ["1.3", "1.9", "1.2", "1.0"]


def _decode(modules: Modules, info: dict, words: list[int], bits: int) -> dict:
    return modules.run(
        "const { decodeFrame } = await load('viewer/pixels.js');"
        " const Typed = { 8: Uint8Array, 16: Uint16Array }[arg.bits];"
        " const bytes = new Uint8Array(new Typed(arg.words).buffer);"
        " const frame = decodeFrame(arg.info, bytes);"
        " return { data: Array.from(frame.data), min: frame.min, max: frame.max };",
        {"info": info, "words": words, "bits": bits},
    )


def test_signed_12_bit_values_are_sign_extended(modules: Modules) -> None:
    info = {"rows": 1, "columns": 3, "samples": 1, "bitsAllocated": 16, "bitsStored": 12}
    frame = _decode(modules, {**info, "signed": True}, [0x0FFF, 0xF800, 0x07FF], 16)
    assert frame == {"data": [-1, -2048, 2047], "min": -2048, "max": 2047}
    # unsigned: the bits above BitsStored are masked off
    frame = _decode(modules, {**info, "signed": False}, [0xFFFF, 0x1001, 5], 16)
    assert frame == {"data": [4095, 1, 5], "min": 1, "max": 4095}


def test_a_short_frame_is_refused(modules: Modules) -> None:
    message = modules.run(
        "const { decodeFrame } = await load('viewer/pixels.js');"
        " const info = { rows: 2, columns: 2, samples: 1, bitsAllocated: 8, bitsStored: 8 };"
        " try { decodeFrame(info, new Uint8Array(3)); return null; }"
        " catch (error) { return error.message; }"
    )
    assert message == "frame is shorter than Rows × Columns × Samples"  # noqa: RUF001


@pytest.mark.parametrize(
    ("info", "frame", "window"),
    [
        ({"window": {"center": 40, "width": 400}}, {"min": 0, "max": 4095}, [40, 400]),
        ({"colour": True, "window": None}, {"min": 0, "max": 255}, [128, 256]),
        # CT: stored 0..4095 with intercept -1024 opens on -1024..3071
        ({"slope": 1, "intercept": -1024, "window": None}, {"min": 0, "max": 4095}, [1024, 4096]),
        # a negative slope still gives a positive width
        ({"slope": -2, "intercept": 0, "window": None}, {"min": 0, "max": 10}, [-9.5, 21]),
        ({"slope": 1, "intercept": 0, "window": None}, {"min": 7, "max": 7}, [7.5, 1]),
    ],
)
def test_the_window_a_frame_opens_with(
    modules: Modules, info: dict, frame: dict, window: list[float]
) -> None:
    opened = modules.call("viewer/pixels.js", "defaultWindow", info, frame)
    assert [opened["center"], opened["width"]] == window
