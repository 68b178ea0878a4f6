"""Shared by the browser tests: where Chromium is, how long to wait, where screenshots go.

Chromium is Debian's (`/usr/bin/chromium`, or `TUTOR_CHROMIUM`); Playwright never downloads a
browser. Playwright's async API shares the test's event loop with the live server (a sync call
would block it). The fixtures (`browser`, once per session; `page`, a fresh context per test;
`console_errors`) are in tests/api/conftest.py.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from playwright.async_api import Page

CHROMIUM = Path(os.environ.get("TUTOR_CHROMIUM", "/usr/bin/chromium"))
TIMEOUT_MS = 15_000
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"  # git-ignored


async def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot under tests/artifacts/ and print where (run with -s to see)."""
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.png"
    path.parent.mkdir(exist_ok=True)
    await page.screenshot(path=path, full_page=True)
    print(f"screenshot: {path}")
    return path
