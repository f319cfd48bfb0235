"""The app's web UI in headless Chromium against a real ``zishu serve``: install, progress, cancel,
retry, uninstall, empty and error states, the theme."""

from __future__ import annotations

import re

import pytest

from conftest import AppProcess, app_origin, install_test_plugins, trickle, watched_page

pytestmark = pytest.mark.browser

WAIT = 30_000  # ms: how long expect() waits for a job to move on


@pytest.fixture
def app(app_env):
    with AppProcess(app_env[0]) as app:
        yield app


@pytest.fixture
def ui(browser, app):
    """A page logged in to ``app`` (its cookie set), on Discover; fails on any console error."""
    from playwright.sync_api import expect

    with watched_page(browser, app.login_url) as page:
        expect(page.get_by_test_id("page-title")).to_have_text("Discover")
        yield page


def library_ids(app) -> list[str]:
    return [r["id"] for r in app.api("GET", "/api/library").json()["resources"]]


def test_search_install_with_progress_then_uninstall(ui, app):
    from playwright.sync_api import expect

    ui.get_by_test_id("search-input").fill("hero")
    card = ui.get_by_test_id("result-card").filter(has_text="Hero")
    expect(card).to_have_count(1)
    expect(ui.get_by_test_id("result-card")).to_have_count(1)
    expect(card.get_by_test_id("installed-badge")).to_have_count(0)
    card.click()

    expect(ui).to_have_url(re.compile(r"/resources/zishu/hero$"))
    expect(ui.get_by_test_id("resource-name")).to_have_text("Hero")
    expect(ui.get_by_test_id("dependency")).to_have_text("zishu/base-model")
    expect(ui.get_by_test_id("file")).to_contain_text("portrait.png")
    ui.get_by_test_id("install-button").click()
    ui.get_by_test_id("install-confirm").click()  # the Install dialog: what it pulls and needs
    bar = ui.get_by_test_id("install-progress-bar")
    expect(bar).to_have_js_property("value", 100, timeout=WAIT)
    expect(ui.get_by_test_id("install-percent")).to_have_text("100 %")
    expect(ui.get_by_test_id("install-done")).to_contain_text("Installed ✓")
    expect(ui.get_by_test_id("installed-versions")).to_contain_text("1.0.0")

    ui.get_by_test_id("library-link").click()
    expect(ui.get_by_test_id("nav-library")).to_have_class(re.compile(r"\bactive\b"))
    items = ui.get_by_test_id("library-item")
    expect(items).to_have_count(2)
    hero = ui.locator('[data-testid="library-item"][data-id="zishu/hero"]')
    expect(hero).to_contain_text("Hero")
    expect(ui.locator('[data-testid="library-item"][data-id="zishu/base-model"]')).to_contain_text("Base Model")

    hero.get_by_test_id("uninstall").click()
    expect(ui.get_by_test_id("confirm-dialog")).to_contain_text("Uninstall zishu/hero 1.0.0?")
    ui.get_by_test_id("confirm-ok").click()
    expect(hero).to_have_count(0)
    expect(items).to_have_count(1)
    expect(ui.get_by_test_id("library-count")).to_have_text("1")
    assert library_ids(app) == ["zishu/base-model"]

    ui.reload()
    expect(items).to_have_count(1)


def test_cancel_a_running_install_then_retry(app_env, ui, app):
    from playwright.sync_api import expect

    app_env[1].faults["/files/big.bin"] = trickle(300_000)
    ui.goto(app_origin(ui) + "/resources/zishu/big-model")
    ui.get_by_test_id("install-button").click()
    ui.get_by_test_id("install-confirm").click()  # the Install dialog: what it pulls and needs
    expect(ui.get_by_test_id("install-progress")).to_be_visible()
    expect(ui.get_by_test_id("jobs-badge")).to_have_text("1", timeout=WAIT)

    ui.get_by_test_id("nav-jobs").click()
    job = ui.get_by_test_id("job").first
    expect(job.get_by_test_id("job-title")).to_have_text("Install zishu/big-model")
    expect(job.get_by_test_id("job-status")).to_have_text("Running", timeout=WAIT)
    expect(job.get_by_test_id("job-percent")).to_have_text(re.compile(r"^[1-9]\d? %$"), timeout=WAIT)
    expect(job.get_by_test_id("job-retry")).to_be_hidden()

    job.get_by_test_id("job-cancel").click()
    expect(job.get_by_test_id("job-status")).to_have_text("Cancelled", timeout=WAIT)
    expect(job.get_by_test_id("job-cancel")).to_be_hidden()
    expect(ui.get_by_test_id("jobs-badge")).to_be_hidden()

    job.get_by_test_id("job-retry").click()
    expect(job.get_by_test_id("job-status")).to_have_text("Running", timeout=WAIT)
    expect(ui.get_by_test_id("jobs-badge")).to_have_text("1")
    job.get_by_test_id("job-cancel").click()
    expect(job.get_by_test_id("job-status")).to_have_text("Cancelled", timeout=WAIT)

    ui.get_by_test_id("clear-finished").click()
    expect(ui.get_by_test_id("job")).to_have_count(0)
    expect(ui.get_by_test_id("jobs-empty")).to_be_visible()


def test_empty_states_and_the_theme_toggle(browser, ui, app):
    from playwright.sync_api import expect

    ui.get_by_test_id("nav-library").click()
    expect(ui.get_by_test_id("library-empty")).to_contain_text("Nothing installed yet — find something in Discover")
    ui.get_by_test_id("nav-jobs").click()
    expect(ui.get_by_test_id("jobs-empty")).to_be_visible()

    html = ui.locator("html")
    before = html.get_attribute("data-theme")
    assert before in ("light", "dark")
    after = "dark" if before == "light" else "light"
    ui.get_by_test_id("theme-toggle").click()
    expect(html).to_have_attribute("data-theme", after)
    ui.get_by_test_id("nav-settings").click()  # the choice is kept from page to page
    expect(html).to_have_attribute("data-theme", after)

    dark = browser.new_context(color_scheme="dark")  # no choice saved: the system's theme
    try:
        page = dark.new_page()
        page.goto(app.login_url)
        expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    finally:
        dark.close()


def test_a_failed_install_shows_its_error_then_retry_succeeds(app_env, ui, app):
    from playwright.sync_api import expect

    portrait = app_env[1].files.pop("/files/portrait.png")
    ui.goto(app_origin(ui) + "/resources/zishu/hero")
    ui.get_by_test_id("install-button").click()
    ui.get_by_test_id("install-confirm").click()  # the Install dialog: what it pulls and needs
    message = ui.get_by_test_id("install-error-message")
    expect(message).to_be_visible(timeout=WAIT)
    failed = app.api("GET", "/api/jobs").json()["jobs"][0]
    assert failed["status"] == "FAILED" and failed["error"]
    expect(message).to_have_text(failed["error"])
    expect(ui.get_by_test_id("install-status")).to_have_text("Failed")

    app_env[1].files["/files/portrait.png"] = portrait
    ui.get_by_test_id("install-retry").click()
    expect(ui.get_by_test_id("install-done")).to_be_visible(timeout=WAIT)
    expect(ui.get_by_test_id("install-error")).to_be_hidden()
    assert "zishu/hero" in library_ids(app)


def test_api_errors_become_toasts_and_pages_render(ui, app):
    from playwright.sync_api import expect

    ui.get_by_test_id("nav-settings").click()
    expect(ui.get_by_test_id("catalog-env-note")).to_contain_text("ZISHU_CATALOG")
    expect(ui.get_by_test_id("hardware")).to_contain_text("Memory", timeout=WAIT)
    ui.get_by_test_id("catalog-url").fill("ftp://example.invalid/catalog")
    ui.get_by_test_id("save-settings").click()
    toast = ui.get_by_test_id("toast")
    expect(toast).to_contain_text("catalog_url must be an http(s):// or file:// URL")
    expect(toast).to_have_attribute("data-kind", "error")

    ui.get_by_test_id("nav-plugins").click()
    expect(ui.get_by_test_id("plugin").first).to_be_visible()
    expect(ui.get_by_test_id("plugins-error-dot")).to_have_count(0)

    ui.goto(app_origin(ui) + "/resources/zishu/hero?install=zishu/hero@1.0.0")  # where a zishu://install link leads
    expect(ui.get_by_test_id("install-button")).to_have_attribute("data-highlighted", "true")
    expect(ui.get_by_test_id("install-link-note")).to_contain_text("zishu/hero@1.0.0")

    response = ui.goto(app_origin(ui) + "/resources/zishu/no-such-thing")
    assert response.status == 404
    expect(ui.get_by_test_id("error")).to_contain_text("zishu/no-such-thing")

    status, kind = ui.evaluate(  # every page's tab icon
        "fetch(document.querySelector('link[rel=icon]').href).then(r => [r.status, r.headers.get('content-type')])")
    assert status == 200 and kind.startswith("image/svg+xml")


def test_plugins_panel_shows_failures_and_disables_a_plugin(browser, app_env, tmp_path):
    from playwright.sync_api import expect

    env = {**app_env[0], "PYTHONPATH": install_test_plugins(tmp_path / "site")}
    with AppProcess(env) as app:
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(app.login_url)
            expect(page.get_by_test_id("plugins-error-dot")).to_be_visible()
            expect(page.get_by_test_id("nav-hello")).to_have_attribute("href", "/plugins/hello/")
            page.get_by_test_id("nav-plugins").click()
            broken = page.locator('[data-testid="plugin"][data-name="broken"]')
            expect(broken.get_by_test_id("plugin-status")).to_have_text("failed")
            expect(broken.get_by_test_id("plugin-error")).to_contain_text("broken on purpose")
            expect(page.locator('[data-testid="plugin"][data-name="zishu.web.panels"]').get_by_test_id("plugin-toggle")
                   ).to_have_count(0)
            panel = page.locator('[data-testid="plugin"][data-name="panel"]')
            expect(panel.get_by_test_id("plugin-status")).to_have_text("loaded")
            panel.get_by_test_id("plugin-toggle").click()
            expect(page.get_by_test_id("restart-notice")).to_be_visible()
            expect(panel.get_by_test_id("plugin-toggle")).to_have_text("Enable")
            assert "panel" in app.api("GET", "/api/plugins").json()["disabled"]
        finally:
            context.close()


def test_run_next_puts_a_waiting_job_before_the_others(app_env, browser):
    from playwright.sync_api import expect

    env, server, _ = app_env
    server.faults["/files/big.bin"] = trickle(300_000)
    with AppProcess(env, "--workers", "1") as app:  # one job at a time: the others wait
        context = browser.new_context()
        ui = context.new_page()
        ui.goto(app.login_url)
        busy = app.api("POST", "/api/installs", json={"request": "zishu/big-model"}).json()["job"]
        app.wait_job(busy["id"], until=("RUNNING",))
        first = app.api("POST", "/api/installs", json={"request": "zishu/hero"}).json()["job"]
        second = app.api("POST", "/api/installs", json={"request": "zishu/base-model"}).json()["job"]
        ui.goto(app_origin(ui) + "/jobs")
        waiting = ui.locator(f'[data-job-id="{second["id"]}"]')
        expect(waiting.get_by_test_id("job-status")).to_have_text("Waiting")
        with ui.expect_response(lambda r: r.url.endswith(f"/api/jobs/{second['id']}/priority")):
            waiting.get_by_test_id("job-run-next").click()
        expect(waiting.get_by_test_id("job-run-next")).to_be_visible()  # still waiting, now first in line
        assert app.api("GET", f"/api/jobs/{second['id']}").json()["job"]["priority"] == 1
        app.api("POST", f"/api/jobs/{busy['id']}/cancel")
        done = [app.wait_job(j["id"]) for j in (first, second)]
        assert done[1]["started_at"] < done[0]["started_at"]
        expect(waiting.get_by_test_id("job-status")).to_have_text("Done", timeout=WAIT)
        context.close()
