"""How the companion looks, in headless Chromium against a real ``zishu serve`` with tiny models:
a greeting's emotion shown as a chip (never its raw ``[开心]`` tag) in the Companion window and on
the Characters cards, the still avatar's badge naming the emotion rather than the expression file
(``F05``) it maps to, and the latency table staying inside its card at 1280 and 900 px wide.
Screenshots of each go to ``ZISHU_SCREENSHOTS`` when it is set (to look at them)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import AppProcess, app_origin, install_resource, watched_page
from tiny_companion import MEI

pytestmark = pytest.mark.browser

WAIT = 60_000  # ms
# a character whose greeting starts with an emotion tag its map sends to a file-id expression
RIN = {**MEI, "greetings": ["[开心]你好，{{user}}！"], "emotions": {"开心": {"expression": "F05"}}}


@pytest.fixture
def app(companion_home):
    install_resource(companion_home, "acme/rin", RIN, kind="character", name="Rin")
    env = {**os.environ, "ZISHU_HOME": str(companion_home)}
    env.pop("ZISHU_QUEUE", None)
    with AppProcess(env) as app:
        yield app


def shot(page, name: str) -> None:
    folder = os.environ.get("ZISHU_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def latency_fits(page) -> dict:
    return page.evaluate(r"""() => {
        const table = document.querySelector('[data-testid="latency-table"]').closest('table');
        const card = table.closest('.card');
        // a word broken across lines (This / turn → "Thi s tur n") shows as a line taller than its words
        const broken = [...table.querySelectorAll('th, td')].filter((cell) => {
            const range = document.createRange();
            range.selectNodeContents(cell);
            const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
            return lines.size > cell.textContent.trim().split(/\s+/).length;
        }).map((cell) => cell.textContent);
        return {table: table.scrollWidth, card: card.clientWidth, broken,
                right: table.getBoundingClientRect().right, cardRight: card.getBoundingClientRect().right};
    }""")


def test_the_greeting_shows_its_emotion_and_the_latency_table_fits_its_card(browser, app):
    from playwright.sync_api import expect

    with watched_page(browser, app.login_url) as page:
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(app_origin(page) + "/companion?character=acme/rin")
        expect(page.get_by_test_id("companion-status")).to_contain_text("Rin is here", timeout=WAIT)
        greeting = page.get_by_test_id("message-assistant").first
        expect(greeting.get_by_test_id("greeting-emotion")).to_have_attribute("data-emotion", "happy")
        assert "[" not in greeting.text_content() and "你好，" in greeting.text_content()
        badge = page.get_by_test_id("avatar-badge")
        expect(badge).to_have_text("😊 happy")  # the emotion, not the F05 it maps to
        expect(page.get_by_test_id("avatar")).to_have_attribute("data-expression", "F05")

        page.get_by_test_id("message").fill("Hello there, a long message to fill the latency table.")
        page.get_by_test_id("send").click()
        expect(page.get_by_test_id("latency-table").locator("tr[data-stage='first_token']")).to_be_visible(
            timeout=WAIT)
        for width in (1280, 900):
            page.set_viewport_size({"width": width, "height": 900})
            page.wait_for_timeout(100)  # one layout
            size = latency_fits(page)
            assert size["table"] <= size["card"] and size["right"] <= size["cardRight"] + 0.5, (width, size)
            assert size["broken"] == [], (width, size)  # no word split inside a cell
            shot(page, f"companion-{width}")

        page.goto(app_origin(page) + "/characters")
        card = page.get_by_test_id("character-card").filter(has_text="Rin")
        expect(card.get_by_test_id("greeting-emotion")).to_have_attribute("data-emotion", "happy")
        text = card.get_by_test_id("character-greeting").text_content()
        assert "[" not in text and "你好，you！" in text
        shot(page, "characters")
