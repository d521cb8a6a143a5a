"""The portal end to end: log in, find a study, read it in the viewer, upload, roles, admin."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import CT_IMAGES, Loaded, log_in, new_context, screenshot
from tests.e2e.images import band_hu, linear_voi, ramp_ct_series
from tests.support.corpus import rgb_pattern, to_part10_bytes

GREY_TOLERANCE = 2


def open_viewer(page: Page, study: str, series: str) -> None:
    page.goto(page.url.split("#")[0] + f"#/viewer/{study}/{series}")
    page.wait_for_function(
        "() => window.openpacsViewer && window.openpacsViewer.state().shown !== null"
    )


def viewer_state(page: Page) -> dict:
    return page.evaluate("window.openpacsViewer.state()")


def screen_pixel(page: Page, column: int, row: int) -> list[int]:
    """The canvas colour at an image pixel, after the next frame is drawn."""
    page.evaluate("new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
    return page.evaluate(f"window.openpacsViewer.screenPixel({column}, {row})")


def drop_file(page: Page, name: str, data: bytes) -> None:
    """Drops a file on the page as a drag from the desktop would (drag enter, over, drop)."""
    page.evaluate(
        "([name, bytes]) => {"
        " const transfer = new DataTransfer();"
        " transfer.items.add(new File([new Uint8Array(bytes)], name));"
        " for (const type of ['dragenter', 'dragover', 'drop']) {"
        "   document.body.dispatchEvent(new DragEvent(type,"
        "     {dataTransfer: transfer, bubbles: true, cancelable: true})); } }",
        [name, list(data)],
    )


def expected_grey(column: int, center: float, width: float) -> float:
    return linear_voi(band_hu(column), center, width)


def test_wrong_password_shows_the_reason_and_stays_on_the_login(
    browser: Browser, loaded: Loaded
) -> None:
    context = new_context(browser)
    page = context.new_page()
    page.goto(loaded.web.url + "/")
    # by keyboard alone: the user name field has the focus, Tab reaches the password
    expect(page.locator("#username")).to_be_focused()
    page.keyboard.type(loaded.web.username)
    page.keyboard.press("Tab")
    page.keyboard.type("not the password")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.get_by_test_id("whoami")).to_have_count(0)
    context.close()


def test_find_open_and_read_a_ct(admin_page: Page, loaded: Loaded) -> None:
    page = admin_page
    expect(page.get_by_test_id("study-table")).to_be_visible()
    screenshot(page, "study-list")
    names = page.locator("[data-testid=study-table] tbody td.name")
    sort = page.get_by_test_id("sort-PatientName")
    sort.click()
    expect(sort).to_contain_text("▲")
    shown = names.all_text_contents()
    assert shown.index("Hue, Harriet") < shown.index("Ramp, Ronald")
    assert shown == sorted(shown, key=str.upper)
    sort.click()
    expect(sort).to_contain_text("▼")
    shown = names.all_text_contents()
    assert shown.index("Ramp, Ronald") < shown.index("Hue, Harriet")
    page.fill("#q-from", "2024-01-16")
    page.get_by_test_id("search").click()
    expect(names).to_have_text(["Hue, Harriet"])
    page.fill("#q-from", "")
    page.select_option("#q-modality", "CT")
    page.get_by_test_id("search").click()
    expect(names).to_have_text(["Ramp, Ronald"])
    page.get_by_role("button", name="Clear").click()

    page.fill("#q-text", "ronald")  # free text: any word of the stored headers
    page.get_by_test_id("search").click()
    expect(names).to_have_text(["Ramp, Ronald"])
    page.fill("#q-text", "harriet ronald")  # every word must be found
    page.get_by_test_id("search").click()
    expect(page.get_by_test_id("result-count")).to_contain_text("No studies match")
    page.get_by_role("button", name="Clear").click()

    page.fill("#q-name", "ramp")
    page.get_by_test_id("search").click()
    rows = page.locator("[data-testid=study-table] tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Ramp, Ronald")
    expect(rows.first).to_contain_text("E2E-CT")
    expect(rows.first).to_contain_text(str(CT_IMAGES))
    rows.first.click()

    expect(page.get_by_test_id("series-grid")).to_be_visible()
    expect(page.locator(".series-card")).to_contain_text(f"{CT_IMAGES} images")
    expect(page.locator(".series-card img.loaded")).to_have_count(1)
    screenshot(page, "study-page")

    page.get_by_test_id("open-viewer").click()
    page.wait_for_function(
        "() => window.openpacsViewer && window.openpacsViewer.state().shown === 0"
    )
    image = page.get_by_test_id("overlay-image")
    expect(image).to_have_text(f"Image 1 / {CT_IMAGES}")
    expect(page.get_by_test_id("overlay-window")).to_have_text("WC 40  WW 400")
    expect(page.get_by_test_id("overlay-zoom")).to_contain_text("%")
    # the stored window 40/400 on the original values, band by band
    for column in (4, 12, 20, 28, 36):
        grey = screen_pixel(page, column, 32)[0]
        assert abs(grey - expected_grey(column, 40, 400)) <= GREY_TOLERANCE, column

    canvas = page.get_by_test_id("viewer-canvas")
    canvas.hover()
    page.mouse.wheel(0, 100)
    expect(image).to_have_text(f"Image 2 / {CT_IMAGES}")
    page.keyboard.press("ArrowDown")
    expect(image).to_have_text(f"Image 3 / {CT_IMAGES}")
    page.keyboard.press("End")
    expect(image).to_have_text(f"Image {CT_IMAGES} / {CT_IMAGES}")
    page.get_by_test_id("slider").fill("4")
    expect(image).to_have_text(f"Image 5 / {CT_IMAGES}")
    page.keyboard.press("End")
    expect(image).to_have_text(f"Image {CT_IMAGES} / {CT_IMAGES}")

    # drag right and down: a wider window, a higher centre
    box = canvas.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 120, y + 60, steps=6)
    page.mouse.up()
    state = viewer_state(page)
    center, width = state["view"]["center"], state["view"]["width"]
    assert width > 400
    assert center > 40
    expect(page.get_by_test_id("overlay-window")).to_have_text(
        f"WC {round(center)}  WW {round(width)}"
    )
    for column in (4, 12, 20, 28, 36, 44):
        grey = screen_pixel(page, column, 32)[0]
        assert abs(grey - expected_grey(column, center, width)) <= GREY_TOLERANCE, column

    page.get_by_test_id("preset-lung").click()
    expect(page.get_by_test_id("overlay-window")).to_have_text("WC -600  WW 1500")
    for column in (4, 12, 20):
        grey = screen_pixel(page, column, 32)[0]
        assert abs(grey - expected_grey(column, -600, 1500)) <= GREY_TOLERANCE, column

    page.keyboard.press("i")
    grey = screen_pixel(page, 12, 32)[0]
    assert abs(grey - (255 - expected_grey(12, -600, 1500))) <= GREY_TOLERANCE
    page.keyboard.press("r")
    expect(page.get_by_test_id("overlay-window")).to_have_text("WC 40  WW 400")
    assert abs(screen_pixel(page, 20, 32)[0] - expected_grey(20, 40, 400)) <= GREY_TOLERANCE

    page.keyboard.press("?")
    expect(page.get_by_test_id("help")).to_be_visible()
    expect(page.get_by_test_id("help")).to_contain_text("presets")
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("help")).to_be_hidden()

    page.get_by_test_id("toggle-tags").click()
    page.get_by_test_id("tag-filter").fill("PatientID")
    expect(page.get_by_test_id("tag-table")).to_contain_text("E2E-CT")
    expect(page.get_by_test_id("tag-table")).to_contain_text("(0010,0020)")
    screenshot(page, "viewer")
    assert page.errors == []  # type: ignore[attr-defined]


def test_study_list_pages_by_cursor(admin_page: Page, loaded: Loaded) -> None:
    page = admin_page
    page.goto(page.url.split("#")[0] + "#/studies?sort=PatientName&limit=1")
    names = page.locator("[data-testid=study-table] tbody td.name")
    count = page.get_by_test_id("result-count")
    expect(count).to_contain_text("1\u20131 of")
    total = int(re.search(r"of ([\d,]+)", count.inner_text()).group(1).replace(",", ""))
    assert total >= 2
    walked = [names.inner_text()]
    for position in range(2, total + 1):
        page.get_by_test_id("next-page").click()
        expect(count).to_contain_text(f"{position}\u2013{position} of")
        assert "cursor=" in page.url
        walked.append(names.inner_text())
    expect(page.get_by_test_id("next-page")).to_be_disabled()
    assert walked == sorted(walked, key=str.upper)
    page.get_by_test_id("previous-page").click()
    expect(count).to_contain_text(f"{total - 1}\u2013{total - 1} of")
    expect(names).to_have_text([walked[-2]])
    page.get_by_role("button", name="Last page").click()
    expect(names).to_have_text([walked[-1]])
    expect(count).to_contain_text(f"{total}\u2013{total} of")
    expect(page.get_by_test_id("next-page")).to_be_disabled()
    page.get_by_role("button", name="First page").click()
    expect(names).to_have_text([walked[0]])
    expect(page.get_by_test_id("previous-page")).to_be_disabled()
    assert page.errors == []  # type: ignore[attr-defined]


def test_colour_image_and_multiframe_cine(admin_page: Page, loaded: Loaded) -> None:
    page = admin_page
    open_viewer(page, loaded.colour_study, loaded.colour_series)
    expect(page.get_by_test_id("overlay-image")).to_have_text("Image 1 / 1")
    expected = rgb_pattern(64, 64)
    for column, row in ((8, 8), (40, 20), (56, 50)):
        shown = np.array(screen_pixel(page, column, row), dtype=int)
        assert np.abs(shown - expected[row, column].astype(int)).max() <= 6, (column, row)

    # the series strip switches to the multi-frame MR of the same study
    page.locator(f".strip li[data-uid='{loaded.mr_series}'] button").click()
    image = page.get_by_test_id("overlay-image")
    expect(image).to_have_text("Image 1 / 8 · frame 1/8")
    page.get_by_test_id("play").click()
    expect(image).not_to_have_text(re.compile(r"frame 1/8$"))
    page.get_by_test_id("play").click()
    # no stored window: each frame opens at its own value range (the pattern moves 97 a frame)
    state = viewer_state(page)
    assert state["view"]["width"] == 253
    assert state["view"]["center"] == 126.5 + 97 * state["index"]
    screenshot(page, "viewer-multiframe")
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_page_overtaken_while_loading_does_not_outlive_the_next(
    admin_page: Page, loaded: Loaded
) -> None:
    """The study list still loading when the user opens Upload, then back to Studies: a file
    dropped there opens the upload page and is stored. (The overtaken list used to take the
    clean-up slot of the upload page opened after it, so the upload page's clean-up never ran
    and a later drop went to its detached results panel: nothing happened on screen.)"""
    page = admin_page
    page.evaluate(
        "() => { const original = window.fetch; window.fetch = (input, init) => {"
        " if (String(input).includes('/api/studies') && !window.heldOnce) {"
        "   window.heldOnce = true;"
        "   return new Promise((resolve) => {"
        "     window.release = () => resolve(original(input, init)); }); }"
        " return original(input, init); }; }"
    )
    page.evaluate("() => { location.hash = '#/studies?limit=25'; }")
    page.wait_for_function("() => typeof window.release === 'function'")
    page.get_by_role("link", name="Upload").click()
    expect(page.get_by_test_id("dropzone")).to_be_visible()
    page.evaluate("() => window.release()")
    page.get_by_role("link", name="Studies").first.click()
    expect(page.get_by_test_id("study-table")).to_be_visible()
    dropped = ramp_ct_series(1, patient_name="Overtaken^Olga", patient_id="E2E-OVER")[0]
    drop_file(page, "overtaken.dcm", to_part10_bytes(dropped))
    expect(page.get_by_test_id("upload-summary")).to_contain_text("1 / 1 files · 1 stored · done")
    assert page.errors == []  # type: ignore[attr-defined]


def test_upload_a_file_then_find_it(admin_page: Page, loaded: Loaded, tmp_path: Path) -> None:
    page = admin_page
    uploaded = ramp_ct_series(1, patient_name="Upload^Una", patient_id="E2E-UP")[0]
    good = tmp_path / "slice.dcm"
    good.write_bytes(to_part10_bytes(uploaded))
    bad = tmp_path / "notes.txt"
    bad.write_text("not DICOM", encoding="utf-8")

    page.get_by_role("link", name="Upload").click()
    page.get_by_test_id("upload-input").set_input_files([str(good), str(bad)])
    summary = page.get_by_test_id("upload-summary")
    expect(summary).to_contain_text("2 / 2 files · 1 stored · 1 failed · done")
    results = page.get_by_test_id("upload-list")
    expect(results.locator("li", has_text="slice.dcm")).to_contain_text("✓ stored")
    expect(results.locator("li", has_text="notes.txt")).to_contain_text("✗")
    expect(page.get_by_test_id("upload-progress")).to_have_attribute(
        "value", str(good.stat().st_size + bad.stat().st_size)
    )

    # dropped on another page: the upload page opens and takes the files
    dropped = ramp_ct_series(1, patient_name="Upload^Una", patient_id="E2E-UP")[0]
    dropped.StudyInstanceUID = uploaded.StudyInstanceUID
    page.get_by_role("link", name="Studies").first.click()
    expect(page.get_by_test_id("study-table")).to_be_visible()
    drop_file(page, "dropped.dcm", to_part10_bytes(dropped))
    expect(summary).to_contain_text("1 / 1 files · 1 stored · done")
    expect(results.locator("li", has_text="dropped.dcm")).to_contain_text("✓ stored")

    page.get_by_role("link", name="Studies").first.click()
    page.fill("#q-id", "E2E-UP")
    page.get_by_test_id("search").click()
    rows = page.locator("[data-testid=study-table] tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Upload, Una")


def test_a_user_sees_no_delete_and_no_admin_pages(browser: Browser, loaded: Loaded) -> None:
    context = new_context(browser)
    page = context.new_page()
    log_in(page, loaded.web.url, "reader", loaded.reader_password)
    expect(page.get_by_test_id("whoami")).to_have_text("reader (user)")
    expect(page.get_by_role("link", name="Users")).to_have_count(0)
    page.goto(f"{loaded.web.url}/#/studies/{loaded.ct_study}")
    expect(page.get_by_test_id("open-viewer")).to_be_visible()
    expect(page.get_by_test_id("download")).to_be_visible()
    expect(page.get_by_test_id("delete-study")).to_have_count(0)
    context.close()


def test_logout_ends_the_session(browser: Browser, loaded: Loaded) -> None:
    context = new_context(browser)
    page = context.new_page()
    log_in(page, loaded.web.url, loaded.web.username, loaded.web.password)
    page.get_by_test_id("logout").click()
    expect(page.locator("#username")).to_be_visible()
    status = page.evaluate(
        "fetch('/api/session', {headers: {'X-Requested-With': 'XMLHttpRequest'}})"
        ".then((r) => r.status)"
    )
    assert status == 401
    page.goto(f"{loaded.web.url}/#/studies")
    expect(page.locator("#username")).to_be_visible()
    context.close()


def test_an_uploader_only_uploads(browser: Browser, loaded: Loaded, tmp_path: Path) -> None:
    password = loaded.web.add_user("sender", "uploader")
    context = new_context(browser)
    page = context.new_page()
    log_in(page, loaded.web.url, "sender", password)
    expect(page.get_by_test_id("dropzone")).to_be_visible()  # home is the upload page
    expect(page.get_by_role("link", name="Studies")).to_have_count(0)
    sent = tmp_path / "sent.dcm"
    sent.write_bytes(
        to_part10_bytes(ramp_ct_series(1, patient_name="Sent^Sal", patient_id="E2E-SENT")[0])
    )
    page.get_by_test_id("upload-input").set_input_files(str(sent))
    expect(page.get_by_test_id("upload-summary")).to_contain_text("1 stored · done")
    page.goto(f"{loaded.web.url}/#/studies")
    expect(page.get_by_role("alert")).to_contain_text("does not allow")
    context.close()
