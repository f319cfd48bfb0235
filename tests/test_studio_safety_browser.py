"""The studio's safety on the Settings page in headless Chromium against a real ``zishu serve``:
safe mode switched off and on, the image classifier's status naming what to install, and the
user's word list edited and saved."""

from __future__ import annotations

import pytest

from conftest import AppProcess, app_origin, watched_page

pytestmark = pytest.mark.browser


def test_safe_mode_the_classifier_status_and_a_word_list_from_settings(browser, app_env):
    from playwright.sync_api import expect

    env, _, home = app_env
    with AppProcess(env) as app, watched_page(browser, app.login_url) as page:
        page.goto(f"{app_origin(page)}/settings")
        safe = page.get_by_test_id("safe-mode")
        expect(safe).to_be_checked()
        status = page.get_by_test_id("image-check-status")
        expect(status).to_contain_text("No image classifier is installed")
        expect(status).to_contain_text("image-check")

        safe.uncheck()
        page.get_by_test_id("image-check-threshold").fill("0.6")
        page.get_by_test_id("save-safety-settings").click()
        expect(page.get_by_text("Safety settings saved.")).to_be_visible()
        chosen = app.api("GET", "/api/settings").json()
        assert chosen["studio_safe_mode"] is False and chosen["studio_image_check"] == {"threshold": 0.6}

        expect(page.get_by_test_id("word-list-lang")).to_have_value("en")
        expect(page.get_by_test_id("word-list-builtin")).to_contain_text("nude")
        page.get_by_test_id("word-list-text").fill("dragon slayer\n-nude")
        page.get_by_test_id("save-word-list").click()
        expect(page.get_by_text("Word list en saved.")).to_be_visible()
        assert (home / "filters" / "en.txt").read_text(encoding="utf-8") == "dragon slayer\n-nude\n"
        entries = app.api("GET", "/api/studio/filters/en").json()["entries"]
        assert "dragon slayer" in entries and "nude" not in entries

        page.get_by_test_id("word-list-lang").select_option("zh")
        expect(page.get_by_test_id("word-list-builtin")).to_contain_text("裸体")
        expect(page.get_by_test_id("word-list-text")).to_have_value("")

        page.reload()
        expect(page.get_by_test_id("safe-mode")).not_to_be_checked()
        expect(page.get_by_test_id("word-list-text")).to_have_value("dragon slayer\n-nude\n")


def test_the_character_editor_marks_a_character_for_all_ages(browser, app_env):
    from playwright.sync_api import expect

    env, _, _ = app_env
    with AppProcess(env) as app, watched_page(browser, app.login_url) as page:
        made = app.api("POST", "/api/characters", json={"name": "Mimi", "persona": "A kind fox."})
        rid = made.json()["character"]["id"]
        page.goto(f"{app_origin(page)}/characters/{rid}/edit")
        audience = page.get_by_test_id("field-audience")
        expect(page.get_by_test_id("save-character")).to_be_enabled()
        expect(audience).to_have_value("")
        audience.select_option("all-ages")
        page.get_by_test_id("save-character").click()
        for _ in range(100):
            if app.api("GET", f"/api/characters/{rid}").json()["character"].get("audience") == "all-ages":
                break
            page.wait_for_timeout(100)
        assert app.api("GET", f"/api/characters/{rid}").json()["character"]["audience"] == "all-ages"
        page.reload()
        expect(page.get_by_test_id("field-audience")).to_have_value("all-ages")
