"""Debian's Chromium driven by Playwright, and the chat page as a test sees it.

Playwright's own browser downloads are never used (``playwright install`` is not run): the
browser is ``/usr/bin/chromium`` from Debian (``.ci/run`` installs it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, expect

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class ChatPage:
    """The page, with what it logged: console errors, uncaught exceptions, dialogs opened."""

    page: Page
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def open(self, url: str) -> ChatPage:
        self.page.goto(url)
        expect(self.page.locator("html[data-ready=true]")).to_have_count(1)
        return self

    def send(self, text: str) -> None:
        self.page.get_by_label("Message", exact=True).fill(text)
        self.page.get_by_label("Message", exact=True).press("Enter")

    @property
    def answers(self) -> Any:
        return self.page.locator(".message.assistant")

    @property
    def last_answer(self) -> Any:
        return self.answers.last

    def wait_until_idle(self, timeout: float = 30_000) -> None:
        """The answer has ended: Send is enabled again, Stop disabled."""
        expect(self.page.get_by_role("button", name="Send")).to_be_enabled(timeout=timeout)
        expect(self.page.get_by_role("button", name="Stop")).to_be_disabled()

    def assert_clean(self) -> None:
        assert self.console_errors == []
        assert self.page_errors == []
        assert self.dialogs == []


@contextmanager
def chat_page(browser: Browser, **context_options: Any) -> Iterator[ChatPage]:
    context = browser.new_context(**context_options)
    page = context.new_page()
    chat = ChatPage(page)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            chat.console_errors.append(message.text)

    def on_dialog(dialog: Dialog) -> None:
        chat.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("console", on_console)
    page.on("pageerror", lambda error: chat.page_errors.append(str(error)))
    page.on("dialog", on_dialog)
    try:
        yield chat
    finally:
        context.close()


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
