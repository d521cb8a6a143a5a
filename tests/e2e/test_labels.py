"""Study labels in the portal: an administrator adds and removes them on the study page
(the REST API sees the change); a user reads them but gets no controls."""

from __future__ import annotations

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import Loaded, log_in, new_context


def _labels(loaded: Loaded) -> list[str]:
    response = httpx.get(
        f"{loaded.web.url}/api/studies/{loaded.colour_study}/labels",
        auth=loaded.web.admin,
        timeout=30,
    )
    return list(response.json()["labels"])


def test_an_admin_labels_a_study_and_a_user_reads_the_labels(
    admin_page: Page, browser: Browser, loaded: Loaded
) -> None:
    page = admin_page
    page.goto(f"{loaded.web.url}/#/studies/{loaded.colour_study}")
    labels = page.get_by_test_id("labels")
    expect(labels).to_contain_text("\u2013")  # no label yet
    page.get_by_test_id("new-label").fill("bad/label")
    page.get_by_role("button", name="Add").click()
    expect(labels).to_contain_text("Letters, digits")
    page.get_by_test_id("new-label").fill("teaching")
    page.get_by_role("button", name="Add").click()
    expect(page.get_by_test_id("label")).to_have_text(["teaching\u00d7"])
    assert _labels(loaded) == ["teaching"]

    context = new_context(browser)
    reader = context.new_page()
    log_in(reader, loaded.web.url, "reader", loaded.reader_password)
    reader.goto(f"{loaded.web.url}/#/studies/{loaded.colour_study}")
    expect(reader.get_by_test_id("label")).to_have_text(["teaching"])
    expect(reader.get_by_test_id("new-label")).to_have_count(0)
    context.close()

    page.get_by_role("button", name="Remove label teaching").click()
    expect(page.get_by_test_id("label")).to_have_count(0)
    assert _labels(loaded) == []
