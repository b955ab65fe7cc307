"""The review desk in a real headless chromium (Debian's, driven by Playwright): log in, decide
three cases by keyboard, find them in the audit trail and the labels; no entry without login.

Screenshots of every page land in the test's tmp_path (look at them when a page changes).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from cloud.review_desk.samples import record_with_result, sample_case
from cloud.review_desk.server import DeskServer
from cloud.store import CloudStore

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = os.environ.get("EDGEWARD_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PASSWORD = "desk password 1"


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[tuple[DeskServer, CloudStore]]:
    store = CloudStore(tmp_path / "data")
    with DeskServer(store) as server:
        server.desk.accounts.add("ann", "reviewer", PASSWORD)
        server.desk.accounts.add("root", "admin", PASSWORD)
        yield server, store
    store.close()


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium`", pytrace=False)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def _login(page: Page, url: str, name: str) -> None:
    page.goto(f"{url}/")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(f"{url}/")


def test_reviewer_works_through_three_cases_by_keyboard(
    desk: tuple[DeskServer, CloudStore], browser: Browser, tmp_path: Path
) -> None:
    server, store = desk
    url = server.url
    disputed = record_with_result(
        store,
        sample_case("scan-disputed", edge_verdict="no_immediate_concern", cloud_verdict="refer"),
    )
    high = store.enqueue(sample_case("scan-high", referable_probability=0.68))
    low = store.enqueue(sample_case("scan-low", referable_probability=0.41, waited_s=600))
    shots = tmp_path / "screens"
    shots.mkdir()

    page = browser.new_page(viewport={"width": 1400, "height": 900})
    # refused without a session: the page goes to login, the API answers 401
    page.goto(f"{url}/cases/{disputed.case_id}")
    assert "/desk/login" in page.url
    page.screenshot(path=shots / "01-login.png", full_page=True)
    assert page.request.get(f"{url}/api/queue").status == 401

    page.fill("input[name=name]", "ann")
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(f"{url}/cases/{disputed.case_id}")  # back where the login began
    page.goto(f"{url}/")
    rows = page.locator("table.queue tbody tr td:nth-child(2) a").all_inner_texts()
    assert rows == ["scan-disputed", "scan-high", "scan-low"]
    page.screenshot(path=shots / "02-queue.png", full_page=True)

    page.keyboard.press("Enter")  # the most urgent case
    page.wait_for_url(f"{url}/cases/{disputed.case_id}")
    page.wait_for_function("document.getElementById('scan').naturalWidth > 0")
    assert page.locator("#scan").evaluate("img => img.naturalWidth") == 256  # full resolution
    page.screenshot(path=shots / "03-case.png", full_page=True)
    assert "grade 2: 0.300" in page.content()  # the stored GradeResult's probabilities
    page.keyboard.press("h")
    assert page.locator("#gradcam").is_visible() and not page.locator("#scan").is_visible()
    fit_width = page.locator("#gradcam").evaluate("img => img.clientWidth")
    page.keyboard.press("+")
    assert not page.locator("#zoom-level").inner_text().startswith("fit")
    assert page.locator("#gradcam").evaluate("img => img.clientWidth") > fit_width
    page.screenshot(path=shots / "04-case-gradcam-zoom.png", full_page=True)
    page.click("#note")
    page.keyboard.type("edge missed the haemorrhages")
    page.keyboard.press("Escape")
    page.keyboard.press("3")
    page.keyboard.press("r")  # refer, grade 3: the next case opens

    page.wait_for_url(f"{url}/cases/{high.case_id}")
    page.screenshot(path=shots / "05-second-case.png", full_page=True)
    page.keyboard.press("n")
    page.wait_for_url(f"{url}/cases/{low.case_id}")
    page.keyboard.press("u")
    page.wait_for_url(f"{url}/?done=1")
    assert "Nothing waits for you" in page.content()
    page.screenshot(path=shots / "06-queue-done.png", full_page=True)

    labels = {row["scan_id"]: row["label"] for row in store.labels()}  # what GET /v1/labels reads
    assert labels == {"scan-disputed": "grade3", "scan-high": "grade0", "scan-low": "ungradable"}

    admin = browser.new_page(viewport={"width": 1400, "height": 900})
    _login(admin, url, "root")
    admin.goto(f"{url}/audit")
    cells = admin.locator("table.trail tbody tr").all_inner_texts()
    admin.screenshot(path=shots / "07-audit.png", full_page=True)
    assert len(cells) == 3
    assert all("ann" in row and "fundus-dr:7" in row for row in cells)
    assert "edge missed the haemorrhages" in cells[0] and "refer" in cells[0]

    page.click("text=Log out")
    page.wait_for_url(f"{url}/login")
    page.goto(f"{url}/audit")
    assert "/desk/login" in page.url  # the session is gone
    assert len(list(shots.glob("*.png"))) == 7
