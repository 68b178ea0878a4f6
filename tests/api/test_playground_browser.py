"""LangServe's playground (`/tutor/playground/`) in a real headless Chromium, against the live API.

What a reader does there: fill the form built from `/tutor`'s input schema, start a run, read the
answer and its sources in the output box, ask a follow-up on the same thread (the playground's
cookie), reload for a fresh conversation. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

from typing import Any

from playwright.async_api import Locator, Page, expect

from tests.api.browser import TIMEOUT_MS, screenshot
from tests.fakes.fixtures import make_chat_model
from tests.graphs.conftest import tutor_responder

QUESTION = "What does a ROS 2 topic do?"
ANSWER = "A topic is a named bus: nodes publish messages to it and others subscribe [1]."


def field(page: Page, name: str) -> Locator:
    """The form control of one input field (jsonforms names it by its schema path)."""
    return page.locator(f'[id="#/properties/{name}-input"]')


def output(page: Page) -> Locator:
    return page.locator("div:has(> h2:text-is('Output')) > div").first


async def open_playground(page: Page, api: Any) -> None:
    await page.goto(f"{api.url}/tutor/playground/")
    await expect(field(page, "message")).to_be_visible()
    for name in ("mode", "selected_text", "page", "target_language", "content"):
        await expect(field(page, name)).to_be_visible()


async def run(tab: Page, message: str, **fields: str) -> str:
    """Fill the form, press Start, wait for the run to finish; the thread it ran on."""
    await field(tab, "message").fill(message)
    for name, value in fields.items():
        if name == "mode":
            await field(tab, name).select_option(value)
        else:
            await field(tab, name).fill(value)
    start = tab.get_by_role("button", name="Start")
    await expect(start).to_be_enabled()
    async with tab.expect_response("**/tutor/stream_log") as response:
        await start.click()
    thread = (await response.value).headers["x-thread-id"]
    await expect(tab.get_by_role("button", name="Stop")).to_have_count(0, timeout=TIMEOUT_MS)
    return thread


async def user_messages(api: Any, thread: str) -> list[str]:
    messages = (await api.client().get(f"/threads/{thread}")).json()["messages"]
    return [m["content"] for m in messages if m["role"] == "user"]


async def test_a_conversation_in_the_playground(make_api: Any, page: Page, console_errors: list[str]) -> None:
    api = await make_api()  # extractive answers: no tokens stream, the answer comes whole
    await open_playground(page, api)
    await expect(page.get_by_role("button", name="Start")).to_be_disabled()  # no message yet
    await screenshot(page, "playground-form")

    thread = await run(page, QUESTION, mode="ask", page="/docs/module-1-ros2/ros2-communication")
    text = output(page)
    await expect(text).to_contain_text("Sources")
    await expect(text).to_contain_text("[1] ")
    await expect(text).to_contain_text(f"{api.settings.book_base_url}/docs/")  # a deep link
    shown = await text.inner_text()
    stored = (await api.client().get(f"/threads/{thread}")).json()["messages"][-1]
    assert shown.split("\nSources\n")[0].strip() == stored["content"].strip()  # the answer, as prose
    assert stored["sources"][0]["url"] in shown
    await screenshot(page, "playground-answer")

    follow_up = await run(page, "And what is a service?")
    assert follow_up == thread
    assert await user_messages(api, thread) == [QUESTION, "And what is a service?"]
    await screenshot(page, "playground-follow-up")

    await page.reload()  # a fresh page is a fresh conversation
    await open_playground(page, api)
    await expect(output(page)).to_have_count(0)
    fresh = await run(page, QUESTION)
    assert fresh != thread
    assert await user_messages(api, fresh) == [QUESTION]
    assert not console_errors


async def test_streamed_model_answer_and_a_form_check(
    make_api: Any, fake_openai: Any, page: Page, console_errors: list[str]
) -> None:
    fake_openai.responder = tutor_responder(answer=ANSWER)
    api = await make_api(make_chat_model(fake_openai))
    await open_playground(page, api)

    await run(page, QUESTION)
    text = output(page)
    await expect(text).to_contain_text(ANSWER)
    await expect(text).to_contain_text("Sources")
    assert (await text.inner_text()).count(ANSWER) == 1  # streamed tokens are not repeated
    await screenshot(page, "playground-model-answer")

    # A bad language tag is caught by the form itself, before anything is sent.
    await field(page, "target_language").fill("not a language")
    await expect(page.get_by_role("button", name="Start")).to_be_disabled()
    assert not console_errors
