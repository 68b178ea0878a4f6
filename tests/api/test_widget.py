"""The chat widget (widget/tutor-widget.js) in a real headless Chromium, against the live API.

The page is the widget's demo, served by the app at `/widget/`; the browser and the `page` fixture
(a fresh context per test, failing on JavaScript errors) are shared by the browser tests
(tests/api/conftest.py). The reader's panel (history, Markdown, personalize/translate, feedback,
profile, accessibility) is tested in test_widget_panel.py.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

from playwright.async_api import Locator, Page, Request, expect

from tests.api.browser import TIMEOUT_MS, finished, select_passage
from tests.fakes import CapturedRequest, Reply, Text
from tests.fakes.fixtures import make_chat_model
from tests.graphs.conftest import tutor_responder

STORAGE_PREFIX = "tutor-widget:thread:"
ANSWER = "A topic is a named bus: publishers send messages to it and subscribers receive them [1]."


async def open_widget(page: Page, api: Any) -> Locator:
    await page.goto(f"{api.url}/widget/")
    widget = page.locator(".tw-root")
    await expect(widget).to_be_visible()
    return widget


async def ask(page: Page, widget: Locator, question: str) -> dict[str, Any]:
    """Type and send a question; the JSON body the widget posted."""
    await widget.locator(".tw-input").fill(question)
    async with page.expect_request("**/chat/stream") as request:
        await widget.locator(".tw-input").press("Enter")
    return await posted(request.value)


async def posted(request: Awaitable[Request]) -> dict[str, Any]:
    body = (await request).post_data_json
    assert isinstance(body, dict)
    return body


async def translate(page: Page, content: str, language: str, token: str | None = None) -> None:
    """A translate turn through the widget's own API (`widget.ask`, as a host page may call it);
    rewrites need a signed-in reader, so pass the widget a `token`."""
    await page.evaluate(
        "([content, language, token]) => { const widget = TutorWidget.instances[0];"
        " if (token) widget.setToken(token); return widget.ask('Translate this', "
        "{mode: 'translate', content: content, target_language: language}); }",
        [content, language, token],
    )


async def stored_thread(page: Page) -> str | None:
    entries: list[list[str]] = await page.evaluate("Object.entries(localStorage)")
    threads = [value for key, value in entries if key.startswith(STORAGE_PREFIX)]
    return threads[0] if threads else None


def slow_answers(answer: str = ANSWER, delay: float = 0.08) -> Callable[[CapturedRequest], Reply | None]:
    """tutor_responder, with the answering call's tokens spaced out."""
    scripted = tutor_responder(answer=answer)

    def respond(request: CapturedRequest) -> Reply | None:
        if "patient tutor for a textbook" in request.system_prompt:
            return Text(answer, token_delay=delay)
        return scripted(request)

    return respond


async def test_streams_tokens_then_the_answer_with_sources_and_keeps_the_thread(
    make_api: Any, fake_openai: Any, page: Page
) -> None:
    fake_openai.responder = slow_answers()
    api = await make_api(make_chat_model(fake_openai))
    widget = await open_widget(page, api)
    body = await ask(page, widget, "What does a ROS 2 topic do?")
    assert body["page"] == "/docs/module-1/nodes" and body["mode"] == "auto" and "thread_id" not in body

    # Tokens render as they arrive: the text grows while the answer is still streaming.
    answer = widget.locator(".tw-assistant").last
    text = answer.locator(".tw-text")
    partials: list[str] = []
    async with asyncio.timeout(TIMEOUT_MS / 1000):
        while await answer.get_attribute("data-state") == "streaming":
            partials.append(await text.text_content() or "")
            await asyncio.sleep(0.03)
    growing = [p for p in dict.fromkeys(partials) if p]
    assert len(growing) >= 3, partials
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(growing))
    assert len(growing[0]) < len(ANSWER)

    await finished(widget)
    await expect(text).to_have_text(ANSWER)
    await expect(answer.locator(".tw-route")).to_have_text("ask")
    thread = await stored_thread(page)
    assert thread
    stored = (await api.client().get(f"/threads/{thread}")).json()["messages"]
    source = stored[-1]["sources"][0]
    link = answer.locator(".tw-sources li a").first
    assert await link.get_attribute("href") == source["url"]
    assert source["url"].startswith(("http://", "https://"))
    await expect(link).to_contain_text(source["title"])
    assert await link.get_attribute("title") == source["quote"]
    assert await answer.locator(".tw-sources li").count() == len(stored[-1]["sources"])

    # A second question continues the same thread.
    body = await ask(page, widget, "And who receives them?")
    assert body["thread_id"] == thread
    await finished(widget)
    messages = (await api.client().get(f"/threads/{thread}")).json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"] * 2

    # "New conversation" forgets it.
    await widget.locator(".tw-new").click()
    assert await stored_thread(page) is None
    assert await widget.locator(".tw-msg").count() == 0


async def test_extractive_answer_with_sources_and_a_bearer_token(make_api: Any, page: Page) -> None:
    api = await make_api()
    widget = await open_widget(page, api)
    await ask(page, widget, "What does a ROS 2 topic do?")
    answer = await finished(widget)
    await expect(answer.locator(".tw-route")).to_have_text("ask")
    assert (await answer.locator(".tw-text").text_content() or "").strip()
    links = answer.locator(".tw-sources a")
    assert await links.count() >= 1
    hrefs = [await links.nth(i).get_attribute("href") or "" for i in range(await links.count())]
    assert all(href.startswith(("http://", "https://")) for href in hrefs)

    # Mounted by hand with a token: the turn belongs to that user.
    options = {"api": api.url, "token": api.token("alice"), "storageKey": "alice-thread"}
    await page.evaluate(
        "options => TutorWidget.mount(document.body.appendChild(document.createElement('div')), options)"
        ".root.id = 'mine'",
        options,
    )
    mine = page.locator("#mine")
    async with page.expect_request("**/chat/stream") as request:
        await mine.locator(".tw-input").fill("What is a ROS 2 node?")
        await mine.locator(".tw-send").click()
    assert (await request.value).headers["authorization"] == f"Bearer {options['token']}"
    await finished(mine)
    thread = await page.evaluate("localStorage.getItem('alice-thread')")
    owned = await api.client().get("/threads", headers=api.headers("alice"))
    assert thread in [t["thread_id"] for t in owned.json()]


async def test_ask_about_the_selected_passage(make_api: Any, page: Page) -> None:
    api = await make_api()
    widget = await open_widget(page, api)
    button = widget.locator(".tw-ask-selection")
    await expect(button).to_be_disabled()
    passage = "A ROS 2 node is a process that performs computation."
    await select_passage(page, passage)
    await expect(button).to_be_enabled()
    async with page.expect_request("**/chat/stream") as request:
        await button.click()
    body = await posted(request.value)
    assert body["selected_text"] == passage and body["mode"] == "auto"
    answer = await finished(widget)
    await expect(answer).to_have_attribute("data-route", "selection")
    await expect(answer.locator(".tw-route")).to_have_text("selection")


async def test_errors_are_shown_as_messages(make_api: Any, page: Page) -> None:
    api = await make_api()
    widget = await open_widget(page, api)

    await ask(page, widget, "x" * 8_001)  # 422 before the stream starts
    answer = await finished(widget, "error")
    await expect(answer.locator(".tw-error-message")).to_have_text(
        "Your question is too long (8,000 characters at most)."
    )

    # Refused before the stream starts: translation needs a chat model (503).
    await translate(page, "A node is a process.", "ur")
    answer = await finished(widget, "error")
    message = await answer.locator(".tw-error-message").text_content() or ""
    assert message and "Traceback" not in message and "needs_chat_model" not in message
    # The widget is usable again afterwards.
    await expect(widget.locator(".tw-send")).to_be_enabled()
    await expect(widget.locator(".tw-stop")).to_be_disabled()


async def test_stop_aborts_the_stream_and_the_model_call(make_api: Any, fake_openai: Any, page: Page) -> None:
    fake_openai.responder = slow_answers(" ".join(["word"] * 200), delay=0.05)
    api = await make_api(make_chat_model(fake_openai))
    widget = await open_widget(page, api)
    await ask(page, widget, "What does a ROS 2 topic do?")
    answer = widget.locator(".tw-assistant").last
    await expect(answer.locator(".tw-text")).to_contain_text("word")
    await widget.locator(".tw-stop").click()
    await finished(widget, "aborted")
    await expect(answer.locator(".tw-error-message")).to_have_text("Stopped.")
    disconnected = lambda fake: fake.chat_requests[-1].client_disconnected  # noqa: E731
    assert await asyncio.to_thread(fake_openai.wait_for, disconnected, 5)


async def test_urdu_answer_is_right_to_left(make_api: Any, fake_openai: Any, page: Page) -> None:
    fake_openai.responder = tutor_responder(rewrite="نوڈ ایک عمل ہے جو حساب کرتا ہے۔")
    api = await make_api(make_chat_model(fake_openai))
    widget = await open_widget(page, api)
    await translate(page, "A node is a process that performs computation.", "ur", api.token("urdu-reader"))
    answer = await finished(widget)
    await expect(answer).to_have_attribute("dir", "rtl")
    await expect(answer).to_have_attribute("lang", "ur")
    await expect(answer.locator(".tw-text")).to_have_text("نوڈ ایک عمل ہے جو حساب کرتا ہے۔")
    assert await widget.get_attribute("dir") is None
    assert await widget.locator(".tw-user").last.get_attribute("dir") is None
