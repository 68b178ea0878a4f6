"""The widget on a real Docusaurus site: the recipe in widget/README.md, built and checked in Chromium.

    uv run python bench/docusaurus_widget.py [--workdir /tmp/tutor-docusaurus] [--port 8171]

Not part of the test suite (npm installing Docusaurus takes a minute or more). Steps: write a minimal
Docusaurus 3 site (two pages of the bundled book, the widget added through `clientModules` exactly as
the README shows), `npm install` it from the npm registry (reused when already installed), build it,
serve the build statically, start `tutor serve` (its own TUTOR_HOME; CORS allows the site;
BOOK_BASE_URL is the site), then in Debian Chromium: open a doc page, ask a question, and check the
answer cites that page and the request carried the page's route and the reader's token. Then move to
another doc through the sidebar (client-side routing, no reload) and check `page` followed the route.
Exit status 0 when every check holds.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
DOCUSAURUS = "3.10.2"
REACT = "19.2.0"
PAGES = {  # book file → where it lands in the site's docs/
    "book/docs/intro.md": "intro.md",
    "book/docs/01-module-1-ros2/01-nodes-and-rclpy.md": "module-1/01-nodes-and-rclpy.md",
}
NODES_ROUTE = "/docs/module-1/nodes"

CONFIG = """// @ts-check
/** @type {import('@docusaurus/types').Config} */
module.exports = {
  title: "Physical AI & Humanoid Robotics",
  url: "http://127.0.0.1",
  baseUrl: "/",
  onBrokenLinks: "warn",
  markdown: {hooks: {onBrokenMarkdownLinks: "warn"}},
  presets: [["classic", {docs: {sidebarPath: undefined}, blog: false, pages: false, theme: {}}]],
  // The tutor's panel on every page (widget/README.md, "Docusaurus").
  clientModules: ["./src/tutor-widget.js"],
};
"""

# Kept identical to the recipe in widget/README.md (TUTOR_URL and the token key are the site's).
CLIENT_MODULE = """import ExecutionEnvironment from "@docusaurus/ExecutionEnvironment";

const TUTOR_URL = "__TUTOR_URL__"; // where `tutor serve` runs (CORS_ORIGINS must list this site)

if (ExecutionEnvironment.canUseDOM) {
  const script = document.createElement("script");
  script.src = TUTOR_URL + "/widget/tutor-widget.js";
  script.dataset.auto = "false";
  script.onload = () =>
    window.TutorWidget.ready.then(() =>
      window.TutorWidget.mount(document.body.appendChild(document.createElement("div")), {
        api: TUTOR_URL,
        floating: true,
        // Docusaurus changes routes without reloading: read the page at each question.
        page: () => window.location.pathname,
        // The reader's token from the site's own sign-in (here: whatever it stored), or none.
        token: () => window.localStorage.getItem("auth-token"),
      })
    );
  document.head.appendChild(script);
}
"""


def write_site(site: Path, tutor_url: str) -> None:
    (site / "src").mkdir(parents=True, exist_ok=True)
    package = {
        "name": "tutor-docusaurus-check",
        "private": True,
        "dependencies": {
            "@docusaurus/core": DOCUSAURUS,
            "@docusaurus/preset-classic": DOCUSAURUS,
            "react": REACT,
            "react-dom": REACT,
        },
    }
    (site / "package.json").write_text(json.dumps(package, indent=2))
    (site / "docusaurus.config.js").write_text(CONFIG)
    (site / "src" / "tutor-widget.js").write_text(CLIENT_MODULE.replace("__TUTOR_URL__", tutor_url))
    for source, target in PAGES.items():
        path = site / "docs" / target
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / source, path)


def npm(site: Path, *args: str) -> None:
    started = time.monotonic()
    subprocess.run(["npm", *args], cwd=site, check=True)
    print(f"npm {' '.join(args)}: {time.monotonic() - started:.0f} s", flush=True)


@contextlib.contextmanager
def static_server(folder: Path, port: int) -> Iterator[str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()


@contextlib.contextmanager
def tutor(home: Path, port: int, site_url: str) -> Iterator[str]:
    env = {
        **os.environ,
        "TUTOR_HOME": str(home),
        "CORS_ORIGINS": site_url,
        "BOOK_BASE_URL": site_url,
        "PLAYGROUND_ENABLED": "false",
    }
    env.pop("CHAT_MODEL", None)  # extractive answers: the check needs no API key
    process = subprocess.Popen(["uv", "run", "tutor", "serve", "--port", str(port)], cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600  # a first start builds the model and indexes the book
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("tutor serve did not start")
            time.sleep(1)
        yield url
    finally:
        process.terminate()
        process.wait(30)


def token(home: Path, user: str) -> str:
    env = {**os.environ, "TUTOR_HOME": str(home)}
    done = subprocess.run(
        ["uv", "run", "tutor", "token", "--sub", user],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def check(site_url: str, tutor_url: str, bearer: str) -> list[str]:
    """The checks in Chromium; returns the failures (empty when all hold)."""
    failures: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        context = browser.new_context()
        context.add_init_script(f"localStorage.setItem('auth-token', {bearer!r})")
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(site_url + NODES_ROUTE)
        panel = page.locator(".tw-root")
        panel.locator(".tw-input").fill("What is a ROS 2 node?")
        with page.expect_request("**/chat/stream") as request:
            panel.locator(".tw-input").press("Enter")
        body = request.value.post_data_json
        # A static host may redirect to the folder's trailing slash; the tutor reads both the same.
        if str(body.get("page")).rstrip("/") != NODES_ROUTE:
            failures.append(f"page sent was {body.get('page')!r}, not {NODES_ROUTE!r}")
        if request.value.headers.get("authorization") != f"Bearer {bearer}":
            failures.append("the reader's token was not sent")
        answer = panel.locator(".tw-assistant").last
        page.wait_for_selector(".tw-assistant[data-state=done]")
        hrefs = answer.locator(".tw-sources a").evaluate_all("links => links.map(a => a.href)")
        print("sources:", *hrefs, sep="\n  ")
        if not any(href.startswith(site_url + NODES_ROUTE) for href in hrefs):
            failures.append(f"no source cites {NODES_ROUTE}: {hrefs}")
        page.screenshot(path=str(Path(os.environ.get("TMPDIR", "/tmp")) / "docusaurus-widget.png"))

        # Client-side navigation: the next question carries the new route.
        page.locator("nav a[href='/docs/intro']").first.click()
        page.wait_for_url("**/docs/intro")
        panel.locator(".tw-input").fill("What does the course cover?")
        with page.expect_request("**/chat/stream") as request:
            panel.locator(".tw-input").press("Enter")
        sent = request.value.post_data_json.get("page")
        if str(sent).rstrip("/") != "/docs/intro":
            failures.append(f"after navigation the page sent was {sent!r}")
        browser.close()
    threads = httpx.get(f"{tutor_url}/threads", headers={"Authorization": f"Bearer {bearer}"}).json()
    if not threads:
        failures.append("the signed-in reader has no thread")
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/tutor-docusaurus"))
    parser.add_argument("--port", type=int, default=8171, help="the tutor's port; the site uses the next one")
    args = parser.parse_args()
    site, home = args.workdir / "site", args.workdir / "tutor-home"
    tutor_url, site_port = f"http://127.0.0.1:{args.port}", args.port + 1
    site_url = f"http://127.0.0.1:{site_port}"
    write_site(site, tutor_url)
    if not (site / "node_modules" / ".bin" / "docusaurus").exists():
        npm(site, "install", "--no-audit", "--no-fund", "--loglevel=error")
    npm(site, "exec", "--", "docusaurus", "build")
    with static_server(site / "build", site_port), tutor(home, args.port, site_url):
        failures = check(site_url, tutor_url, token(home, "docusaurus-reader"))
    for failure in failures:
        print("FAIL:", failure)
    print("OK: the widget on a Docusaurus page cites that page" if not failures else "FAILED")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
