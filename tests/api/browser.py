"""Browser fixtures and helpers for the widget tests: Debian Chromium through Playwright, axe-core.

Import the fixtures into a test module: `from tests.api.browser import browser_fixture, page_fixture`
(registered as `browser` and `page`; `axe_script_fixture` as `axe_script`).
Playwright's async API shares the test's event loop with the live server (a sync call would block
it). Chromium is Debian's (`/usr/bin/chromium`, or `TUTOR_CHROMIUM`); Playwright never downloads a
browser. Launched once per module; each test gets a fresh browser context (its own storage).

axe-core comes from the npm registry at test time into a cache folder (never committed): pinned,
installed once, reused. Without npm or the registry the accessibility check is skipped outside CI
and fails in CI.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

CHROMIUM = Path(os.environ.get("TUTOR_CHROMIUM", "/usr/bin/chromium"))
AXE_VERSION = "4.11.0"
AXE_HOME = Path(os.environ.get("TUTOR_TEST_CACHE", Path.home() / ".cache" / "textbook-tutor-tests"))
ARTIFACTS = Path(os.environ.get("TUTOR_ARTIFACTS", Path(__file__).resolve().parents[1] / "artifacts"))
TIMEOUT_MS = 15_000


def _required(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run the browser tests")
    pytest.skip(reason)


@pytest.fixture(scope="module", name="browser")
async def browser_fixture() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        _required(f"{CHROMIUM} not installed")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        await chromium.close()


@pytest.fixture(name="page")
async def page_fixture(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1100, "height": 820})
    context.set_default_timeout(TIMEOUT_MS)
    tab = await context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    await context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="session", name="axe_script")
def axe_script_fixture() -> Path:
    """axe.min.js of the pinned axe-core, installed from the npm registry on first use."""
    target = AXE_HOME / f"axe-core-{AXE_VERSION}"
    script = target / "node_modules" / "axe-core" / "axe.min.js"
    if script.exists():
        return script
    npm = shutil.which("npm")
    if npm is None:
        _required("npm is not installed (needed to fetch axe-core)")
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [npm, "install", "--prefix", str(target), "--no-audit", "--no-fund", f"axe-core@{AXE_VERSION}"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if done.returncode != 0 or not script.exists():
        _required(f"could not install axe-core {AXE_VERSION} from npm: {done.stderr.strip()[-300:]}")
    return script


async def axe_violations(page: Page, script: Path, selector: str = ".tw-root") -> list[dict[str, Any]]:
    """Serious and critical axe-core violations inside `selector` (WCAG 2 A/AA rules)."""
    await page.add_script_tag(path=str(script))
    results: dict[str, Any] = await page.evaluate(
        """selector => axe.run(document.querySelector(selector), {runOnly: {type: 'tag',
            values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})""",
        selector,
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["html"][:160] for n in v["nodes"]][:3]}
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]


async def screenshot(page: Page, name: str) -> Path:
    """A picture of the page's current state, kept as a test artifact (git-ignored folder)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"widget-{re.sub(r'[^a-z0-9-]+', '-', name.lower())}.png"
    await page.screenshot(path=str(path))
    return path


async def finished(widget: Locator, state: str = "done") -> Locator:
    """The last answer, once it reached `state` (done, error, aborted)."""
    answer = widget.locator(".tw-assistant").last
    await expect(answer).to_have_attribute("data-state", state, timeout=TIMEOUT_MS)
    return answer
