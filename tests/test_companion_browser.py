"""The companion panel in headless Chromium against a real ``zishu serve`` with tiny models: a typed
message, the reply streaming in, its emotion reaching the avatar, the memory panel showing what was
injected, and editing memory with undo."""

from __future__ import annotations

import os

import pytest

from conftest import AppProcess, watched_page

pytestmark = pytest.mark.browser

WAIT = 60_000  # ms


@pytest.fixture
def app(companion_home):
    env = {**os.environ, "ZISHU_HOME": str(companion_home)}
    env.pop("ZISHU_QUEUE", None)
    with AppProcess(env) as app:
        yield app


@pytest.fixture
def page(browser, app):
    from playwright.sync_api import expect

    with watched_page(browser, app.login_url) as page:
        page.get_by_test_id("nav-companion").click()
        expect(page.get_by_test_id("companion-status")).to_contain_text("Mei is here", timeout=WAIT)
        yield page


def send(page, text: str) -> None:
    page.get_by_test_id("message").fill(text)
    page.get_by_test_id("send").click()


def test_a_typed_message_streams_a_reply_that_moves_the_avatar_and_memory(page):
    from playwright.sync_api import expect

    assert page.get_by_test_id("message-assistant").first.text_content() == "Hello! I'm Mei."  # the greeting
    avatar = page.get_by_test_id("avatar")
    assert avatar.get_attribute("data-expression") in ("", None)
    page.evaluate("""() => {  // every text the reply shows while it streams
        window.seen = [];
        new MutationObserver(() => {
            const replies = document.querySelectorAll('[data-testid="message-assistant"]');
            if (replies.length > 1) window.seen.push(replies[replies.length - 1].textContent);
        }).observe(document.querySelector('[data-testid="messages"]'),
                   {subtree: true, childList: true, characterData: true});
    }""")
    send(page, "My name is Lin.")
    reply = page.get_by_test_id("message-assistant").nth(1)
    expect(reply).to_have_text("Hugs, cat.", timeout=WAIT)
    expect(reply).not_to_have_class("streaming")
    seen = page.evaluate("window.seen")
    assert "Hugs" in seen and "Hugs, cat." in seen  # piece by piece, the emotion tag never shown
    assert not any("[joy]" in text for text in seen)
    expect(avatar).to_have_attribute("data-expression", "smile")  # the tag, through Mei's emotion map
    expect(page.get_by_test_id("memory")).to_have_text(["My name is LinPinEditForget"])
    expect(page.get_by_test_id("latency-table").locator("tr[data-stage='first_token']")).to_be_visible()

    send(page, "Do you remember me?")
    expect(page.get_by_test_id("message-assistant")).to_have_count(3, timeout=WAIT)
    expect(page.get_by_test_id("injected-memory")).to_contain_text(["My name is Lin"], timeout=WAIT)


def test_memories_are_edited_pinned_forgotten_and_deleted_with_undo(page):
    from playwright.sync_api import expect

    send(page, "I like green tea.")
    memory = page.get_by_test_id("memory")
    expect(memory).to_have_count(1, timeout=WAIT)
    memory.get_by_test_id("edit-memory").click()
    page.get_by_test_id("memory-input").fill("I like jasmine tea")
    page.get_by_test_id("memory-input").press("Enter")
    expect(memory.locator(".memory-text")).to_have_text("I like jasmine tea")
    memory.get_by_test_id("pin-memory").click()
    expect(memory.get_by_test_id("pin-memory")).to_have_text("Unpin")

    memory.get_by_test_id("forget-memory").click()
    expect(page.get_by_test_id("memory")).to_have_count(0)
    page.get_by_test_id("undo").click()
    expect(page.get_by_test_id("memory")).to_have_count(1)

    page.get_by_test_id("delete-memories").click()
    page.get_by_test_id("confirm-ok").click()
    expect(page.get_by_test_id("memory")).to_have_count(0)
    expect(page.get_by_test_id("messages").locator("li")).to_have_count(0)
    page.get_by_test_id("undo").click()
    expect(page.get_by_test_id("memory").locator(".memory-text")).to_have_text("I like jasmine tea")


def test_a_page_opened_while_every_event_stream_is_taken_reconnects_when_one_frees(browser, app):
    """Pages just left hold their streams for a few seconds; a page opened meanwhile is refused its
    stream (503) and tries again, so the conversation works once the server has noticed them gone."""
    from playwright.sync_api import expect

    held = [app.api("GET", "/api/jobs/stream", stream=True) for _ in range(16)]  # the server's limit
    try:
        assert [r.status_code for r in held] == [200] * 16
        assert app.api("GET", "/api/jobs/stream").status_code == 503
        with watched_page(browser, app.login_url) as page:
            page.get_by_test_id("nav-companion").click()
            expect(page.get_by_test_id("companion-status")).to_have_text("Reconnecting to Zishu…", timeout=WAIT)
            for r in held:  # the held pages go away
                r.close()
            held = []
            expect(page.get_by_test_id("companion-status")).to_contain_text("Mei is here", timeout=WAIT)
            send(page, "My name is Lin.")
            expect(page.get_by_test_id("message-assistant").nth(1)).to_have_text("Hugs, cat.", timeout=WAIT)
    finally:
        for r in held:
            r.close()
