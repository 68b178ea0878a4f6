"""The reader's panel in headless Chromium against the live API: restored history, Markdown answers,
personalize/translate where a reader wants them, feedback, conversations, the profile form, error
sentences, keyboard use and axe-core. Each state is saved as a screenshot (tests/artifacts/).

Signed-in readers: the demo page reads its token from sessionStorage (its demo sign-in), set here
before the page loads.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Locator, Page, expect

from tests.api.browser import (
    TIMEOUT_MS,
    axe_violations,
    finished,
    screenshot,
    select_passage,
)
from tests.api.test_admission import stream_until_started
from tests.api.test_limits import slow_answers
from tests.fakes import CapturedRequest, Reply, Text
from tests.fakes.fixtures import make_chat_model
from tests.graphs.conftest import tutor_responder

PAGE = "/docs/module-1/nodes"
URDU = "نوڈ ایک عمل ہے جو حساب کرتا ہے۔ ٹاپک پیغامات کی ایک نالی ہے۔"
PERSONALIZED = "For a **hands-on** learner: a node is one running program [1]."
PROFILE = {"education_level": "undergraduate", "software_background": "beginner", "learning_mode": "hands_on"}


def responder(
    answer: str = "Topics carry streams of messages [1].",
    *,
    personalized: str = PERSONALIZED,
    translated: str = URDU,
    rewrite_delay: float = 0.0,
) -> Callable[[CapturedRequest], Reply | None]:
    """tutor_responder, with personalize and translate told apart (and optionally slow)."""
    scripted = tutor_responder(answer=answer)

    def respond(request: CapturedRequest) -> Reply | None:
        reply = scripted(request)
        if reply is not None:
            return reply
        if "You adapt passages" in request.system_prompt:
            return Text(personalized, token_delay=rewrite_delay)
        return Text(translated, token_delay=rewrite_delay)

    return respond


async def open_panel(page: Page, api: Any, user: str | None = None, token: str | None = None) -> Locator:
    token = token or (api.token(user) if user else None)
    if token:
        await page.context.add_init_script(f"sessionStorage.setItem('tutor-demo-token', {token!r})")
    await page.goto(f"{api.url}/widget/")
    widget = page.locator(".tw-root")
    await expect(widget.locator(".tw-input")).to_be_visible()
    return widget


async def ask(
    page: Page, widget: Locator, question: str, state: str = "done"
) -> tuple[dict[str, Any], Locator]:
    """Send a question by keyboard; the posted body and the finished answer."""
    await widget.locator(".tw-input").fill(question)
    async with page.expect_request("**/chat/stream") as request:
        await widget.locator(".tw-input").press("Enter")
    body = (await request.value).post_data_json
    return body, await finished(widget, state)


async def click_posting(page: Page, control: Locator) -> dict[str, Any]:
    async with page.expect_request("**/chat/stream") as request:
        await control.click()
    body = (await request.value).post_data_json
    assert isinstance(body, dict)
    return body


async def source_links(answer: Locator) -> list[tuple[str, str]]:
    links = answer.locator(".tw-sources a")
    return [
        ((await links.nth(i).get_attribute("href")) or "", (await links.nth(i).text_content()) or "")
        for i in range(await links.count())
    ]


async def stored(api: Any, thread: str, user: str | None = None) -> list[dict[str, Any]]:
    response = await api.client().get(f"/threads/{thread}", headers=api.headers(user))
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


async def thread_of(page: Page) -> str:
    thread = await page.evaluate(
        "Object.entries(localStorage).filter(([k]) => k.startsWith('tutor-widget:thread:'))[0][1]"
    )
    assert isinstance(thread, str)
    return thread


async def test_reload_restores_a_three_turn_conversation_with_its_sources(
    make_api: Any, fake_openai: Any, page: Page
) -> None:
    fake_openai.responder = responder()
    api = await make_api(make_chat_model(fake_openai))
    widget = await open_panel(page, api)
    streamed = []
    for question in ("What does a ROS 2 topic do?", "What is a node?", "How do I list topics?"):
        _, answer = await ask(page, widget, question)
        streamed.append((await answer.locator(".tw-text").text_content(), await source_links(answer)))
    assert all(links for _, links in streamed)
    assert await widget.locator(".tw-up").count() == 0  # rating answers is for signed-in readers

    await page.reload()
    answers = widget.locator(".tw-assistant")
    await expect(answers).to_have_count(3)
    await expect(widget.locator(".tw-user")).to_have_count(3)
    await expect(widget.locator(".tw-user").first).to_have_text("What does a ROS 2 topic do?")
    restored = [
        (await answers.nth(i).locator(".tw-text").text_content(), await source_links(answers.nth(i)))
        for i in range(3)
    ]
    assert restored == streamed
    # The citation marker still links to its source.
    cite = answers.first.locator("a.tw-cite")
    await expect(cite).to_have_text("[1]")
    assert await cite.get_attribute("href") == streamed[0][1][0][0]
    await screenshot(page, "history-restored")

    # A thread that is gone starts a new conversation quietly.
    thread = await thread_of(page)
    assert (await api.client().delete(f"/threads/{thread}")).status_code == 204
    await page.reload()
    await expect(widget.locator(".tw-input")).to_be_visible()
    await page.wait_for_function("!Object.keys(localStorage).some(k => k.startsWith('tutor-widget:thread:'))")
    await expect(widget.locator(".tw-msg")).to_have_count(0)
    _, answer = await ask(page, widget, "What is a node?")
    assert await thread_of(page) != thread


MARKDOWN = """Topics carry messages [1]. Here is **how** to *see* them with `ros2 topic list`:

1. Start a node
2. Run the tool:
   - `ros2 topic echo /chatter`
   - read [the guide](https://docs.ros.org/en/rolling/) or [this](javascript:alert(1))

| command | shows |
|---|---|
| `ros2 node list` | nodes |
| `ros2 topic list` | topics |

<img src=x onerror="window.__pwned=1"> and [click](javascript:window.__pwned=2)

```html
<b>bold?</b><script>window.__pwned=3</script>
```

> A quote with a link https://example.org/page."""
UNTERMINATED = "Start with this:\n\n```python\nimport rclpy\nrclpy.init()  # no closing fence"


async def test_answers_render_as_safe_markdown(make_api: Any, fake_openai: Any, page: Page) -> None:
    fake_openai.responder = responder(MARKDOWN)
    api = await make_api(make_chat_model(fake_openai))
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    widget = await open_panel(page, api)
    _, answer = await ask(page, widget, "How do I see topics?")
    text = answer.locator(".tw-text")
    await expect(text.locator("strong")).to_have_text("how")
    await expect(text.locator("em").first).to_have_text("see")
    await expect(text.locator("ol > li")).to_have_count(2)
    await expect(text.locator("ol > li ul > li")).to_have_count(2)
    await expect(text.locator("table th")).to_have_text(["command", "shows"])
    await expect(text.locator("table tbody tr")).to_have_count(2)
    await expect(text.locator("blockquote a")).to_have_attribute("href", "https://example.org/page")
    guide = text.locator("a", has_text="the guide")
    await expect(guide).to_have_attribute("href", "https://docs.ros.org/en/rolling/")
    assert await guide.get_attribute("rel") == "noopener noreferrer"
    # No script-capable link, no element from the model's HTML: it shows as text.
    hrefs = await text.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert all(href.startswith(("http://", "https://")) for href in hrefs), hrefs
    await expect(text).to_contain_text('<img src=x onerror="window.__pwned=1">')
    assert await text.locator("img, script, b").count() == 0
    code = text.locator(".tw-code code")
    await expect(code).to_have_text("<b>bold?</b><script>window.__pwned=3</script>")
    assert await text.locator(".tw-code").get_attribute("dir") == "ltr"
    # [1] links to source 1.
    first_source = (await source_links(answer))[0][0]
    await expect(text.locator("a.tw-cite")).to_have_attribute("href", first_source)
    await text.locator(".tw-copy").click()
    await expect(text.locator(".tw-copy")).to_have_text("Copied")
    assert await page.evaluate("navigator.clipboard.readText()") == await code.text_content()
    await screenshot(page, "markdown")

    fake_openai.responder = responder(UNTERMINATED)
    _, answer = await ask(page, widget, "How do I start?")
    code = answer.locator(".tw-code code")
    await expect(code).to_have_text("import rclpy\nrclpy.init()  # no closing fence")
    assert await page.evaluate("window.__pwned") is None


async def test_personalize_and_translate_an_answer_and_a_selection(
    make_api: Any, fake_openai: Any, page: Page
) -> None:
    fake_openai.responder = responder()
    api = await make_api(make_chat_model(fake_openai))
    await api.client().put("/profile", json=PROFILE, headers=api.headers("ana"))
    widget = await open_panel(page, api, "ana")
    await ask(page, widget, "What does a ROS 2 topic do?")
    first = widget.locator(".tw-assistant").first
    answer_text = "Topics carry streams of messages [1]."

    body = await click_posting(page, first.locator(".tw-explain-answer"))
    assert body["mode"] == "personalize" and body["content"] == answer_text and body["thread_id"]
    explained = await finished(widget)
    await expect(explained).to_have_attribute("data-route", "personalize")
    await expect(explained.locator(".tw-text strong")).to_have_text("hands-on")

    body = await click_posting(page, first.locator(".tw-urdu-answer"))
    assert body == {**body, "mode": "translate", "content": answer_text, "target_language": "ur"}
    urdu = await finished(widget)
    await expect(urdu).to_have_attribute("dir", "rtl")
    await expect(urdu.locator(".tw-text")).to_have_text(URDU)

    passage = "A ROS 2 node is a process that performs computation."
    await select_passage(page, passage)
    body = await click_posting(page, widget.locator(".tw-explain-selection"))
    assert body["mode"] == "personalize" and body["selected_text"] == passage
    await expect(await finished(widget)).to_have_attribute("data-route", "personalize")
    await select_passage(page, passage)
    body = await click_posting(page, widget.locator(".tw-translate-selection"))
    assert (body["mode"], body["selected_text"], body["target_language"]) == ("translate", passage, "ur")
    await expect(await finished(widget)).to_have_attribute("lang", "ur")
    await screenshot(page, "personalize-translate")


async def test_a_chapter_translated_to_urdu_streams_right_to_left(
    make_api: Any, fake_openai: Any, page: Page
) -> None:
    chapter = URDU + "\n\n```bash\nros2 node list\n```\n\n" + " ".join(["مزید"] * 40)
    fake_openai.responder = responder(translated=chapter, rewrite_delay=0.05)
    api = await make_api(make_chat_model(fake_openai))
    widget = await open_panel(page, api, "ana")
    _, _ = await ask(page, widget, "What does a ROS 2 topic do?")
    old_thread = await thread_of(page)

    body = await click_posting(page, widget.locator(".tw-translate-page"))
    assert body["mode"] == "translate" and body["page"] == PAGE and body["target_language"] == "ur"
    assert "thread_id" not in body  # a chapter rewrite is a conversation of its own
    answer = widget.locator(".tw-assistant").last
    await expect(answer.locator(".tw-text")).to_contain_text("نوڈ")
    assert await answer.get_attribute("data-state") == "streaming"
    await expect(answer).to_have_attribute("dir", "rtl")
    await expect(answer).to_have_attribute("lang", "ur")
    font = await answer.locator(".tw-text").evaluate("node => getComputedStyle(node).fontFamily")
    assert "Noto Nastaliq Urdu" in font and "serif" in font
    await screenshot(page, "chapter-urdu-streaming")

    await finished(widget)
    code = answer.locator(".tw-code").first
    assert await code.evaluate("node => getComputedStyle(node).direction") == "ltr"
    await expect(code.locator("code")).to_contain_text("ros2 node list")
    assert await thread_of(page) != old_thread
    await expect(widget.locator(".tw-msg")).to_have_count(2)  # the panel shows the new conversation
    await screenshot(page, "chapter-urdu-done")


async def test_profile_form_then_personalize_the_chapter(make_api: Any, fake_openai: Any, page: Page) -> None:
    fake_openai.responder = responder()
    api = await make_api(make_chat_model(fake_openai))
    widget = await open_panel(page, api, "bea")
    await widget.locator(".tw-profile-toggle").click()
    form = widget.locator(".tw-profile")
    await expect(form.locator("select")).to_have_count(8)
    await expect(form.locator("select, input")).to_have_count(9)
    # The allowed values come from the server's schema.
    schema = (await api.client().get("/openapi.json")).json()["components"]["schemas"]
    options = await form.locator("select[name=age_range] option").evaluate_all("os => os.map(o => o.value)")
    assert options == ["", *schema["AgeRange"]["enum"]]
    await form.locator("select[name=software_background]").select_option("beginner")
    await form.locator("select[name=learning_mode]").select_option("hands_on")
    await form.locator("input[name=preferred_language]").fill("ur")
    await screenshot(page, "profile-form")
    await form.locator(".tw-save-profile").click()
    await expect(widget.locator(".tw-drawer .tw-status").last).to_have_text("Profile saved.")
    saved = (await api.client().get("/profile", headers=api.headers("bea"))).json()
    chosen = {"software_background": "beginner", "learning_mode": "hands_on", "preferred_language": "ur"}
    assert saved == {**dict.fromkeys(saved), **chosen}

    body = await click_posting(page, widget.locator(".tw-personalize-page"))
    assert body["mode"] == "personalize" and body["page"] == PAGE
    answer = await finished(widget)
    await expect(answer).to_have_attribute("data-route", "personalize")
    # The profile reached the model.
    prompt = next(r for r in fake_openai.chat_requests if "You adapt passages" in r.system_prompt)
    assert "hands-on" in prompt.last_user_text


async def test_feedback_on_an_answer(make_api: Any, fake_openai: Any, page: Page) -> None:
    fake_openai.responder = responder()
    api = await make_api(make_chat_model(fake_openai))
    widget = await open_panel(page, api, "cy")
    _, answer = await ask(page, widget, "What does a ROS 2 topic do?")
    up = answer.locator(".tw-up")
    await up.click()
    await expect(up).to_have_attribute("aria-pressed", "true")
    await expect(answer.locator(".tw-given")).to_have_text("Thanks for the feedback.")
    await answer.locator(".tw-comment input").fill("Clear, thanks")
    await answer.locator(".tw-comment input").press("Enter")
    await expect(answer.locator(".tw-given")).to_have_text("Thanks, comment sent.")
    thread, seq = await thread_of(page), int(await answer.get_attribute("data-seq") or 0)
    assert [m["role"] for m in await stored(api, thread, "cy") if m["seq"] == seq] == ["assistant"]
    async with api.context.db.pool.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT rating, comment FROM feedback WHERE thread_id = %s AND seq = %s", (thread, seq)
            )
        ).fetchone()
    assert row == {"rating": 1, "comment": "Clear, thanks"}
    await screenshot(page, "feedback")

    # Restored answers can be rated too.
    await page.reload()
    await expect(widget.locator(".tw-assistant .tw-up")).to_have_count(1)


async def test_conversations_reopen_rename_delete(make_api: Any, fake_openai: Any, page: Page) -> None:
    fake_openai.responder = responder()
    api = await make_api(make_chat_model(fake_openai))
    widget = await open_panel(page, api, "dee")
    await ask(page, widget, "What does a ROS 2 topic do?")
    first = await thread_of(page)
    await widget.locator(".tw-new").click()
    await ask(page, widget, "What is a node?")
    second = await thread_of(page)

    await widget.locator(".tw-threads-toggle").click()
    rows = widget.locator(".tw-threads li")
    await expect(rows).to_have_count(2)
    await expect(rows.first).to_have_attribute("aria-current", "true")  # most recent first
    await screenshot(page, "conversations")
    # Rename by keyboard.
    await rows.nth(1).locator(".tw-rename").click()
    await page.keyboard.type("Topics, renamed")
    await page.keyboard.press("Enter")
    await expect(rows.nth(1).locator(".tw-open")).to_have_text("Topics, renamed")
    listed = (await api.client().get("/threads", headers=api.headers("dee"))).json()
    assert {t["thread_id"]: t["title"] for t in listed}[first] == "Topics, renamed"
    # Reopen the first conversation.
    await rows.nth(1).locator(".tw-open").click()
    await expect(widget.locator(".tw-user")).to_have_text(["What does a ROS 2 topic do?"])
    assert await thread_of(page) == first
    # Delete the other one.
    await widget.locator(".tw-threads-toggle").click()
    await widget.locator(f".tw-threads li[data-thread='{second}'] .tw-delete").click()
    await expect(rows).to_have_count(1)
    assert (await api.client().get(f"/threads/{second}", headers=api.headers("dee"))).status_code == 404


async def server_enforces(api: Any, user: str, body: dict[str, Any], status: int) -> bool:
    """Whether /chat/stream answers `body` from `user` with `status` (the rewrite policy, issue h3)."""
    headers = api.headers(user)
    async with (
        httpx.AsyncClient(base_url=api.url, timeout=30) as client,
        client.stream("POST", "/chat/stream", json=body, headers=headers) as response,
    ):
        return response.status_code == status


async def test_errors_read_as_sentences(make_api: Any, page: Page) -> None:
    # A tutor that requires sign-in, met anonymously: a real 401.
    api = await make_api(allow_anonymous=False)
    widget = await open_panel(page, api)
    _, answer = await ask(page, widget, "What is a node?", "error")
    await expect(answer.locator(".tw-error-message")).to_have_text("Sign in to use this.")
    # An expired token.
    await page.evaluate("sessionStorage.setItem('tutor-demo-token', 'not-a-token')")
    _, answer = await ask(page, widget, "What is a node?", "error")
    await expect(answer.locator(".tw-error-message")).to_have_text(
        "Your session has expired; please sign in again."
    )
    # No chat model: the server's own sentence, whether as a 503 or as an error event.
    await page.evaluate(f"sessionStorage.setItem('tutor-demo-token', {api.token('eve')!r})")
    await widget.locator(".tw-translate-page").click()
    answer = await finished(widget, "error")
    message = await answer.locator(".tw-error-message").text_content() or ""
    assert "needs a chat model" in message and "needs_chat_model" not in message
    await screenshot(page, "error-no-model")


async def test_missing_profile_and_spent_quota_read_as_sentences(
    make_api: Any, fake_openai: Any, page: Page
) -> None:
    fake_openai.responder = responder()
    api = await make_api(make_chat_model(fake_openai), personalize_daily_quota=1)
    turn = {"message": "Personalize this chapter", "mode": "personalize", "page": PAGE}
    if not await server_enforces(api, "fay", turn, 409):
        pytest.skip("/chat/stream does not yet require a profile for personalize (the rewrite policy)")
    widget = await open_panel(page, api, "fay")
    await widget.locator(".tw-personalize-page").click()
    answer = await finished(widget, "error")
    await expect(answer.locator(".tw-error-message")).to_contain_text("set up your learner profile")
    await answer.locator(".tw-set-profile").click()
    await expect(widget.locator(".tw-profile select")).to_have_count(8)
    await screenshot(page, "error-profile-required")

    await api.client().put("/profile", json=PROFILE, headers=api.headers("fay"))
    await widget.locator(".tw-personalize-page").click()
    await finished(widget)
    await widget.locator(".tw-assistant .tw-explain-answer").last.click()  # a second one: over quota
    answer = await finished(widget, "error")
    message = await answer.locator(".tw-error-message").text_content() or ""
    assert message.startswith("You have used today's allowance for this; you can do it again in "), message
    assert "hour" in message or "minute" in message
    assert "quota" not in message and "429" not in message


async def test_keyboard_alone_and_axe(make_api: Any, fake_openai: Any, page: Page, axe_script: Path) -> None:
    fake_openai.responder = responder()
    api = await make_api(make_chat_model(fake_openai))
    widget = await open_panel(page, api, "gus")
    # Minimize and reopen by keyboard.
    await widget.locator(".tw-close").focus()
    await page.keyboard.press("Enter")
    launcher = widget.locator(".tw-launcher")
    await expect(launcher).to_be_focused()
    await expect(launcher).to_have_attribute("aria-expanded", "false")
    await page.keyboard.press("Enter")
    await expect(widget.locator(".tw-input")).to_be_focused()
    # Type, send, stop.
    slow = responder()

    def slowly(request: CapturedRequest) -> Reply | None:
        if "patient tutor for a textbook" in request.system_prompt:
            return Text(" ".join(["slow"] * 200), token_delay=0.05)
        return slow(request)

    fake_openai.responder = slowly
    await page.keyboard.type("What does a ROS 2 topic do?")
    await page.keyboard.press("Enter")
    await expect(widget.locator(".tw-assistant .tw-text").last).to_contain_text("slow")
    await page.keyboard.press("Escape")
    await finished(widget, "aborted")
    # A full answer, then Shift+Tab back from the input reaches its sources.
    fake_openai.responder = responder()
    await page.keyboard.type("What does a ROS 2 topic do?")
    await page.keyboard.press("Enter")
    answer = await finished(widget)
    await expect(widget.locator("[aria-live=polite]")).to_contain_text("Topics carry streams")
    await expect(answer.locator(".tw-up")).to_be_visible()
    reached = []
    for _ in range(12):
        await page.keyboard.press("Shift+Tab")
        reached.append(
            await page.evaluate(
                "(e => e.getAttribute('aria-label') || e.textContent)(document.activeElement)"
            )
        )
    assert any(label.startswith("Source 1:") for label in reached), reached
    assert "Helpful" in reached and "Explain this answer for me" in reached

    violations = await axe_violations(page, axe_script)
    await widget.locator(".tw-profile-toggle").click()
    await expect(widget.locator(".tw-profile select")).to_have_count(8)
    violations += await axe_violations(page, axe_script)
    await widget.locator(".tw-threads-toggle").click()
    await expect(widget.locator(".tw-threads li")).to_have_count(1)
    violations += await axe_violations(page, axe_script)
    await screenshot(page, "keyboard-axe")
    assert not violations, violations


async def test_streaming_markdown_does_not_flicker(make_api: Any, fake_openai: Any, page: Page) -> None:
    """While an answer streams, its text only grows: no frame shows it emptied or shrunk."""

    def slowly(request: CapturedRequest) -> Reply | None:
        if "patient tutor for a textbook" in request.system_prompt:
            return Text("Steps:\n\n- one **two** three\n- four five six seven [1].", token_delay=0.05)
        return tutor_responder()(request)

    fake_openai.responder = slowly
    api = await make_api(make_chat_model(fake_openai))
    widget = await open_panel(page, api)
    await page.evaluate(
        """() => { window.__lengths = [];
            new MutationObserver(() => {
              const t = document.querySelector('.tw-assistant:last-child .tw-text');
              if (t) window.__lengths.push(t.textContent.length); })
            .observe(document.querySelector('.tw-log'),
                     {childList: true, subtree: true, characterData: true}); }"""
    )
    await ask(page, widget, "What are the steps?")
    lengths: list[int] = await page.evaluate("window.__lengths")
    assert len(lengths) >= 3
    assert all(later >= earlier for earlier, later in itertools.pairwise(lengths)), lengths
    await asyncio.sleep(0)
    await expect(widget.locator(".tw-assistant .tw-text li")).to_have_count(2, timeout=TIMEOUT_MS)


async def test_a_busy_tutor_reads_as_a_sentence(make_api: Any, fake_openai: Any, page: Page) -> None:
    # One place, no queue: while one answer streams, the widget's question gets 503 server_busy.
    fake_openai.responder = slow_answers(3.0)
    api = await make_api(make_chat_model(fake_openai), turn_concurrency=1, turn_queue=0)
    started = asyncio.Event()
    question = {"message": "What does a ROS 2 topic do?", "mode": "ask"}
    running = asyncio.create_task(stream_until_started(api.client(), started, json=question))
    await asyncio.wait_for(started.wait(), 10)
    widget = await open_panel(page, api)
    _, answer = await ask(page, widget, "What is a node?", "error")
    message = await answer.locator(".tw-error-message").text_content() or ""
    assert message.startswith("The tutor is answering many questions right now; please ask again in "), (
        message
    )
    assert "second" in message and "server_busy" not in message and "503" not in message
    await screenshot(page, "server-busy")
    assert await running == "done"
