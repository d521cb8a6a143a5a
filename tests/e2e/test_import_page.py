"""Imports from the portal's Jobs page (admin): a server folder below the import folders, a
path outside them (refused, the reason shown), and a ZIP archive uploaded from the browser;
each job's progress shows in the jobs table until it succeeds."""

from __future__ import annotations

import zipfile
from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.e2e.conftest import log_in, new_context, screenshot
from tests.support import corpus
from tests.support.web import running_web_node


def test_an_admin_imports_a_folder_and_uploads_a_zip(browser: Browser, tmp_path: Path) -> None:
    intake = tmp_path / "intake"
    intake.mkdir()
    for number, dataset in enumerate(corpus.synthetic_ct_series(3, rows=16, columns=16)):
        corpus.write_part10(dataset, intake / f"IM{number}")
    bundle = tmp_path / "cd.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        for number, dataset in enumerate(corpus.synthetic_ct_series(2, rows=16, columns=16)):
            archive.writestr(f"DICOM/{number}", corpus.to_part10_bytes(dataset))
    archive_settings = {"import_folders": [str(intake)]}
    with running_web_node(tmp_path / "node", archive=archive_settings) as web:
        context = new_context(browser)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        log_in(page, web.url, web.username, web.password)
        page.get_by_role("link", name="Jobs").click()

        page.get_by_test_id("import-source").fill(str(tmp_path))
        page.get_by_test_id("import-start").click()
        expect(page.get_by_test_id("import-status")).to_contain_text(
            "not below a folder of [archive] import_folders"
        )

        page.get_by_test_id("import-source").fill(str(intake))
        page.get_by_test_id("import-start").click()
        expect(page.get_by_test_id("import-status")).to_contain_text("Import started")
        table = page.get_by_test_id("jobs-table")
        folder_row = table.locator("tr", has_text=str(intake))
        expect(folder_row.get_by_test_id("job-state")).to_have_text("succeeded", timeout=60_000)
        expect(folder_row).to_contain_text("3/3")

        page.get_by_test_id("import-zip").set_input_files(str(bundle))
        zip_row = table.locator("tr", has_text="cd.zip")
        expect(zip_row.get_by_test_id("job-state")).to_have_text("succeeded", timeout=60_000)
        expect(zip_row).to_contain_text("2/2")
        screenshot(page, "import")
        assert web.dicom.instance_count() == 5
        assert errors == []
        context.close()
