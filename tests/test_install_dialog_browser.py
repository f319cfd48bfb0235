"""The app's Install dialog in headless Chromium against a real ``zishu serve``: what an install
pulls, the whole-character hardware budget against the tiers and this machine, and a plugin's
consent before its wheel is installed."""

from __future__ import annotations

import os
import re

import pytest

from conftest import AppProcess, publish_catalog, watched_page
from test_catalog_plugins import HELLO, build_wheel, publish_plugin

pytestmark = pytest.mark.browser

WAIT = 30_000
SHOTS = os.environ.get("ZISHU_SCREENSHOTS")  # a folder: screenshots of the dialog, light and dark


@pytest.fixture
def app(app_env, registry, tmp_path):
    env, server, home = app_env
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    publish_plugin(registry, server, build_wheel(wheels, "zishu-hello", "zishu_hello_cat", HELLO),
                   "alice/hello", "zishu-hello")
    env = {**env, "ZISHU_CATALOG": publish_catalog(registry, tmp_path / "catalog2")}
    with AppProcess(env) as app:
        yield app, home


def test_install_dialog_shows_downloads_and_budget_and_cancel_installs_nothing(browser, app):
    from playwright.sync_api import expect

    app, _home = app
    with watched_page(browser, app.login_url) as ui:
        ui.goto(re.sub(r"/$", "", ui.url.split("?")[0].rsplit("/", 1)[0]) + "/resources/zishu/hero")
        ui.get_by_test_id("install-button").click()
        dialog = ui.get_by_test_id("install-dialog")
        expect(dialog).to_be_visible()
        steps = dialog.get_by_test_id("install-steps").locator("tbody tr")
        expect(steps).to_have_count(2)
        expect(steps.nth(0)).to_contain_text("zishu/base-model@1.0.0")  # dependencies first
        expect(steps.nth(1)).to_contain_text("zishu/hero@1.0.0")
        expect(dialog.get_by_test_id("install-download")).to_have_text("302.7 KiB")
        expect(dialog.get_by_test_id("budget-disk")).to_have_text("302.7 KiB")
        expect(dialog.get_by_test_id("budget-ram")).to_have_text("293.0 KiB")  # the model's weights
        expect(dialog.get_by_test_id("budget-estimated")).to_be_visible()
        tiers = dialog.get_by_test_id("install-tiers")
        for tier in ("minimum", "recommended", "best"):
            expect(tiers.locator(f"tr[data-tier={tier}] td.fits")).to_have_text("✓ yes")
        expect(dialog.get_by_test_id("budget-here")).to_contain_text("Runs on this machine's")
        expect(dialog.get_by_test_id("plugin-consent")).to_be_hidden()
        if SHOTS:
            ui.screenshot(path=f"{SHOTS}/install-dialog-light.png")
        dialog.get_by_test_id("install-cancel").click()
        expect(dialog).to_be_hidden()
        expect(ui.get_by_test_id("install-button")).to_be_enabled()
    assert app.api("GET", "/api/library").json()["resources"] == []


def test_a_plugin_is_installed_only_after_the_dialog_approves_it(browser, app):
    from playwright.sync_api import expect

    app, home = app
    with watched_page(browser, app.login_url) as ui:
        ui.goto(re.sub(r"/$", "", ui.url.split("?")[0].rsplit("/", 1)[0]) + "/resources/alice/hello")
        if SHOTS:
            ui.evaluate("document.documentElement.dataset.theme = 'dark'")
        ui.get_by_test_id("install-button").click()
        consent = ui.get_by_test_id("plugin-consent")
        expect(consent).to_be_visible()
        expect(consent.get_by_test_id("plugin")).to_contain_text('alice/hello 1.0.0: Python distribution zishu-hello, '
                                                                  'entry point "hello"')
        expect(ui.get_by_test_id("install-confirm")).to_have_text("Approve and install")
        if SHOTS:
            ui.screenshot(path=f"{SHOTS}/install-dialog-plugin-dark.png")
        ui.get_by_test_id("install-confirm").click()
        expect(ui.get_by_test_id("install-done")).to_be_visible(timeout=WAIT)
    job = app.api("GET", "/api/jobs").json()["jobs"][0]
    assert job["params"] == {"request": "alice/hello", "approve_plugins": ["alice/hello"]}
    assert app.wait_job(job["id"])["status"] == "SUCCESS"
    assert (home / "plugins" / "zishu-hello" / "zishu_hello_cat" / "__init__.py").is_file()

def test_the_install_api_refuses_an_unapproved_plugin(app):
    app, home = app
    job = app.api("POST", "/api/installs", json={"request": "alice/hello"}).json()["job"]
    done = app.wait_job(job["id"])
    assert done["status"] == "FAILED" and "was not installed" in done["error"]
    assert not (home / "plugins" / "zishu-hello").exists()
    assert app.api("GET", "/api/library").json()["resources"] == []
