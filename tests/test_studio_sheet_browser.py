"""An expression sheet as the companion's 2D avatar, in headless Chromium against a real ``zishu
serve``: the sheet's pictures (made with PIL here) are set through the API, and when the scripted
tiny LLM answers with an emotion tag ("[joy]Hugs, cat."), the avatar switches to that emotion's
picture."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from conftest import AppProcess, app_origin, watched_page

pytestmark = pytest.mark.browser

WAIT = 60_000  # ms


def picture(colour: tuple[int, int, int], size: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def app(companion_home):
    env = {**os.environ, "ZISHU_HOME": str(companion_home)}
    env.pop("ZISHU_QUEUE", None)
    with AppProcess(env) as app:
        yield app


def test_the_avatar_switches_to_the_sheets_picture_on_each_emotion_event(browser, app, tmp_path):
    from playwright.sync_api import expect

    # Mei's sheet: a 40-pixel neutral picture and a 48-pixel happy one (the scripted reply's [joy] is happy)
    files = {"neutral": ("neutral.png", picture((90, 90, 200), 40), "image/png"),
             "joy": ("joy.png", picture((240, 170, 40), 48), "image/png")}
    saved = app.api("POST", "/api/characters/acme/mei/avatar-sheet", files=files)
    assert saved.status_code == 200, saved.text
    rid = saved.json()["character"]
    assert rid == "local/mei" and saved.json()["forked_from"] == "acme/mei"  # a catalog character's own copy

    with watched_page(browser, app.login_url) as page:
        page.goto(f"{app_origin(page)}/companion?character={rid}")
        expect(page.get_by_test_id("companion-status")).to_contain_text("Mei is here", timeout=WAIT)
        avatar = page.get_by_test_id("avatar")
        image = page.get_by_test_id("avatar-image")
        expect(avatar).to_have_attribute("data-avatar", "image")
        expect(image).to_have_attribute("src", f"/api/characters/{rid}/avatar?v=1.0.1")
        page.wait_for_function("() => document.querySelector('[data-testid=avatar-image]').naturalWidth === 40")
        page.screenshot(path=str(tmp_path / "before.png"))

        page.get_by_test_id("message").fill("Hello!")
        page.get_by_test_id("send").click()
        expect(page.get_by_test_id("message-assistant").nth(1)).to_have_text("Hugs, cat.", timeout=WAIT)
        expect(avatar).to_have_attribute("data-picture", "happy", timeout=WAIT)
        expect(image).to_have_attribute("src", f"/api/avatar/{rid}/sheet/happy?v=1.0.1")
        page.wait_for_function("() => document.querySelector('[data-testid=avatar-image]').naturalWidth === 48")
        page.screenshot(path=str(tmp_path / "after.png"))
