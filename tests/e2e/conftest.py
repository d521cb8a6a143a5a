"""Browser tests: Debian's Chromium driven by Playwright against a real openpacs node (DIMSE
and HTTP on loopback ports, SQLite and a blob folder), with synthetic images stored through
the archive. Chromium is a test dependency (scripts/test installs it): a missing browser is
a failure, not a skip."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
from pydicom.dataset import Dataset

from tests.e2e.images import ramp_ct_series
from tests.support.corpus import multiframe_mr, secondary_capture_rgb, store_bytes, to_part10_bytes

if TYPE_CHECKING:
    from tests.support.web import WebNode

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TIMEOUT_MS = 15_000
CT_IMAGES = 24


@dataclass
class Loaded:
    web: WebNode
    ct_study: str
    ct_series: str
    colour_study: str
    colour_series: str
    mr_series: str
    reader_password: str


# Module scope: while Playwright's sync API is open, the main thread has a running asyncio
# loop, which would break every later test that calls asyncio.run().
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/test does)")
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


def store(web: WebNode, datasets: list[Dataset]) -> None:
    """Stores through the archive, a few at a time as concurrent associations would."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        for outcome in pool.map(lambda ds: store_bytes(web.archive, to_part10_bytes(ds)), datasets):
            assert outcome.stored, outcome.sop_uid


@pytest.fixture(scope="session")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    """A node holding a ramp CT series, an RGB capture and an enhanced multi-frame MR."""
    from tests.support.web import running_web_node

    with running_web_node(tmp_path_factory.mktemp("e2e-node")) as web:
        ct = ramp_ct_series(CT_IMAGES, patient_name="Ramp^Ronald", patient_id="E2E-CT")
        colour = secondary_capture_rgb(rows=64, columns=64, patient_name="Hue^Harriet")
        mr = multiframe_mr(
            8,
            patient_name="Hue^Harriet",
            patient_id=colour.PatientID,
            study_uid=colour.StudyInstanceUID,
        )
        store(web, [*ct, colour, mr])
        reader_password = web.add_user("reader", "user")
        yield Loaded(
            web,
            ct[0].StudyInstanceUID,
            ct[0].SeriesInstanceUID,
            colour.StudyInstanceUID,
            colour.SeriesInstanceUID,
            mr.SeriesInstanceUID,
            reader_password,
        )


def new_context(browser: Browser, **options: Any) -> BrowserContext:
    context = browser.new_context(
        viewport={"width": 1280, "height": 720}, device_scale_factor=1, **options
    )
    context.set_default_timeout(TIMEOUT_MS)
    return context


def log_in(page: Page, url: str, username: str, password: str) -> None:
    page.goto(url + "/")
    page.fill("#username", username)
    page.fill("#password", password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_test_id("whoami").wait_for()


@pytest.fixture(scope="module")
def admin_session(browser: Browser, loaded: Loaded) -> dict[str, Any]:
    """The cookies of one admin login, shared by the tests (a login costs an argon2
    verification, on purpose slow)."""
    context = new_context(browser)
    page = context.new_page()
    log_in(page, loaded.web.url, loaded.web.username, loaded.web.password)
    state = context.storage_state()
    context.close()
    return cast(dict[str, Any], state)


@pytest.fixture
def admin_page(browser: Browser, loaded: Loaded, admin_session: dict[str, Any]) -> Iterator[Page]:
    """A page logged in as the administrator, on the study list; page.errors collects
    uncaught script errors."""
    context = new_context(browser, storage_state=admin_session)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(loaded.web.url + "/")
    page.get_by_test_id("whoami").wait_for()
    page.errors = errors  # type: ignore[attr-defined]
    yield page
    context.close()


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
