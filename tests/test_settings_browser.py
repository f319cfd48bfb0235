"""The Settings page's Companion section in headless Chromium against a real ``zishu serve``: the
default model per role (from the catalog, with Install), the device per role, the seconds a turn may
take and the default voice are saved and still there after a reload; a bad value is refused with a
toast naming the setting, and nothing of it is saved."""

from __future__ import annotations

import pytest

from conftest import AppProcess, app_origin, watched_page

pytestmark = pytest.mark.browser

WAIT = 30_000  # ms


@pytest.fixture
def app(app_env):
    with AppProcess(app_env[0]) as app:
        yield app


def test_companion_settings_are_saved_kept_and_checked(browser, app, tmp_path):
    from playwright.sync_api import expect

    with watched_page(browser, app.login_url) as page:
        page.goto(app_origin(page) + "/settings")
        section = page.get_by_test_id("companion-settings")
        llm = section.get_by_test_id("default-model-llm")
        expect(llm.locator('option[value="zishu/base-model"]')).to_have_count(1)  # offered from the catalog
        expect(section.get_by_test_id("turn-seconds")).to_have_value("120")  # the default
        llm.select_option("zishu/base-model")
        expect(section.get_by_test_id("install-default-llm")).to_be_visible()  # not installed yet
        section.get_by_test_id("device-llm").select_option("cpu")
        section.get_by_test_id("device-embedding").select_option("cuda")
        section.get_by_test_id("turn-seconds").fill("45")
        section.get_by_test_id("default-voice-engine").fill("espeak-ng")
        section.get_by_test_id("default-voice-id").fill("espeak-ng/en-us")
        section.get_by_test_id("save-companion-settings").click()
        expect(page.get_by_test_id("toast").last).to_contain_text("Companion settings saved.")
        page.screenshot(path=str(tmp_path / "settings-light.png"), full_page=True)

        saved = app.api("GET", "/api/settings").json()
        assert saved["companion_models"] == {"llm": "zishu/base-model"}  # "First installed" is no entry
        assert saved["companion_devices"]["llm"] == "cpu" and saved["companion_devices"]["embedding"] == "cuda"
        assert saved["companion_turn_seconds"] == 45
        assert saved["companion_voice"] == {"engine": "espeak-ng", "voice": "espeak-ng/en-us"}

        page.reload()
        expect(llm).to_have_value("zishu/base-model")
        expect(section.get_by_test_id("device-llm")).to_have_value("cpu")
        expect(section.get_by_test_id("device-embedding")).to_have_value("cuda")
        expect(section.get_by_test_id("device-asr")).to_have_value("auto")
        expect(section.get_by_test_id("turn-seconds")).to_have_value("45")
        expect(section.get_by_test_id("default-voice-engine")).to_have_value("espeak-ng")
        expect(section.get_by_test_id("default-voice-id")).to_have_value("espeak-ng/en-us")

        # bad values: the toast names the setting; what was saved stays
        toast = page.get_by_test_id("toast").last
        section.get_by_test_id("turn-seconds").fill("2")
        section.get_by_test_id("save-companion-settings").click()
        expect(toast).to_contain_text("companion_turn_seconds must be a whole number of seconds from 5 to 3600")
        expect(toast).to_have_attribute("data-kind", "error")
        section.get_by_test_id("turn-seconds").fill("45")
        section.get_by_test_id("default-voice-id").fill("Not An Id")
        section.get_by_test_id("save-companion-settings").click()
        expect(toast).to_contain_text("companion_voice: 'Not An Id' is not a catalog id")
        page.reload()
        expect(section.get_by_test_id("turn-seconds")).to_have_value("45")
        expect(section.get_by_test_id("default-voice-id")).to_have_value("espeak-ng/en-us")
        assert app.api("GET", "/api/settings").json()["companion_turn_seconds"] == 45

        page.get_by_test_id("theme-toggle").click()
        page.screenshot(path=str(tmp_path / "settings-toggled.png"), full_page=True)
