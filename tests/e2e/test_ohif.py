"""The OHIF viewer (v2, `@ohif/viewer` from npm) on its own origin, using openpacs' DICOMweb
cross-origin (CORS from `[http] cors_origins`) with HTTP Basic and with a bearer API token: the
study list lists openpacs' studies, its patient search finds one, and opening it draws its
image. Also on one origin behind nginx, and the 401s a page can meet (no login dialog).

The viewer is installed by scripts/install-ohif (scripts/test runs it); nothing is fetched at
test time, and any request to another host is refused and fails the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Request, Response, Route

from openpacs.archive.records import AuditFilter
from tests.e2e.conftest import TIMEOUT_MS, new_context, screenshot, store
from tests.e2e.images import ramp_ct_series
from tests.e2e.nginx_proxy import nginx_in_front
from tests.e2e.ohif_site import OhifSite, ohif_dist, serving_ohif
from tests.support.corpus import secondary_capture_rgb
from tests.support.web import WebNode, running_web_node

CT_PATIENT = "Ramp^Ronald"
COLOUR_PATIENT = "Hue^Harriet"
# The ramp (tests/e2e/images.py) through its stored window 40/400: bands of black (-1024 and
# -524 HU), one of mid grey (-24 HU: 87 of 255) and white (476 HU and above).
CANVAS_SHOWS_THE_RAMP = """() => {
  const canvases = [...document.querySelectorAll("canvas")];
  const canvas = canvases.sort((a, b) => b.width * b.height - a.width * a.height)[0];
  if (!canvas || canvas.width < 200) return false;
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let dark = 0, mid = 0, bright = 0;
  for (let i = 0; i < data.length; i += 4) {
    const grey = data[i];
    if (grey < 16) dark++; else if (grey > 60 && grey < 115) mid++; else if (grey > 240) bright++;
  }
  const total = data.length / 4;
  return dark > total * 0.05 && mid > total * 0.03 && bright > total * 0.2;
}"""


@dataclass
class Pacs:
    web: WebNode
    reader: tuple[str, str]
    token: str


@dataclass
class Traffic:
    """What a page asked of openpacs and of anyone else."""

    dicomweb: list[tuple[int, str]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[tuple[int, str]]:
        return [(status, url) for status, url in self.dicomweb if status >= 400]


@pytest.fixture(scope="module")
def site() -> Iterator[OhifSite]:
    dist = ohif_dist()
    if not (dist / "index.umd.js").is_file():
        pytest.fail(
            f"OHIF is not installed at {dist}: run scripts/install-ohif (scripts/test does)"
        )
    with serving_ohif(dist) as served:
        yield served


@pytest.fixture(scope="module")
def pacs(tmp_path_factory: pytest.TempPathFactory, site: OhifSite) -> Iterator[Pacs]:
    folder = tmp_path_factory.mktemp("ohif-node")
    with running_web_node(folder, http={"cors_origins": [site.url]}) as web:
        ct = ramp_ct_series(4, patient_name=CT_PATIENT, patient_id="OHIF-CT")
        colour = secondary_capture_rgb(rows=32, columns=32, patient_name=COLOUR_PATIENT)
        store(web, [*ct, colour])
        password = web.add_user("reader", "user")
        with web.client(auth=("reader", password)) as http:
            created = http.post("/api/tokens", json={"name": "ohif"})
            created.raise_for_status()
        yield Pacs(web, ("reader", password), created.json()["token"])


def _watch(page: Page, dicomweb: str) -> Traffic:
    traffic = Traffic()
    loopback = ("http://127.0.0.1:", "data:", "blob:")

    def refuse(route: Route, request: Request) -> None:
        traffic.refused.append(request.url)
        route.abort()

    def answered(response: Response) -> None:
        if response.url.startswith(dicomweb):
            traffic.dicomweb.append((response.status, response.url))

    page.route(lambda url: not url.startswith(loopback), refuse)
    page.on("response", answered)
    page.on("pageerror", lambda error: traffic.errors.append(str(error)))
    return traffic


def _list_and_open(page: Page, url: str, traffic: Traffic, *, search: bool = False) -> None:
    page.goto(url + "/")
    page.get_by_text(COLOUR_PATIENT).wait_for()  # both studies are listed
    if search:  # OHIF asks PatientName=ramp with fuzzymatching=true (and PatientID=ramp)
        page.locator("#filter-patientNameOrId").fill("ramp")
        page.get_by_text(COLOUR_PATIENT).wait_for(state="detached")
    page.get_by_text(CT_PATIENT).click()
    page.wait_for_function(CANVAS_SHOWS_THE_RAMP, timeout=TIMEOUT_MS * 2, polling=250)
    assert traffic.failures == [], traffic.failures
    assert traffic.refused == [], traffic.refused
    assert traffic.errors == [], traffic.errors


def test_ohif_lists_and_draws_with_basic(browser: Browser, site: OhifSite, pacs: Pacs) -> None:
    site.configure(f"{pacs.web.url}/dicom-web", basic=pacs.reader)
    context = new_context(browser)
    page = context.new_page()
    traffic = _watch(page, f"{pacs.web.url}/dicom-web")
    try:
        _list_and_open(page, site.url, traffic, search=True)
        assert any("/frames/" in url for _, url in traffic.dicomweb)
        screenshot(page, "ohif-v2-study")
    finally:
        context.close()


def test_ohif_lists_and_draws_with_a_bearer_token(
    browser: Browser, site: OhifSite, pacs: Pacs
) -> None:
    site.configure(f"{pacs.web.url}/dicom-web", bearer=pacs.token)
    context = new_context(browser)
    page = context.new_page()
    traffic = _watch(page, f"{pacs.web.url}/dicom-web")
    try:
        _list_and_open(page, site.url, traffic)
    finally:
        context.close()


def test_ohif_on_the_same_origin_behind_nginx(
    browser: Browser, site: OhifSite, pacs: Pacs, tmp_path: Path
) -> None:
    """One origin for both, no CORS: nginx adds the token, the viewer holds no credential."""
    with nginx_in_front(
        tmp_path / "nginx",
        openpacs_url=pacs.web.url,
        site_url=site.url,
        authorization=f"Bearer {pacs.token}",
    ) as origin:
        site.configure(f"{origin}/dicom-web")
        context = new_context(browser)
        page = context.new_page()
        traffic = _watch(page, f"{origin}/dicom-web")
        try:
            _list_and_open(page, origin, traffic)
            assert any("/frames/" in url for _, url in traffic.dicomweb)
        finally:
            context.close()


def test_a_refused_request_is_readable_by_the_viewer(
    browser: Browser, site: OhifSite, pacs: Pacs
) -> None:
    """A wrong token gets a 401 the page can read (CORS headers on errors too, the challenge
    exposed), so a viewer can tell the user; no browser login dialog comes up."""
    site.configure(f"{pacs.web.url}/dicom-web", bearer="opt_not-a-token")
    context = new_context(browser)
    page = context.new_page()
    try:
        page.goto(site.url + "/app-config.js")
        answer = page.evaluate(
            """async (url) => {
                const response = await fetch(url, {headers: {Authorization: "Bearer opt_wrong"}});
                return [response.status, response.headers.get("WWW-Authenticate")];
            }""",
            f"{pacs.web.url}/dicom-web/studies",
        )
        assert answer[0] == 401
        assert "Bearer" in answer[1]
    finally:
        context.close()
    other = httpx.options(
        f"{pacs.web.url}/dicom-web/studies",
        headers={"Origin": "http://127.0.0.1:1", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in other.headers  # only the configured origin


def test_same_origin_scripts_get_no_login_dialog(browser: Browser, pacs: Pacs) -> None:
    """OHIF behind a proxy on openpacs' origin, its token expired: the 401s of its requests
    (fetch, XMLHttpRequest, an image) must not open the browser's Basic dialog. The context has
    credentials for any dialog, so a dialog shows as a login attempt of that user."""
    context = new_context(browser, http_credentials={"username": "dialog", "password": "shown"})
    page = context.new_page()
    study = pacs.web.url + "/dicom-web/studies"
    try:
        page.goto(pacs.web.url + "/health")
        statuses = page.evaluate(
            """async (url) => {
                const fetched = (await fetch(url)).status;
                const requested = await new Promise((done) => {
                    const xhr = new XMLHttpRequest();
                    xhr.open("GET", url);
                    xhr.onloadend = () => done(xhr.status);
                    xhr.send();
                });
                const image = await new Promise((done) => {
                    const img = new Image();
                    img.onload = () => done("loaded");
                    img.onerror = () => done("refused");
                    img.src = url + "?image";
                });
                return [fetched, requested, image];
            }""",
            study,
        )
    finally:
        context.close()
    assert statuses == [401, 401, "refused"]
    pacs.web.archive.audit.flush()
    total, _ = pacs.web.archive.audit.search(AuditFilter(actor="dialog", action="login"))
    assert total == 0
