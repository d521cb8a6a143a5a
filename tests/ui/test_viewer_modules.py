"""The viewer's pure modules (state, keyboard, overlay geometry, cine rates, stack order,
multipart framing), run in Chromium as the portal runs them."""

from __future__ import annotations

import pytest

from tests.ui.conftest import Modules

CT_META = {
    "00280010": {"vr": "US", "Value": [4]},  # Rows
    "00280011": {"vr": "US", "Value": [6]},  # Columns
    "00280100": {"vr": "US", "Value": [16]},  # BitsAllocated
}
STORED_WINDOW = {"00281050": {"vr": "DS", "Value": [40]}, "00281051": {"vr": "DS", "Value": [400]}}


def instance(number: int, uid: str, **extra: dict) -> dict:
    return {
        **CT_META,
        "00080018": {"vr": "UI", "Value": [uid]},
        "00200013": {"vr": "IS", "Value": [number]},
        **extra,
    }


# --- shortcuts.js ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "command"),
    [
        ("ArrowDown", {"name": "step", "by": 1}),
        ("ArrowLeft", {"name": "step", "by": -1}),
        ("PageUp", {"name": "step", "by": -10}),
        ("End", {"name": "last"}),
        ("]", {"name": "series", "by": 1}),
        ("0", {"name": "defaultWindow"}),
        ("i", {"name": "invert"}),
        ("I", {"name": "invert"}),
        ("F", {"name": "fit"}),
        (" ", {"name": "cine"}),
        ("?", {"name": "help"}),
        ("Escape", {"name": "back"}),
    ],
)
def test_each_key_has_its_command(modules: Modules, key: str, command: dict) -> None:
    assert modules.call("viewer/shortcuts.js", "keyCommand", {"key": key}) == command


def test_digits_one_to_four_are_the_presets(modules: Modules) -> None:
    presets = [
        modules.call("viewer/shortcuts.js", "keyCommand", {"key": key})["preset"] for key in "1234"
    ]
    assert [(p["id"], p["center"], p["width"]) for p in presets] == [
        ("soft", 40, 400),
        ("lung", -600, 1500),
        ("bone", 300, 1500),
        ("brain", 40, 80),
    ]


@pytest.mark.parametrize(
    "event",
    [
        {"key": "r", "ctrlKey": True},  # reload stays the browser's
        {"key": "ArrowDown", "altKey": True},
        {"key": "f", "metaKey": True},
        {"key": "5"},
        {"key": "x"},
        {"key": "Tab"},
        {"key": "Enter"},
    ],
)
def test_modified_and_unknown_keys_have_no_command(modules: Modules, event: dict) -> None:
    assert modules.call("viewer/shortcuts.js", "keyCommand", event) is None


def test_a_returned_command_is_a_copy(modules: Modules) -> None:
    changed = modules.run(
        "const { keyCommand } = await load('viewer/shortcuts.js');"
        " keyCommand({ key: 'ArrowDown' }).by = 99;"
        " return keyCommand({ key: 'ArrowDown' }).by;"
    )
    assert changed == 1


# --- state.js -------------------------------------------------------------------------------


def state_script(body: str) -> str:
    return (
        "const { ViewerState } = await load('viewer/state.js');"
        " const { stackItems } = await load('viewer/stack.js');"
        f" const state = new ViewerState('1.2.3'); {body}"
    )


def test_moving_clamps_to_the_stack_and_an_empty_stack_does_not_move(modules: Modules) -> None:
    result = modules.run(
        state_script(
            "const empty = state.moveTo(3);"
            " state.setItems(stackItems(arg));"
            " return [empty, state.moveTo(-5), state.moveTo(99), state.moveTo(1.7), state.index];"
        ),
        [instance(n, f"1.2.3.{n}") for n in (1, 2, 3)],
    )
    assert result == [None, 0, 2, 1, 1]


def test_cine_loops_from_the_last_image_to_the_first(modules: Modules) -> None:
    result = modules.run(
        state_script(
            "const before = state.nextInLoop(); state.setItems(stackItems(arg));"
            " const from0 = state.nextInLoop(); state.moveTo(2);"
            " return [before, from0, state.nextInLoop()];"
        ),
        [instance(n, f"1.2.3.{n}") for n in (1, 2, 3)],
    )
    assert result == [0, 1, 0]


def test_a_frame_of_an_older_series_or_another_image_is_not_wanted(modules: Modules) -> None:
    result = modules.run(
        state_script(
            "const first = state.beginSeries('1.2.3'); state.setItems(stackItems(arg));"
            " const wanted = state.stillWanted(first, 0);"
            " const otherImage = (state.moveTo(1), state.stillWanted(first, 0));"
            " const second = state.beginSeries('1.2.4');"
            " return [wanted, otherImage, state.stillWanted(first, 0), second - first,"
            "  state.items.length, state.index, state.seriesUid];"
        ),
        [instance(n, f"1.2.3.{n}") for n in (1, 2)],
    )
    assert result == [True, False, False, 1, 0, 0, "1.2.4"]


def test_images_without_a_stored_window_each_open_at_their_own_range(modules: Modules) -> None:
    result = modules.run(
        state_script(
            "state.setItems(stackItems(arg));"
            " const auto = state.autoWindow;"
            " const first = state.windowOnShow({ min: 0, max: 99 });"
            " state.moveTo(1);"
            " const second = state.windowOnShow({ min: 100, max: 199 });"
            " state.userWindowed();"
            " const afterUser = state.windowOnShow({ min: 0, max: 9 });"
            " return [auto, first, second, afterUser];"
        ),
        [instance(n, f"1.2.3.{n}") for n in (1, 2)],
    )
    assert result == [
        True,
        {"center": 50, "width": 100, "first": True},
        {"center": 150, "width": 100, "first": False},
        None,
    ]


def test_a_stored_window_is_kept_from_image_to_image(modules: Modules) -> None:
    result = modules.run(
        state_script(
            "state.setItems(stackItems(arg));"
            " return [state.autoWindow, state.windowOnShow({ min: 0, max: 99 }),"
            "  (state.moveTo(1), state.windowOnShow({ min: 0, max: 9 }))];"
        ),
        [instance(n, f"1.2.3.{n}", **STORED_WINDOW) for n in (1, 2)],
    )
    assert result == [False, {"center": 40, "width": 400, "first": True}, None]


def test_the_default_window_is_the_frame_s_else_the_series_base_else_none(
    modules: Modules,
) -> None:
    result = modules.run(
        state_script(
            "const none = state.defaultWindowNow(undefined);"
            " state.setItems(stackItems(arg));"
            " state.windowOnShow({ min: 0, max: 99 }); state.userWindowed();"
            " const withFrame = state.defaultWindowNow({ min: 10, max: 19 });"
            " const auto = state.autoWindow;"
            " const withoutFrame = state.defaultWindowNow(undefined);"
            " return [none, withFrame, auto, withoutFrame];"
        ),
        [instance(n, f"1.2.3.{n}") for n in (1, 2)],
    )
    assert result == [None, {"center": 15, "width": 10}, True, {"center": 50, "width": 100}]


@pytest.mark.parametrize(
    ("current", "step", "expected"),
    [("b", 1, "c"), ("b", -1, "a"), ("a", -1, None), ("c", 1, None), ("z", 1, None)],
)
def test_the_neighbour_series_stops_at_the_ends(
    modules: Modules, current: str, step: int, expected: str | None
) -> None:
    found = modules.call("viewer/state.js", "neighbourSeries", ["a", "b", "c"], current, step)
    assert found == expected


# --- overlay.js -----------------------------------------------------------------------------

INFO = {"columns": 200, "rows": 100, "colour": False}


def test_overlay_texts(modules: Modules) -> None:
    result = modules.run(
        "const o = await load('viewer/overlay.js');"
        " return [o.imageLabel(0, 24, { frames: 1 }), o.imageLabel(3, 8, { frames: 8, frame: 4 }),"
        "  o.windowLabel({ colour: false }, { center: 39.6, width: 400.4, invert: false }),"
        "  o.windowLabel({ colour: true }, { center: 128, width: 256, invert: false }),"
        "  o.windowLabel({ colour: true }, { center: 128, width: 256, invert: true }),"
        "  o.zoomLabel(1.504, { columns: 512, rows: 256 }),"
        "  o.probeLabel(3, 4, null), o.probeLabel(3, 4, -1000.456)];"
    )
    assert result == [
        "Image 1 / 24",
        "Image 4 / 8 · frame 4/8",
        "WC 40  WW 400",
        "RGB",
        "WC 128  WW 256",
        "Zoom 150%  ·  512×256",  # noqa: RUF001 (the overlay's sign)
        "(3, 4)",
        "(3, 4) = -1000.46",
    ]


@pytest.mark.parametrize(
    ("point", "view", "expected"),
    [
        ({"x": 400, "y": 300}, {"zoom": 1, "panX": 0, "panY": 0}, {"column": 100, "row": 50}),
        ({"x": 300, "y": 250}, {"zoom": 1, "panX": 0, "panY": 0}, {"column": 0, "row": 0}),
        ({"x": 299, "y": 250}, {"zoom": 1, "panX": 0, "panY": 0}, None),
        ({"x": 500, "y": 349}, {"zoom": 1, "panX": 0, "panY": 0}, None),
        ({"x": 499, "y": 349}, {"zoom": 1, "panX": 0, "panY": 0}, {"column": 199, "row": 99}),
        ({"x": 400, "y": 300}, {"zoom": 2, "panX": 0, "panY": 0}, {"column": 100, "row": 50}),
        ({"x": 211, "y": 221}, {"zoom": 2, "panX": 10, "panY": 10}, {"column": 0, "row": 5}),
    ],
)
def test_the_image_pixel_under_a_canvas_point(
    modules: Modules, point: dict, view: dict, expected: dict | None
) -> None:
    size = {"width": 800, "height": 600}
    found = modules.call("viewer/overlay.js", "imagePixelAt", point, size, INFO, view)
    assert found == expected


def test_the_canvas_point_of_a_pixel_is_under_that_pixel(modules: Modules) -> None:
    mismatches = modules.run(
        "const o = await load('viewer/overlay.js'); const size = { width: 640, height: 480 };"
        " const info = { columns: 37, rows: 23 }; const bad = [];"
        " for (const view of [{ zoom: 1, panX: 0, panY: 0 }, { zoom: 3.3, panX: -17, panY: 41 },"
        "   { zoom: 0.4, panX: 5, panY: -9 }]) {"
        "  for (const [column, row] of [[0, 0], [36, 22], [18, 11], [5, 20]]) {"
        "   const point = o.canvasPointOf(column, row, size, info, view);"
        "   const back = o.imagePixelAt(point, size, info, view);"
        "   if (!back || back.column !== column || back.row !== row)"
        "    bad.push([view, column, row, back]);"
        "  } }"
        " return bad;"
    )
    assert mismatches == []


# --- cine.js --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("meta", "rate"),
    [
        ({"00181063": {"vr": "DS", "Value": [40]}}, 25),  # Frame Time 40 ms
        ({"00082144": {"vr": "IS", "Value": [12]}}, 12),
        ({"00180040": {"vr": "IS", "Value": [30]}}, 30),
        ({"00181063": {"vr": "DS", "Value": [50]}, "00180040": {"vr": "IS", "Value": [30]}}, 20),
        ({}, None),
    ],
)
def test_the_recommended_cine_rate(modules: Modules, meta: dict, rate: float | None) -> None:
    assert modules.call("viewer/cine.js", "recommendedRate", meta) == rate


@pytest.mark.parametrize(("rate", "offered"), [(24, 25), (1, 5), (7.5, 5), (120, 50), (33, 30)])
def test_the_closest_offered_cine_rate(modules: Modules, rate: float, offered: int) -> None:
    assert modules.call("viewer/cine.js", "closestRate", rate) == offered


# --- stack.js, multipart.js -----------------------------------------------------------------


def test_a_stack_is_in_instance_number_order_with_each_frame_and_no_non_images(
    modules: Modules,
) -> None:
    metadata = [
        instance(3, "1.3"),
        instance(1, "1.1", **{"00280008": {"vr": "IS", "Value": [2]}}),
        {"00080018": {"vr": "UI", "Value": ["1.9"]}},  # a presentation state: no pixels
        instance(2, "1.2"),
    ]
    items = modules.run(
        "const { stackItems } = await load('viewer/stack.js');"
        " return stackItems(arg).map((item) => [item.sopUid, item.frame, item.frames]);",
        metadata,
    )
    assert items == [["1.1", 1, 2], ["1.1", 2, 2], ["1.2", 1, 1], ["1.3", 1, 1]]


def test_multipart_parts_keep_a_boundary_lookalike_inside_a_body(modules: Modules) -> None:
    parts = modules.run(
        "const { boundaryOf, parseMultipart } = await load('viewer/multipart.js');"
        ' const boundary = boundaryOf(\'multipart/related; type="application/octet-stream";'
        ' boundary="b1"\');'
        " const body = '--b1\\r\\nContent-Type: application/octet-stream\\r\\n\\r\\nab--b1cd'"
        "  + '\\r\\n--b1\\r\\nContent-Type: text/plain\\r\\n\\r\\nxyz\\r\\n--b1--\\r\\n';"
        " const parts = parseMultipart(new TextEncoder().encode(body), boundary);"
        " return [boundary, parts.map((part) => [part.headers['content-type'],"
        "  new TextDecoder().decode(part.body)])];"
    )
    assert parts == ["b1", [["application/octet-stream", "ab--b1cd"], ["text/plain", "xyz"]]]


def test_a_multipart_body_without_its_boundary_is_refused(modules: Modules) -> None:
    message = modules.run(
        "const { parseMultipart } = await load('viewer/multipart.js');"
        " try { parseMultipart(new TextEncoder().encode('no parts here'), 'b1'); return null; }"
        " catch (error) { return error.message; }"
    )
    assert message == "multipart body without its boundary"
