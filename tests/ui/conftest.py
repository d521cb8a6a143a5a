"""Unit tests of the UI's pure JavaScript modules, run in Debian's Chromium (Playwright, as in
tests/e2e). The UI folder is served as it ships, by a plain static server on a loopback port,
so each module is imported by the browser exactly as the portal imports it."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS

UI_ROOT = Path(__file__).resolve().parents[2] / "src" / "openpacs" / "web" / "ui"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
    }

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def ui_url() -> Iterator[str]:
    handler = functools.partial(QuietHandler, directory=str(UI_ROOT))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/test does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


class Modules:
    """Calls into the UI's modules in the page: `call("viewer/state.js", "neighbourSeries",
    ...)` with JSON arguments and result, or `run(script, arg)` for an async function body that
    receives `arg` and `load(path)` (the module at js/<path>)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def run(self, script: str, arg: Any = None) -> Any:
        return self.page.evaluate(
            "async ([script, arg]) => {"
            " const load = (path) => import(`/js/${path}`);"
            " return await new Function('load', 'arg', `return (async () => { ${script} })();`)"
            "(load, arg); }",
            [script, arg],
        )

    def call(self, path: str, name: str, *args: Any) -> Any:
        return self.run(
            "const module = await load(arg.path); return module[arg.name](...arg.args);",
            {"path": path, "name": name, "args": list(args)},
        )


@pytest.fixture(scope="module")
def modules(browser: Browser, ui_url: str) -> Iterator[Modules]:
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    # A page of the UI's origin without the portal's script: modules load on demand.
    page.goto(ui_url + "/data/dictionary.json")
    instance = Modules(page)
    yield instance
    context.close()
    assert not instance.errors, instance.errors
