"""The viewer's pixel code run in Chromium on crafted input: multipart parsing, decoding of
8/16-bit signed and unsigned frames with BitsStored < BitsAllocated, rescale, windowing,
MONOCHROME1, invert and RGB (planar and interleaved). Only the UI's static files are served."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Browser, Page

from openpacs.web.ui import mount


@pytest.fixture(scope="module")
def ui_url() -> Iterator[str]:
    app = FastAPI()
    mount(app)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the UI server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def page(browser: Browser, ui_url: str) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.goto(ui_url + "/data/dictionary.json")  # same origin, without starting the portal
    yield page
    context.close()


def run(page: Page, body: str) -> object:
    """Evaluates `body` (an async function body) with the viewer modules imported."""
    return page.evaluate(
        "async () => {"
        " const multipart = await import('/js/viewer/multipart.js');"
        " const pixels = await import('/js/viewer/pixels.js');"
        " const meta = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) =>"
        "   [k, {vr: 'US', Value: Array.isArray(v) ? v : [v]}]));"
        " const render = (info, frame, view) => {"
        "   const data = new ImageData(info.columns, info.rows);"
        "   pixels.renderInto(data, info, frame, view);"
        "   return Array.from(data.data); };"
        f" {body} }}"
    )


def test_multipart_parts_with_preamble_headers_and_binary_bodies(page: Page) -> None:
    parts = run(
        page,
        "const text = 'preamble\\r\\n--b1\\r\\nContent-Type: application/octet-stream\\r\\n\\r\\n'"
        " + 'AB\\r\\n--b1\\r\\n\\r\\nsecond--b1-not\\r\\n--b1--\\r\\nepilogue';"
        " const bytes = new TextEncoder().encode(text);"
        " const parsed = multipart.parseMultipart(bytes.buffer, 'b1');"
        ' const type = \'multipart/related; type="x"; boundary="b1"\';'
        " return { boundary: multipart.boundaryOf(type),"
        "   parts: parsed.map((p) => [p.headers['content-type'] || null,"
        "   new TextDecoder().decode(p.body)]) };",
    )
    assert parts == {
        "boundary": "b1",
        "parts": [["application/octet-stream", "AB"], [None, "second--b1-not"]],
    }


def test_multipart_without_its_closing_boundary_is_an_error(page: Page) -> None:
    message = run(
        page,
        "try { multipart.parseMultipart(new TextEncoder().encode('--b\\r\\n\\r\\nAB').buffer, 'b');"
        " return 'parsed'; } catch (error) { return error.message; }",
    )
    assert message == "multipart body ends inside a part"


def test_signed_12_bit_values_are_sign_extended_and_rescaled(page: Page) -> None:
    # 16-bit words whose top 4 bits are garbage: stored values -2048, -1, 0, 2047
    result = run(
        page,
        "const info = pixels.imageInfo(meta({'00280010': 1, '00280011': 4, '00280100': 16,"
        " '00280101': 12, '00280103': 1, '00281053': 2, '00281052': 10}));"
        " const words = new Uint16Array([0xf800, 0xafff, 0x5000, 0x07ff]);"
        " const frame = pixels.decodeFrame(info, new Uint8Array(words.buffer));"
        " return { values: Array.from(frame.data), min: frame.min, max: frame.max,"
        "   window: pixels.defaultWindow(info, frame) };",
    )
    assert result["values"] == [-2048, -1, 0, 2047]
    assert (result["min"], result["max"]) == (-2048, 2047)
    # modality values -4086 .. 4104: the whole range
    assert result["window"] == {"center": 9.5, "width": 8191}


def test_window_monochrome1_and_invert(page: Page) -> None:
    result = run(
        page,
        "const m = {'00280010': 1, '00280011': 3, '00280100': 8, '00280101': 8};"
        " const bytes = new Uint8Array([0, 100, 200]);"
        " const greys = (photometric, invert) => {"
        "   const pi = {vr: 'CS', Value: [photometric]};"
        "   const info = pixels.imageInfo({...meta(m), '00280004': pi});"
        "   const frame = pixels.decodeFrame(info, bytes);"
        "   const out = render(info, frame, {center: 100.5, width: 101, invert});"
        "   return out.filter((_, i) => i % 4 === 0);"
        " };"
        " return [greys('MONOCHROME2', false), greys('MONOCHROME1', false),"
        "   greys('MONOCHROME2', true)];",
    )
    assert result == [[0, 128, 255], [255, 127, 0], [255, 127, 0]]


def test_rgb_interleaved_and_planar(page: Page) -> None:
    result = run(
        page,
        "const base = {'00280010': 1, '00280011': 2, '00280100': 8, '00280101': 8, '00280002': 3};"
        " const rgb = (planar, bytes) => {"
        "   const info = pixels.imageInfo({...meta({...base, '00280006': planar}),"
        "     '00280004': {vr: 'CS', Value: ['RGB']}});"
        "   const frame = pixels.decodeFrame(info, new Uint8Array(bytes));"
        "   return render(info, frame, pixels.defaultWindow(info, frame)); };"
        " return [rgb(0, [10, 20, 30, 40, 50, 60]), rgb(1, [10, 40, 20, 50, 30, 60])];",
    )
    assert result == [[10, 20, 30, 255, 40, 50, 60, 255]] * 2
