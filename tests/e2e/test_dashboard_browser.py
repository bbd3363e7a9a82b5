"""The dashboard in a real browser: Debian's chromium, driven by Playwright, against a real
`caseclock serve` holding the demo caseload in a temporary SQLite file.

Screenshots go to test-artifacts/e2e/. Every wait is bounded, so a hang fails the test
instead of stalling the run.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

sync_api = pytest.importorskip("playwright.sync_api")
axe_playwright = pytest.importorskip("axe_playwright_python.sync_playwright")
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
SEED = """
import asyncio, json, sys
from datetime import UTC, datetime
from service.demo import seed_demo
from service.store.db import make_engine, make_session_factory, transaction
from service.store.migrations import upgrade_to_head
from service.store.orgs import create_api_key, create_org

async def main(url):
    engine = make_engine(url)
    await upgrade_to_head(engine)
    factory = make_session_factory(engine)
    now = datetime.now(UTC)
    async with transaction(factory) as session:
        org = await create_org(session, name="demo", ruleset_id="england-children", now=now)
        keys = {}
        for scope in ("read", "admin"):
            _, keys[scope] = await create_api_key(
                session, org_id=org.id, scopes=frozenset({scope}), name=scope, now=now
            )
    await seed_demo(factory, org_id=org.id, now=now)
    await engine.dispose()
    print(json.dumps(keys))

asyncio.run(main(sys.argv[1]))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Deployment:
    base: str
    keys: dict[str, str]
    log: Path
    host_origin: str
    host_dir: Path
    seen_urls: list[str] = field(default_factory=list)

    def api(self, path: str, **params: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.keys['read']}"}
        response = httpx.get(f"{self.base}{path}", params=params, headers=headers, timeout=10)
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """caseclock serve on a free port with the demo caseload, and a site that embeds it."""
    work = tmp_path_factory.mktemp("e2e")
    url = f"sqlite+aiosqlite:///{work / 'caseclock.db'}"
    seeded = subprocess.run(  # noqa: S603 - this interpreter, with a fixed script
        [sys.executable, "-c", SEED, url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    keys = json.loads(seeded.stdout.strip().splitlines()[-1])
    host_dir = work / "host"
    host_dir.mkdir()
    host = ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(host_dir))
    )
    threading.Thread(target=host.serve_forever, daemon=True).start()
    host_origin = f"http://127.0.0.1:{host.server_address[1]}"
    port = free_port()
    log = work / "server.log"
    env = {
        **os.environ,
        "CASECLOCK_DATABASE_URL": url,
        "CASECLOCK_RUN_SCHEDULER": "false",
        "CASECLOCK_LOG_FORMAT": "json",
        "CASECLOCK_EMBED_SECRET": "e2e-" + "s" * 40,
        "CASECLOCK_EMBED_ALLOWED_ORIGINS": host_origin,
    }
    with log.open("w") as sink:
        server = subprocess.Popen(  # noqa: S603 - our own command, with fixed arguments
            [str(Path(sys.executable).parent / "caseclock"), "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"caseclock serve did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield Deployment(base, keys, log, host_origin, host_dir)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        host.shutdown()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, timeout=30_000
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def page(browser: Any, deployment: Deployment) -> Iterator[Any]:
    """One signed-in tab for the whole scenario, recording every URL it requests."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-GB")
    context.set_default_timeout(STEP_TIMEOUT_MS)
    tab = context.new_page()
    tab.on("request", lambda request: deployment.seen_urls.append(request.url))
    tab.goto(f"{deployment.base}/dashboard")
    tab.screenshot(path=str(ARTIFACTS / "sign-in.png"))
    tab.fill("#credential", deployment.keys["read"])
    tab.click("form.sign-in button[type=submit]")
    tab.wait_for_selector("[data-tile=overdue]")
    yield tab
    context.close()


def tiles(tab: Any) -> dict[str, int]:
    values = {}
    for tile in tab.locator("[data-tile]").all():
        values[tile.get_attribute("data-tile")] = int(tile.locator(".tile__value").inner_text())
    return values


def test_signing_in_with_a_read_key_opens_the_dashboard(page: Any, deployment: Deployment) -> None:
    assert page.url == f"{deployment.base}/dashboard"
    assert page.locator("h1").inner_text() == "Deadlines dashboard"
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)


def test_the_tiles_match_the_summary_api_at_the_same_instant(
    page: Any, deployment: Deployment
) -> None:
    as_of = page.locator("#as-of").get_attribute("datetime")
    summary = deployment.api("/v1/dashboard/summary", as_of=as_of)
    assert tiles(page) == {
        "open_cases": summary["open_cases"],
        "due_soon": summary["obligations"]["due_soon"],
        "overdue": summary["obligations"]["overdue"],
        "escalated": summary["obligations"]["escalated"],
        "at_risk": summary["obligations"]["at_risk"],
    }
    assert summary["open_cases"] > 0
    assert summary["obligations"]["overdue"] > 0


def test_filtering_by_team_shows_only_that_teams_overdue_work(
    page: Any, deployment: Deployment
) -> None:
    page.goto(f"{deployment.base}/dashboard")
    page.select_option("#team_id", "T-NORTH")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**team_id=T-NORTH**")
    teams = page.locator("table.overdue-table tbody tr td:nth-of-type(3)").all_inner_texts()
    assert teams
    assert set(teams) == {"T-NORTH"}
    as_of = page.locator("#as-of").get_attribute("datetime")
    summary = deployment.api("/v1/dashboard/summary", as_of=as_of, team_id="T-NORTH")
    assert tiles(page)["overdue"] == summary["obligations"]["overdue"]
    page.screenshot(path=str(ARTIFACTS / "dashboard-team.png"), full_page=True)


def test_an_overdue_case_opens_its_timeline(page: Any, deployment: Deployment) -> None:
    page.goto(f"{deployment.base}/dashboard")
    first = page.locator("table.overdue-table tbody th a").first
    case_id = first.inner_text()
    first.click()
    page.wait_for_url("**/dashboard/cases/**")
    assert page.locator("h1").inner_text() == f"Case {case_id}"
    assert page.locator(".timeline__event").count() >= 1
    assert page.locator(".status--overdue").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "case.png"), full_page=True)


def test_each_deadline_on_a_case_page_says_why_it_is_due_then(
    page: Any, deployment: Deployment
) -> None:
    page.goto(f"{deployment.base}/dashboard")
    page.locator("table.overdue-table tbody th a").first.click()
    page.wait_for_url("**/dashboard/cases/**")
    reasons = page.locator("tr.deadline__why td")
    assert reasons.count() == page.locator("tr.deadline").count() >= 1
    for text in reasons.all_inner_texts():
        assert text.startswith("Due by the end of "), text
    assert reasons.first.is_visible()


def test_the_dashboard_is_usable_from_the_keyboard(page: Any, deployment: Deployment) -> None:
    page.goto(f"{deployment.base}/dashboard")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to main content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


def test_a_widget_embedded_by_an_allowed_site_loads_with_its_token(
    page: Any, browser: Any, deployment: Deployment
) -> None:
    response = httpx.post(
        f"{deployment.base}/v1/embed-tokens",
        json={"ttl_seconds": 600, "team_id": "T-SOUTH"},
        headers={"Authorization": f"Bearer {deployment.keys['admin']}"},
        timeout=10,
    )
    token = response.json()["token"]
    (deployment.host_dir / "intranet.html").write_text(
        "<!doctype html><title>Intranet</title><h1>Team South</h1>"
        f'<iframe id="widget" title="Deadlines" width="900" height="320" '
        f'src="{deployment.base}/widgets/summary?token={token}"></iframe>'
        f'<iframe id="dashboard" title="Dashboard" width="400" height="200" '
        f'src="{deployment.base}/dashboard/sign-in"></iframe>'
    )
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    context.set_default_timeout(STEP_TIMEOUT_MS)
    intranet = context.new_page()
    intranet.goto(f"{deployment.host_origin}/intranet.html")
    widget = intranet.frame_locator("#widget")
    overdue = int(widget.locator("[data-tile=overdue] .tile__value").inner_text())
    summary = deployment.api("/v1/dashboard/summary", team_id="T-SOUTH")
    assert abs(overdue - summary["obligations"]["overdue"]) <= 1  # a deadline may pass between
    assert "Team T-SOUTH" in widget.locator(".widget__scope").inner_text()
    # The dashboard itself refuses to be framed, so nothing of it renders in the frame.
    intranet.wait_for_timeout(500)
    assert intranet.frame_locator("#dashboard").locator("form.sign-in").count() == 0
    intranet.screenshot(path=str(ARTIFACTS / "embedded-widget.png"))
    context.close()


def test_a_tampered_widget_token_is_refused(page: Any, deployment: Deployment) -> None:
    response = httpx.post(
        f"{deployment.base}/v1/embed-tokens",
        json={"ttl_seconds": 600},
        headers={"Authorization": f"Bearer {deployment.keys['admin']}"},
        timeout=10,
    )
    prefix, payload, signature = response.json()["token"].split(".")
    tampered = f"{prefix}.{payload}.{signature[::-1]}"
    answer = page.goto(f"{deployment.base}/widgets/summary?token={tampered}")
    assert answer.status == 401
    assert page.locator("h1").inner_text() == "This widget link does not work"
    page.screenshot(path=str(ARTIFACTS / "tampered-token.png"))


def test_a_worker_on_the_dashboard_opens_their_page(page: Any, deployment: Deployment) -> None:
    page.goto(f"{deployment.base}/dashboard")
    link = page.locator("table.overdue-table tbody td:nth-of-type(2) a").first
    worker_id = link.inner_text()
    link.click()
    page.wait_for_url("**/dashboard/workers/**")
    assert page.locator("h1").inner_text() == f"Worker {worker_id}"
    assert page.locator("table.caseload-table tbody th a").count() >= 1
    as_of = page.locator("#as-of").get_attribute("datetime")
    summary = deployment.api("/v1/dashboard/summary", as_of=as_of, worker_id=worker_id)
    assert tiles(page)["open_cases"] == summary["open_cases"]
    page.screenshot(path=str(ARTIFACTS / "worker.png"), full_page=True)


def test_a_team_on_the_dashboard_opens_its_page(page: Any, deployment: Deployment) -> None:
    page.goto(f"{deployment.base}/dashboard")
    page.locator("table.loads-table tbody td a").first.click()
    page.wait_for_url("**/dashboard/teams/**")
    assert page.locator("h1").inner_text().startswith("Team T-")
    assert page.locator("table.loads-table tbody th a").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "team.png"), full_page=True)


def signed_in_tab(browser: Any, deployment: Deployment, **options: Any) -> Any:
    context = browser.new_context(**options)
    context.set_default_timeout(STEP_TIMEOUT_MS)
    tab = context.new_page()
    tab.goto(f"{deployment.base}/dashboard/sign-in")
    tab.fill("#credential", deployment.keys["read"])
    tab.click("form.sign-in button[type=submit]")
    tab.wait_for_selector("[data-tile=overdue]")
    return tab


def test_the_whole_dashboard_fits_a_1280_px_page_with_its_figures_open(
    browser: Any, deployment: Deployment
) -> None:
    tab = signed_in_tab(browser, deployment, viewport={"width": 1280, "height": 900})
    tab.locator(".figures summary").click()
    assert tab.locator("table.trend-table").is_visible()
    overflowing = tab.evaluate(
        "[...document.querySelectorAll('.table-scroll')]"
        ".filter(e => e.offsetParent && e.scrollWidth > e.clientWidth + 1).length"
    )
    assert overflowing == 0
    assert tab.evaluate("document.documentElement.scrollWidth") <= 1280
    tab.context.close()


def test_the_readme_screenshot_is_taken_at_1280_px(browser: Any, deployment: Deployment) -> None:
    """docs/dashboard.png is this picture of the demo caseload."""
    tab = signed_in_tab(browser, deployment, viewport={"width": 1280, "height": 900})
    tab.screenshot(path=str(ARTIFACTS / "dashboard-1280.png"), full_page=True)
    tab.context.close()


def test_dates_are_day_first_in_a_browser_set_to_american_english(
    browser: Any, deployment: Deployment
) -> None:
    tab = signed_in_tab(browser, deployment, locale="en-US", timezone_id="America/New_York")
    assert re.fullmatch(r"\d{2}/\d{2}/\d{4}", tab.locator("#as_of").input_value())
    tab.fill("#as_of", "03/11/2025")
    tab.click("form.filters button[type=submit]")
    tab.wait_for_url("**as_of=**")
    assert tab.locator("#as-of").inner_text().startswith("3 Nov 2025")
    assert tab.locator("#as_of").input_value() == "03/11/2025"
    tab.context.close()


def test_a_widget_chart_fills_its_card(browser: Any, deployment: Deployment) -> None:
    context = browser.new_context(viewport={"width": 900, "height": 700})
    context.set_default_timeout(STEP_TIMEOUT_MS)
    tab = context.new_page()
    tab.goto(f"{deployment.base}/widgets/timeliness?token={embed_token(deployment)}")
    card = tab.locator("figure.trend").first.bounding_box()
    chart = tab.locator("figure.trend svg").first.bounding_box()
    assert card is not None
    assert chart is not None
    assert chart["width"] >= card["width"] - 30
    context.close()


def embed_token(deployment: Deployment) -> str:
    response = httpx.post(
        f"{deployment.base}/v1/embed-tokens",
        json={"ttl_seconds": 600},
        headers={"Authorization": f"Bearer {deployment.keys['admin']}"},
        timeout=10,
    )
    token: str = response.json()["token"]
    return token


def serious_violations(tab: Any) -> list[str]:
    """What axe-core finds serious or critical on the page as it is now."""
    results = axe_playwright.Axe().run(tab)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("where", ["dashboard", "case", "worker", "team"])
def test_no_page_has_a_serious_accessibility_violation(
    page: Any, deployment: Deployment, where: str
) -> None:
    page.goto(f"{deployment.base}/dashboard")
    if where == "case":
        page.locator("table.overdue-table tbody th a").first.click()
    elif where == "worker":
        page.locator("table.overdue-table tbody td:nth-of-type(2) a").first.click()
    elif where == "team":
        page.locator("table.loads-table tbody td a").first.click()
    page.wait_for_load_state()
    if page.locator(".figures").count():
        page.locator(".figures summary").first.click()
    assert serious_violations(page) == []


@pytest.mark.parametrize("widget", ["summary", "overdue", "workers", "timeliness"])
def test_no_widget_has_a_serious_accessibility_violation(
    browser: Any, deployment: Deployment, widget: str
) -> None:
    context = browser.new_context(viewport={"width": 900, "height": 700})
    context.set_default_timeout(STEP_TIMEOUT_MS)
    tab = context.new_page()
    tab.goto(f"{deployment.base}/widgets/{widget}?token={embed_token(deployment)}")
    assert serious_violations(tab) == []
    context.close()


def test_the_key_is_in_no_url_and_no_log_line(page: Any, deployment: Deployment) -> None:
    key = deployment.keys["read"]
    assert deployment.seen_urls
    assert not [url for url in deployment.seen_urls if key in url]
    assert key not in deployment.log.read_text()
