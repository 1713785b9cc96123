"""The chat page in real Chromium against a real server on the fake upstream (no mock).

Every test drives Debian's ``chromium`` through Playwright: the page loads the vendored AI Chat
Protocol client, streams from the backend over TCP, and the backend streams from the fake
upstream over TCP. Screenshots for the README are written by ``test_screenshots``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2
import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from chatbackend.app import create_app
from chatbackend.settings import load_settings
from loadtests.fake_upstream import WORDS, FakeUpstream
from tests.browser import CHROMIUM, LAUNCH_ARGS, chat_page, wait_for
from tests.databases import sqlite_url
from tests.servers import serve
from tests.test_api_keys import add_key

DOCS = Path(__file__).resolve().parent.parent / "docs"
UNTRUSTED = (
    "Here: <img src=x onerror=alert(1)> and [x](javascript:alert(1)) and "
    '<a href="javascript:alert(2)">y</a> <script>alert(3)</script>\n\n'
    "```python\nprint('safe')\n```"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def upstream(fake_upstream: FakeUpstream) -> FakeUpstream:
    fake_upstream.configure(tokens=8)
    return fake_upstream


def backend(upstream: FakeUpstream, **overrides: Any) -> Any:
    settings = load_settings(
        chat_provider="compatible",
        chat_base_url=upstream.base_url,
        chat_model="fake-model",
        chat_retry_backoff_seconds=0.01,
        **overrides,
    )
    return serve(create_app(settings))


def words(count: int) -> str:
    return " ".join(WORDS[i % len(WORDS)] for i in range(count))


def test_tokens_appear_while_the_upstream_is_still_sending(
    browser: Browser, upstream: FakeUpstream
) -> None:
    upstream.configure(tokens=20, itl=0.15)
    with backend(upstream) as url, chat_page(browser) as chat:
        chat.open(url).send("Tell me a story")
        expect(chat.last_answer.locator(".body")).to_contain_text("The quick")
        stats = upstream.snapshot()
        assert (stats["in_flight"], stats["completed"]) == (1, 0)
        assert words(20) not in chat.last_answer.inner_text()
        chat.wait_until_idle()
        expect(chat.last_answer.locator(".body")).to_have_text(words(20))
        assert upstream.snapshot()["completed"] == 1
        chat.assert_clean()


@pytest.mark.parametrize("how", ["button", "escape"])
def test_stop_aborts_the_request_and_the_upstream_stream(
    browser: Browser, upstream: FakeUpstream, how: str
) -> None:
    upstream.configure(tokens=200, itl=0.1)
    with backend(upstream) as url, chat_page(browser) as chat:
        chat.open(url).send("Tell me a long story")
        expect(chat.last_answer.locator(".body")).to_contain_text("quick")
        if how == "button":
            chat.page.get_by_role("button", name="Stop").click()
        else:
            chat.page.keyboard.press("Escape")
        assert wait_for(lambda: upstream.snapshot()["abandoned"] == 1)
        expect(chat.last_answer).to_contain_text("Stopped.")
        chat.wait_until_idle(timeout=5_000)
        assert upstream.snapshot()["completed"] == 0
        chat.assert_clean()


def test_untrusted_markdown_renders_as_text_and_runs_nothing(
    browser: Browser, upstream: FakeUpstream
) -> None:
    upstream.configure(answer=UNTRUSTED)
    with backend(upstream) as url, chat_page(browser) as chat:
        chat.open(url).send("Say something nasty")
        chat.wait_until_idle()
        body = chat.last_answer.locator(".body")
        expect(body).to_contain_text("<img src=x onerror=alert(1)>")
        expect(body).to_contain_text("<script>alert(3)</script>")
        assert body.locator("img, script, [onerror]").count() == 0
        assert body.locator("a[href^='javascript' i]").count() == 0
        expect(body.locator("pre code")).to_have_text("print('safe')")
        chat.page.wait_for_timeout(300)  # an onerror handler would have fired by now
        chat.assert_clean()


def test_an_error_mid_stream_is_shown_after_the_partial_answer(
    browser: Browser, upstream: FakeUpstream
) -> None:
    upstream.configure(tokens=20, fault="drop", drop_after=3)
    with backend(upstream) as url, chat_page(browser) as chat:
        chat.open(url).send("Tell me a story")
        chat.wait_until_idle()
        expect(chat.last_answer.locator(".body")).to_have_text(words(3))
        error = chat.last_answer.get_by_role("alert")
        expect(error).to_contain_text("upstream_incomplete")
        assert chat.page_errors == [] and chat.dialogs == []


def test_rate_limit_shows_the_retry_hint_and_keeps_the_message(
    browser: Browser, upstream: FakeUpstream
) -> None:
    # The upstream asks for a longer wait than the retry budget: the backend answers 429 at once.
    upstream.configure(fault="rate_limit", retry_after=30)
    with backend(upstream) as url, chat_page(browser) as chat:
        chat.open(url).send("Hello?")
        chat.wait_until_idle()
        error = chat.last_answer.get_by_role("alert")
        expect(error).to_contain_text("429 rate_limited")
        expect(error).to_contain_text("Try again in 30 s.")
        expect(chat.page.get_by_label("Message", exact=True)).to_have_value("Hello?")


def test_overload_shows_503_with_its_retry_hint(browser: Browser, upstream: FakeUpstream) -> None:
    upstream.configure(tokens=100, itl=0.1)
    with backend(upstream, chat_max_streams=1) as url, chat_page(browser) as chat:
        chat.open(url)
        holding = threading.Event()
        release = threading.Event()

        def hold_the_only_slot() -> None:
            body = {"messages": [{"role": "user", "content": "long"}]}
            with httpx2.stream("POST", f"{url}/chat/stream", json=body, timeout=30) as response:
                lines = response.iter_lines()  # kept: a dropped iterator closes the stream
                next(lines)
                holding.set()
                release.wait(20)

        holder = threading.Thread(target=hold_the_only_slot)
        holder.start()
        try:
            assert holding.wait(10)
            chat.send("Anyone there?")
            chat.wait_until_idle()
            error = chat.last_answer.get_by_role("alert")
            expect(error).to_contain_text("503 overloaded")
            expect(error).to_contain_text("Try again in 1 s.")
        finally:
            release.set()
            holder.join(10)


def test_keyboard_enter_sends_and_shift_enter_adds_a_line(
    browser: Browser, upstream: FakeUpstream
) -> None:
    with backend(upstream) as url, chat_page(browser) as chat:
        chat.open(url)
        box = chat.page.get_by_label("Message", exact=True)
        box.focus()
        chat.page.keyboard.type("first line")
        chat.page.keyboard.press("Shift+Enter")
        chat.page.keyboard.type("second line")
        assert chat.answers.count() == 0
        chat.page.keyboard.press("Enter")
        chat.wait_until_idle()
        expect(chat.page.locator(".message.user .body")).to_have_text("first line\nsecond line")
        expect(chat.last_answer.locator(".body")).to_have_text(words(8))
        expect(box).to_be_focused()
        chat.assert_clean()


def test_reload_restores_the_conversation(browser: Browser, upstream: FakeUpstream) -> None:
    with backend(upstream) as url, chat_page(browser) as chat:
        chat.open(url).send("First question")
        chat.wait_until_idle()
        expect(chat.page).to_have_url(re.compile(r"#c="))
        chat.page.reload()
        expect(chat.page.locator("html[data-ready=true]")).to_have_count(1)
        expect(chat.page.locator(".message.user .body")).to_have_text("First question")
        expect(chat.last_answer.locator(".body")).to_have_text(words(8))
        listed = chat.page.locator("#conversations li")
        expect(listed).to_have_count(1)
        expect(listed.first).to_contain_text("First question")
        expect(listed.first).to_have_attribute("aria-current", "true")
        chat.send("Second question")
        chat.wait_until_idle()
        chat.page.get_by_role("button", name="New chat").click()
        expect(chat.page.locator(".message")).to_have_count(0)
        chat.page.get_by_role("button", name="Open First question").click()
        expect(chat.page.locator(".message.user .body")).to_have_text(
            ["First question", "Second question"]
        )
        chat.assert_clean()


def test_reload_shows_the_stored_tool_calls_as_they_streamed(
    browser: Browser, upstream: FakeUpstream
) -> None:
    upstream.configure(tool_calls="calculate,get_current_time", tokens=3)
    details = ".message.assistant details"
    with backend(upstream) as url, chat_page(browser) as chat:
        chat.open(url).send("What is 17 times 3 over 4, and the time in Paris?")
        chat.wait_until_idle()
        summaries = [
            "Tool call: calculate",
            "Tool call: get_current_time",
            "Tool result: calculate",
            "Tool result: get_current_time",
        ]
        expect(chat.page.locator(f"{details} summary")).to_have_text(summaries)
        streamed = chat.page.locator(f"{details} pre").all_text_contents()
        answer = chat.last_answer.locator(".body").inner_text()
        assert streamed[2] == "12.75" and answer.startswith("Results: 12.75 | ")
        chat.page.reload()
        expect(chat.page.locator("html[data-ready=true]")).to_have_count(1)
        # One answer bubble, as while streaming: the calls, their results, then the text.
        expect(chat.answers).to_have_count(1)
        expect(chat.page.locator(f"{details} summary")).to_have_text(summaries)
        expect(chat.page.locator(f"{details} pre")).to_have_text(streamed)
        expect(chat.last_answer.locator(".body")).to_have_text(answer)
        expect(chat.last_answer.locator(".meta")).to_have_count(0)
        chat.assert_clean()


def test_a_grounded_answer_shows_its_sources_collapsed_and_as_text(
    browser: Browser, upstream: FakeUpstream
) -> None:
    """ "Answer from my documents" sends ``context.overrides.retrieval``; the sources line comes
    first and is shown as one collapsed block, its untrusted text as text."""
    document = {
        "title": "Fox <img src=x onerror=alert(1)> habits",
        "source": "notes/foxes.md",
        "text": "Red foxes sleep for most of the day and hunt at dusk. A fox den is an earth.",
    }
    with backend(upstream) as url, chat_page(browser) as chat:
        created = httpx2.post(f"{url}/documents", json=document, timeout=120)
        assert created.status_code == 201, created.text
        chat.open(url)
        toggle = chat.page.get_by_label("Answer from my documents")
        expect(toggle).to_be_visible()
        toggle.check()
        chat.send("When do foxes hunt?")
        chat.wait_until_idle()
        sources = chat.last_answer.locator("details")
        expect(sources).to_have_count(1)
        expect(sources.locator("summary")).to_have_text("Sources (1)")
        expect(sources).not_to_have_attribute("open", re.compile(".*"))  # collapsed
        shown = sources.locator("pre").text_content() or ""
        assert document["title"] in shown and document["source"] in shown
        assert "hunt at dusk" in shown
        expect(chat.last_answer.locator("img")).to_have_count(0)
        expect(chat.last_answer.locator(".body")).to_have_text(words(8))
        # Unchecked, the next turn is a plain one: no sources line.
        toggle.uncheck()
        chat.send("And where do they live?")
        chat.wait_until_idle()
        expect(chat.last_answer.locator("details")).to_have_count(0)
        chat.assert_clean()


def test_rename_and_delete_a_conversation(browser: Browser, upstream: FakeUpstream) -> None:
    with backend(upstream) as url, chat_page(browser) as chat:
        chat.open(url).send("Old title")
        chat.wait_until_idle()
        conversation_id = httpx2.get(f"{url}/conversations").json()["data"][0]["id"]
        chat.page.get_by_role("button", name="Rename Old title").click()
        chat.page.get_by_label("New title (Enter saves, Escape cancels)").fill("New title")
        chat.page.keyboard.press("Enter")
        expect(chat.page.get_by_role("button", name="Open New title")).to_be_visible()
        assert httpx2.get(f"{url}/conversations/{conversation_id}").json()["title"] == "New title"
        chat.page.get_by_role("button", name="Delete New title").click()
        chat.page.get_by_role("dialog").get_by_role("button", name="Delete").click()
        expect(chat.page.locator("#conversations li")).to_have_count(0)
        expect(chat.page.locator(".message")).to_have_count(0)
        assert httpx2.get(f"{url}/conversations/{conversation_id}").status_code == 404
        chat.page.reload()
        expect(chat.page.locator("#conversations li")).to_have_count(0)
        chat.assert_clean()


def test_api_key_is_asked_for_and_kept_in_session_storage_only(
    browser: Browser, upstream: FakeUpstream, tmp_path: Path
) -> None:
    database_url = sqlite_url(tmp_path)
    with ThreadPoolExecutor(1) as thread:  # Playwright's event loop runs in this thread
        key = thread.submit(add_key, database_url, "page").result().key
    settings = load_settings(
        chat_provider="compatible",
        chat_base_url=upstream.base_url,
        chat_model="fake-model",
        auth_mode="api-key",
        database_url=database_url,
    )
    sent: list[str | None] = []
    with serve(create_app(settings)) as url, chat_page(browser) as chat:
        chat.page.on(
            "request",
            lambda r: (
                sent.append(r.headers.get("authorization")) if "/conversations" in r.url else None
            ),
        )
        chat.open(url)  # the conversation list answers 401: the page asks for a key
        dialog = chat.page.get_by_role("dialog", name="API key")
        expect(dialog).to_be_visible()
        dialog.get_by_label("Key").fill(key)
        dialog.get_by_role("button", name="Use key").click()
        expect(dialog).to_be_hidden()
        chat.send("Hello")
        chat.wait_until_idle()
        expect(chat.last_answer.locator(".body")).to_have_text(words(8))
        expect(chat.page.locator("#conversations li")).to_have_count(1)
        assert sent[0] is None
        assert set(sent[1:]) == {f"Bearer {key}"}
        storage = chat.page.evaluate(
            "() => [sessionStorage.getItem('chatbackend.apiKey'), localStorage.length,"
            " document.cookie]"
        )
        assert storage == [key, 0, ""]
        assert chat.page_errors == [] and chat.dialogs == []
    with serve(create_app(settings)) as url, chat_page(browser) as fresh:
        fresh.open(url)
        assert fresh.page.evaluate("() => sessionStorage.length") == 0


def test_the_page_is_served_with_a_strict_csp(upstream: FakeUpstream) -> None:
    with backend(upstream) as url:
        page = httpx2.get(f"{url}/")
        script = httpx2.get(f"{url}/ui/vendor/ai-chat-protocol.js")
    policy = dict(
        part.strip().split(" ", 1) for part in page.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert "unsafe" not in page.headers["content-security-policy"]
    assert page.headers["content-type"].startswith("text/html")
    assert "javascript" in script.headers["content-type"]
    assert script.headers["x-content-type-options"] == "nosniff"


def test_the_csp_is_enforced_in_the_browser(browser: Browser, upstream: FakeUpstream) -> None:
    with backend(upstream) as url, chat_page(browser) as chat:
        chat.open(url)
        violations = chat.page.evaluate(
            """() => new Promise((resolve) => {
                const seen = [];
                document.addEventListener(
                    'securitypolicyviolation', (e) => seen.push(e.violatedDirective));
                const s = document.createElement('script');
                s.textContent = 'window.inlineRan = true';
                document.body.append(s);
                setTimeout(() => resolve({seen, ran: window.inlineRan === true}), 200);
            })"""
        )
        assert violations == {"seen": ["script-src-elem"], "ran": False}


def test_embedded_model_gives_a_real_answer(browser: Browser) -> None:
    with serve(create_app(load_settings())) as url, chat_page(browser) as chat:
        chat.open(url).send("What is the capital of France? Answer in one sentence.")
        chat.wait_until_idle(timeout=90_000)
        answer = chat.last_answer.locator(".body").inner_text()
        assert len(answer.split()) >= 2
        assert chat.last_answer.get_by_role("alert").count() == 0
        chat.assert_clean()


SCREENSHOT_ANSWER = (
    "Here is a **streamed** answer with a code block:\n\n"
    "```python\nasync with service.answer(generation) as answer:\n"
    "    async for delta in answer:\n        print(delta)\n```\n\n"
    "- rendered as Markdown\n- sanitised with DOMPurify\n\n"
    "Raw HTML such as <b onclick=x>this</b> stays text."
)


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("light", {"color_scheme": "light", "viewport": {"width": 1100, "height": 700}}),
        ("dark", {"color_scheme": "dark", "viewport": {"width": 1100, "height": 700}}),
        (
            "phone",
            {
                "color_scheme": "light",
                "viewport": {"width": 390, "height": 780},
                "device_scale_factor": 2,
                "is_mobile": True,
                "has_touch": True,
            },
        ),
    ],
)
def test_screenshots(
    browser: Browser, upstream: FakeUpstream, name: str, options: dict[str, Any]
) -> None:
    upstream.configure(answer=SCREENSHOT_ANSWER)
    with backend(upstream) as url, chat_page(browser, **options) as chat:
        chat.open(url).send("Show me what you can render")
        chat.wait_until_idle()
        expect(chat.last_answer.locator("pre code")).to_be_visible()
        width = chat.page.evaluate("document.documentElement.scrollWidth")
        assert width <= options["viewport"]["width"]  # nothing overflows sideways
        DOCS.mkdir(exist_ok=True)
        chat.page.screenshot(path=str(DOCS / f"screenshot-{name}.png"))
        chat.assert_clean()
