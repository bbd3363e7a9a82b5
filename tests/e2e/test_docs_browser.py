"""/docs and /redoc in a real browser with no way out to the internet, as in most council
networks: Debian's chromium, driven by Playwright, against a real `caseclock serve` on a
temporary SQLite file. Every request to anywhere but that server is refused.

Screenshots go to test-artifacts/e2e/. Every wait is bounded.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from serving import free_port, start_serving

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True
    )

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
STEP_TIMEOUT_MS = 15_000


@dataclass
class Server:
    base: str
    key: str
    refused: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("docs")
    env = {
        **os.environ,
        "CASECLOCK_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'caseclock.db'}",
        "CASECLOCK_RUN_SCHEDULER": "false",
        "CASECLOCK_LOG_FORMAT": "json",
    }
    created = subprocess.run(
        [sys.executable, "-m", "service.cli", "org", "create", "docs"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    key = created.stdout.strip().splitlines()[-1]
    port = free_port()
    with (work / "server.log").open("w") as log:
        process = start_serving(env, ROOT, port, log)
    try:
        yield Server(f"http://127.0.0.1:{port}", key)
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def tab(server: Server) -> Iterator[Any]:
    """A browser tab whose every request to anywhere but the server is refused and noted."""

    def only_the_server(route: Any) -> None:
        url = route.request.url
        if url.startswith((f"{server.base}/", "data:", "blob:")):
            route.continue_()
        else:
            server.refused.append(url)
            route.abort("internetdisconnected")

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, timeout=30_000
        )
        context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-GB")
        context.set_default_timeout(STEP_TIMEOUT_MS)
        context.route("**/*", only_the_server)
        yield context.new_page()
        context.close()
        browser.close()


def test_swagger_ui_renders_with_an_authorize_button_and_asks_nothing_of_the_internet(
    tab: Any, server: Server
) -> None:
    tab.goto(f"{server.base}/docs")
    title = tab.locator(".swagger-ui .info h1.title")
    title.wait_for()
    assert title.inner_text().startswith("caseclock")
    assert tab.locator(".auth-wrapper button.authorize").is_visible()
    assert tab.locator(".opblock").count() >= 30
    tab.screenshot(path=str(ARTIFACTS / "docs.png"))
    assert server.refused == []


def test_a_key_given_to_authorize_is_sent_by_try_it_out(tab: Any, server: Server) -> None:
    tab.goto(f"{server.base}/docs")
    tab.click(".auth-wrapper button.authorize")
    tab.fill("#auth-bearer-value", server.key)
    tab.click(".auth-btn-wrapper button.authorize")
    tab.click(".auth-btn-wrapper button.btn-done")
    operation = tab.locator("#operations-rules-get_rulesets_v1_rulesets_get")
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()
    status = operation.locator(".live-responses-table tbody td.response-col_status").first
    assert status.inner_text().strip() == "200"
    tab.screenshot(path=str(ARTIFACTS / "docs-try-it-out.png"))
    assert server.refused == []


def test_redoc_renders_the_document_and_asks_nothing_of_the_internet(
    tab: Any, server: Server
) -> None:
    tab.goto(f"{server.base}/redoc")
    heading = tab.locator(".api-info h1").first
    heading.wait_for()
    assert heading.inner_text().startswith("caseclock")
    assert tab.get_by_role("heading", name="Post Event").is_visible()
    tab.screenshot(path=str(ARTIFACTS / "redoc.png"))
    # ReDoc's menu always asks for Redocly's logo; refused, it hides the image and no more.
    assert set(server.refused) <= {"https://cdn.redoc.ly/redoc/logo-mini.svg"}
