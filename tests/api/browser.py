"""Shared by the browser tests: where Chromium is, how long to wait, axe-core, screenshots.

Chromium is Debian's (`/usr/bin/chromium`, or `TUTOR_CHROMIUM`); Playwright never downloads a
browser. Playwright's async API shares the test's event loop with the live server (a sync call
would block it). The fixtures `browser` (once per session), `page` (a fresh context per test),
`console_errors` and `axe_script` are registered in tests/api/conftest.py.

axe-core comes from the npm registry at test time into a cache folder (never committed): pinned,
installed once, reused. Without npm or the registry the accessibility check is skipped outside CI
and fails in CI.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Locator, Page, expect

CHROMIUM = Path(os.environ.get("TUTOR_CHROMIUM", "/usr/bin/chromium"))
AXE_VERSION = "4.11.0"
AXE_HOME = Path(os.environ.get("TUTOR_TEST_CACHE", Path.home() / ".cache" / "textbook-tutor-tests"))
ARTIFACTS = Path(os.environ.get("TUTOR_ARTIFACTS", Path(__file__).resolve().parents[1] / "artifacts"))
TIMEOUT_MS = 15_000


def _required(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run the browser tests")
    pytest.skip(reason)


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
    """Save a full-page screenshot under tests/artifacts/ (git-ignored) and print where (-s shows it)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.png"
    await page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


async def finished(widget: Locator, state: str = "done") -> Locator:
    """The last answer, once it reached `state` (done, error, aborted)."""
    answer = widget.locator(".tw-assistant").last
    await expect(answer).to_have_attribute("data-state", state, timeout=TIMEOUT_MS)
    return answer


async def select_passage(page: Page, sentence: str) -> None:
    """Select `sentence` inside the demo page's #passage paragraph, as a reader's drag would."""
    await page.evaluate(
        """sentence => {
            const node = document.getElementById('passage').firstChild;
            const start = node.data.indexOf(sentence);
            const range = document.createRange();
            range.setStart(node, start);
            range.setEnd(node, start + sentence.length);
            getSelection().removeAllRanges();
            getSelection().addRange(range);
        }""",
        sentence,
    )
