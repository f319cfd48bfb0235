"""Chats in the companion window, in headless Chromium against a real ``zishu serve`` with tiny
models: regenerate and swipe a reply, edit and delete messages with Undo, reopen the Companion and
find the history, start a new chat and continue the old one; a reply with no words shows as such."""

from __future__ import annotations

import os

import pytest

from conftest import AppProcess, watched_page
from test_companion_web import Events

pytestmark = pytest.mark.browser

WAIT = 60_000  # ms


@pytest.fixture
def app(companion_home):
    env = {**os.environ, "ZISHU_HOME": str(companion_home)}
    env.pop("ZISHU_QUEUE", None)
    with AppProcess(env) as app:
        yield app


def companion(page):
    from playwright.sync_api import expect

    page.get_by_test_id("nav-companion").click()
    expect(page.get_by_test_id("companion-status")).to_contain_text("Mei is here", timeout=WAIT)


def send(page, text: str) -> None:
    page.get_by_test_id("message").fill(text)
    page.get_by_test_id("send").click()


def test_a_chat_is_regenerated_swiped_edited_kept_and_continued(browser, app, tmp_path):
    from playwright.sync_api import expect

    with watched_page(browser, app.login_url) as page:
        companion(page)
        send(page, "My name is Lin.")
        replies = page.get_by_test_id("message-assistant")
        reply = replies.nth(1)
        expect(reply.locator(".message-text")).to_have_text("Hugs, cat.", timeout=WAIT)
        expect(reply.get_by_test_id("swipe-count")).to_have_attribute("data-count", "1/1")
        reply.get_by_test_id("regenerate").click()
        expect(reply.get_by_test_id("swipe-count")).to_have_attribute("data-count", "2/2", timeout=WAIT)
        expect(replies).to_have_count(2)  # the new alternative replaced the reply in place
        reply.get_by_test_id("swipe-left").click()
        expect(reply.get_by_test_id("swipe-count")).to_have_attribute("data-count", "1/2")
        expect(reply.get_by_test_id("swipe-right")).to_be_enabled()

        mine = page.get_by_test_id("message-user")
        mine.get_by_test_id("edit-message").click()
        page.get_by_test_id("message-input").fill("My name is Wei.")
        page.get_by_test_id("message-input").press("Enter")
        expect(mine.locator(".message-text")).to_have_text("My name is Wei.")
        expect(page.get_by_test_id("memory").locator(".memory-text")).to_have_text(["My name is Wei"])
        page.get_by_test_id("undo").click()
        expect(mine.locator(".message-text")).to_have_text("My name is Lin.")

        reply.get_by_test_id("delete-message").click()
        expect(reply).to_be_hidden()
        page.get_by_test_id("undo").last.click()
        expect(reply).to_be_visible()
        page.screenshot(path=str(tmp_path / "chat.png"), full_page=True)

        # reopening the Companion continues the chat, with its history and the chosen alternative
        page.reload()
        expect(page.get_by_test_id("companion-status")).to_contain_text("Mei is here", timeout=WAIT)
        expect(page.get_by_test_id("message-user").locator(".message-text")).to_have_text(["My name is Lin."])
        expect(replies.nth(1).get_by_test_id("swipe-count")).to_have_attribute("data-count", "1/2")
        expect(page.get_by_test_id("chat-select").locator("option")).to_have_count(1)

        page.get_by_test_id("new-chat").click()
        expect(page.get_by_test_id("companion-status")).to_contain_text("Mei is here", timeout=WAIT)
        expect(page.get_by_test_id("message-user")).to_have_count(0)
        options = page.get_by_test_id("chat-select").locator("option")
        expect(options).to_have_count(2)
        old = options.nth(1).get_attribute("value")
        page.get_by_test_id("chat-select").select_option(old)
        page.get_by_test_id("continue-chat").click()
        expect(page.get_by_test_id("companion-status")).to_contain_text("Mei is here", timeout=WAIT)
        expect(page.get_by_test_id("message-user").locator(".message-text")).to_have_text(["My name is Lin."])


def test_a_reply_with_no_words_shows_as_no_words(browser, app):
    from playwright.sync_api import expect

    opened = app.api("POST", "/api/companion/sessions", json={"character": "acme/mei", "max_tokens": 5}, timeout=180)
    sid = opened.json()["id"]
    events = Events(app, sid)
    app.api("POST", f"/api/companion/sessions/{sid}/say", json={"text": "hello"})
    events.until("done")
    app.api("DELETE", f"/api/companion/sessions/{sid}")
    with watched_page(browser, app.login_url) as page:
        companion(page)
        reply = page.get_by_test_id("message-assistant").nth(1)
        expect(reply.locator(".message-text")).to_have_text("(no words)")
        expect(reply).to_have_class("message assistant no-words")
