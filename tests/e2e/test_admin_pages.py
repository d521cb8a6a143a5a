"""The administrator's pages: users, remote AEs with a real C-ECHO, audit trail, statistics."""

from __future__ import annotations

import gc
import os
import time
import warnings
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.e2e.conftest import CT_IMAGES, Loaded, screenshot, store
from tests.e2e.images import ramp_ct_series
from tests.support.process import free_port
from tests.support.scu import storage_scp
from tests.support.web import running_web_node


def test_an_admin_deletes_a_study_after_confirming(admin_page: Page, loaded: Loaded) -> None:
    store(loaded.web, ramp_ct_series(2, patient_name="Gone^Gus", patient_id="E2E-DEL"))
    page = admin_page
    page.fill("#q-id", "E2E-DEL")
    page.get_by_test_id("search").click()
    rows = page.locator("[data-testid=study-table] tbody tr")
    expect(rows).to_have_count(1)
    rows.first.click()
    page.get_by_test_id("delete-study").click()
    expect(page.get_by_role("dialog")).to_contain_text("Gone, Gus")
    page.get_by_role("button", name="Cancel").click()
    expect(page.get_by_test_id("series-grid")).to_be_visible()

    page.get_by_test_id("delete-study").click()
    page.get_by_test_id("confirm").click()
    expect(page.get_by_test_id("study-table")).to_be_visible()
    page.fill("#q-id", "E2E-DEL")
    page.get_by_test_id("search").click()
    expect(page.get_by_test_id("result-count")).to_contain_text("No studies match")


def test_add_a_user_change_the_role_and_remove_it(admin_page: Page) -> None:
    page = admin_page
    page.get_by_role("link", name="Users").click()
    page.fill("#new-username", "carol")
    page.fill("#new-password", "a long enough password")
    page.select_option("#new-role", "uploader")
    page.get_by_test_id("add-user").click()
    row = page.locator("[data-testid=users-table] tr[data-user=carol]")
    expect(row.locator("select")).to_have_value("uploader")

    row.locator("select").select_option("user")
    expect(page.locator(".action-status")).to_contain_text("carol is now user")
    page.reload()
    expect(row.locator("select")).to_have_value("user")

    row.get_by_placeholder("new password").fill("another long password")
    row.get_by_role("button", name="Reset password").click()
    expect(page.locator(".action-status")).to_contain_text("Password of carol reset")

    row.get_by_role("button", name="Remove").click()
    page.get_by_test_id("confirm").click()
    expect(row).to_have_count(0)


def test_a_remote_ae_answers_the_echo_button(admin_page: Page, loaded: Loaded) -> None:
    page = admin_page
    node = loaded.web.dicom
    page.get_by_role("link", name="Remote AEs").click()
    form = page.locator("form.inline-form").first
    form.get_by_label("AE title").fill("SELF")
    form.get_by_label("Host").fill("127.0.0.1")
    form.get_by_label("Port").fill(str(node.port))
    form.get_by_role("button", name="Add remote").click()
    row = page.locator("[data-testid=remotes-table] tr[data-aet=SELF]")
    expect(row).to_contain_text(str(node.port))
    row.get_by_role("button", name="C-ECHO").click()
    expect(page.get_by_test_id("echo-SELF")).to_contain_text("✓")
    row.get_by_role("button", name="Edit").click()
    editor = page.locator("[data-testid=remotes-table] form")
    editor.get_by_label("Host").fill("localhost")
    editor.get_by_role("button", name="Save").click()
    row = page.locator("[data-testid=remotes-table] tr[data-aet=SELF]")
    expect(row.locator("td").nth(1)).to_have_text("localhost")
    page.reload()
    expect(row.locator("td").nth(1)).to_have_text("localhost")


def test_audit_trail_with_filters(admin_page: Page, loaded: Loaded) -> None:
    page = admin_page
    page.goto(f"{loaded.web.url}/#/studies/{loaded.ct_study}")  # a view to find in the trail
    expect(page.get_by_test_id("series-grid")).to_be_visible()
    page.get_by_role("link", name="Audit trail").click()
    table = page.get_by_test_id("audit-table")
    expect(table.locator("tbody tr").first).to_be_visible()
    expect(table).to_contain_text("admin")
    screenshot(page, "audit")

    page.fill("#a-study", loaded.ct_study)
    page.get_by_role("button", name="Filter").click()
    rows = table.locator("tbody tr")
    expect(rows.first).to_contain_text(loaded.ct_study)
    expect(rows.filter(has_not_text=loaded.ct_study)).to_have_count(0)

    page.select_option("#a-action", "login")
    page.fill("#a-study", "")
    page.select_option("#a-outcome", "success")
    page.get_by_role("button", name="Filter").click()
    expect(table.locator("tbody tr").first).to_contain_text("login")

    page.fill("#a-user", "nobody-at-all")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_test_id("audit-count")).to_have_text("No events match")


def test_statistics(admin_page: Page) -> None:
    page = admin_page
    page.get_by_role("link", name="Statistics").click()
    stats = page.get_by_test_id("statistics")
    expect(stats.locator(".stat").first).to_be_visible()
    expect(stats).to_contain_text("Instances")
    screenshot(page, "statistics")


def test_send_a_study_to_a_remote_ae_with_progress(admin_page: Page, loaded: Loaded) -> None:
    with storage_scp("E2ESCP") as (port, received):
        with loaded.web.client() as client:
            answer = client.post(
                "/api/remotes", json={"aet": "E2ESCP", "host": "127.0.0.1", "port": port}
            )
            assert answer.status_code == 201, answer.text
        page = admin_page
        page.goto(f"{loaded.web.url}/#/studies/{loaded.ct_study}")
        page.select_option("#send-target", "E2ESCP")
        page.get_by_test_id("send").click()
        expect(page.locator(".action-status")).to_contain_text(
            f"Sent {CT_IMAGES} image(s) to E2ESCP", timeout=60_000
        )
        expect(page.get_by_test_id("send-progress")).to_have_attribute("value", str(CT_IMAGES))
        assert len(received.datasets) == CT_IMAGES


def test_the_jobs_page_shows_each_jobs_state_server_and_reason(
    admin_page: Page, loaded: Loaded, tmp_path: Path
) -> None:
    web = loaded.web
    dead = {"aet": "E2EDEAD", "host": "127.0.0.1", "port": free_port()}
    with storage_scp("E2ESLOW", delay=0.2) as (port, received):
        slow = {"aet": "E2ESLOW", "host": "127.0.0.1", "port": port}
        study = {"level": "study", "uid": str(loaded.ct_study)}
        with web.client() as client:
            for remote in (dead, slow):
                assert client.post("/api/remotes", json=remote).status_code == 201
            with warnings.catch_warnings():
                # pynetdicom drops the socket of a refused connection without closing it.
                warnings.simplefilter("ignore", ResourceWarning)
                failing = client.post("/api/remotes/E2EDEAD/store", json=study).json()["id"]
                deadline = time.monotonic() + 30
                while client.get(f"/api/jobs/{failing}").json()["state"] != "failed":
                    assert time.monotonic() < deadline, "the send to a dead remote did not fail"
                    time.sleep(0.1)
                gc.collect()
        # A second server on the same database starts a send and stops: it hands the job
        # back, and the portal's own server resumes it on its next beat.
        shared = {
            "database": {"url": web.settings.database.url},
            "storage": {"url": web.settings.storage.url},
        }
        with (
            running_web_node(tmp_path / "other", **shared) as other,
            other.client(auth=web.admin) as client,
        ):
            handed = client.post("/api/remotes/E2ESLOW/store", json=study).json()["id"]
            deadline = time.monotonic() + 30
            while client.get(f"/api/jobs/{handed}").json()["progress"]["done"] < 1:
                assert time.monotonic() < deadline, "the send did not start"
                time.sleep(0.1)
        page = admin_page
        page.get_by_role("link", name="Jobs").click()
        table = page.get_by_test_id("jobs-table")
        failed_row = table.locator(f"tr[data-job='{failing}']")
        expect(failed_row.get_by_test_id("job-state")).to_have_text("failed", timeout=60_000)
        expect(failed_row.get_by_test_id("job-reason")).to_contain_text("no association")
        resumed_row = table.locator(f"tr[data-job='{handed}']")
        expect(resumed_row.get_by_test_id("job-state")).to_have_text("succeeded", timeout=60_000)
        expect(resumed_row.get_by_test_id("job-reason")).to_contain_text("handed back")
        expect(resumed_row.get_by_test_id("job-reason")).to_contain_text("resumed by server")
        expect(resumed_row).to_contain_text(f":{os.getpid()}")  # the portal's server ran it
        screenshot(page, "jobs")
        assert page.errors == []  # type: ignore[attr-defined]
    assert len({str(d.SOPInstanceUID) for d in received.datasets}) == CT_IMAGES
