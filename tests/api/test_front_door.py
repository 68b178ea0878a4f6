"""`/`, the first URL anyone opens: the demo book page with the tutor widget, working."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page, expect

from tests.api.browser import screenshot
from tests.api.test_widget import ask, finished


async def test_the_front_door_is_the_demo_page_with_a_working_widget(
    make_api: Any, page: Page, console_errors: list[str]
) -> None:
    api = await make_api()
    await page.goto(f"{api.url}/")
    await expect(page.locator("h1")).to_have_text("Nodes and rclpy")
    widget = page.locator(".tw-root")
    await expect(widget).to_be_visible()

    body = await ask(page, widget, "What does a ROS 2 topic do?")
    assert body["page"] == "/docs/module-1/nodes"
    answer = await finished(widget)
    assert (await answer.locator(".tw-text").text_content() or "").strip()
    assert await answer.locator(".tw-sources a").count() >= 1
    await screenshot(page, "front-door-answer")
    assert not console_errors


async def test_the_front_door_page_is_the_widget_demo(make_api: Any) -> None:
    client = (await make_api()).client()
    front, demo = await client.get("/"), await client.get("/widget/")
    assert front.status_code == demo.status_code == 200
    assert front.headers["content-type"].startswith("text/html") and front.text == demo.text
    assert (await client.get("/widget/tutor-widget.js")).status_code == 200
    assert "/" not in (await client.get("/openapi.json")).json()["paths"]
