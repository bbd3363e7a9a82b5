"""The upload page in a real browser (Debian's chromium, driven by Playwright): an admin uploads
a workbook, watches the progress bar move while it imports, then reads the report.

Screenshots go to test-artifacts/e2e/. Every wait is bounded.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from imports.workbooks import annex_a_sheet, build_workbook
from serving import free_port, start_serving
from test_cli import caseclock, environment, key_in

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True
    )

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run"]
STEP_TIMEOUT_MS = 15_000
CHILDREN = 12_000  # a dozen steps: long enough to watch


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """`caseclock serve`, scheduler on, with an organisation; its URL, admin key and workbook."""
    work = tmp_path_factory.mktemp("imports-e2e")
    database = work / "caseclock.db"
    created = caseclock(database, "org", "create", "kent")
    assert created.code == 0, created.err
    rows = [
        {"Child Unique ID": f"C{n:05d}", "Date of referral": date(2026, 8, 14)}
        for n in range(CHILDREN)
    ]
    workbook = work / "annex-a.xlsx"
    workbook.write_bytes(build_workbook(annex_a_sheet(3, rows)))
    port = free_port()
    env = environment(database) | {"CASECLOCK_RUN_SCHEDULER": "true"}
    server = start_serving(env, work, port)
    try:
        yield f"http://127.0.0.1:{port}", key_in(created.out), workbook
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def tab(served: tuple[str, str, Path]) -> Iterator[Any]:
    base, key, _ = served
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, timeout=30_000
        )
        context = chromium.new_context(viewport={"width": 1366, "height": 900}, locale="en-GB")
        context.set_default_timeout(STEP_TIMEOUT_MS)
        page = context.new_page()
        page.goto(f"{base}/dashboard")
        page.fill("#credential", key)
        page.click("form.sign-in button[type=submit]")
        page.wait_for_selector("[data-tile=overdue]")
        yield page
        context.close()
        chromium.close()


def test_an_upload_shows_a_moving_progress_bar_then_the_report(
    tab: Any, served: tuple[str, str, Path]
) -> None:
    base, _, workbook = served
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.goto(f"{base}/dashboard/imports")
    tab.set_input_files("#file", str(workbook))
    tab.fill("#extracted_on", "20/11/2026")
    tab.click("form.filters button[type=submit]")
    tab.wait_for_selector("#import-progress")
    tab.screenshot(path=str(ARTIFACTS / "import-progress.png"))

    seen: list[float] = []
    deadline = time.monotonic() + 120
    while tab.locator("#lists").count() == 0:
        assert time.monotonic() < deadline, "the import did not finish in time"
        if tab.locator("#import-progress").count():
            seen.append(tab.evaluate("document.getElementById('import-progress').value"))
        time.sleep(0.1)
    tab.screenshot(path=str(ARTIFACTS / "import-report.png"), full_page=True)

    assert len({value for value in seen if 0 < value < CHILDREN}) >= 1, seen
    assert tab.locator("h1").inner_text() == "Annex A import report"
    created = tab.locator("#lists tbody tr td.num").nth(1).inner_text()
    assert created == str(CHILDREN)
