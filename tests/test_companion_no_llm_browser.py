"""A character with no language model to talk with: the error names the one catalog LLM to install as a
field of its JSON (``error.install``), not only in its words, and the companion window's Install button
(headless Chromium against a real ``zishu serve``) starts that install."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from conftest import AppProcess, app_origin, make_manifest, publish_catalog, serve_file, watched_page, write_manifest

pytestmark = pytest.mark.browser

WAIT = 30_000  # ms


@pytest.fixture
def app(tmp_path: Path, registry: Path, file_server):
    """An app over a catalog whose one LLM is qwen/only-llm, with nothing installed."""
    llm = make_manifest("qwen/only-llm", kind="model", name="Only LLM")
    llm["versions"][0]["files"] = [serve_file(file_server, "only.gguf", 1000)]
    write_manifest(registry, llm)
    env = {**os.environ, "ZISHU_HOME": str(tmp_path / "home"),
           "ZISHU_CATALOG": publish_catalog(registry, tmp_path / "catalog")}
    env.pop("ZISHU_QUEUE", None)
    with AppProcess(env) as app:
        yield app


def test_the_no_llm_error_carries_what_to_install(app):
    assert app.api("POST", "/api/characters", json={"name": "Mio", "persona": "You are Mio."}).status_code == 201
    answer = app.api("POST", "/api/companion/sessions", json={"character": "local/mio"})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "USAGE" and error["install"] == "qwen/only-llm"
    assert "Mio has no language model" in error["message"]

    # a model the character names but that is not installed: the same field names it
    app.api("PUT", "/api/characters/local/mio", json={"llm": {"model": "qwen/other-llm"}})
    error = app.api("POST", "/api/companion/sessions", json={"character": "local/mio"}).json()["error"]
    assert error["code"] == "MODEL_NOT_AVAILABLE" and error["install"] == "qwen/other-llm"

    # an error with nothing to install has no such field
    assert "install" not in app.api("GET", "/api/characters/local/nobody").json()["error"]


def test_the_window_offers_the_install_and_starts_it(browser, app, tmp_path):
    from playwright.sync_api import expect

    app.api("POST", "/api/characters", json={"name": "Mio", "persona": "You are Mio."})
    with watched_page(browser, app.login_url) as page:
        page.goto(app_origin(page) + "/companion?character=local/mio")
        expect(page.get_by_test_id("companion-status")).to_contain_text(
            "local/mio cannot talk: Mio has no language model", timeout=WAIT)
        button = page.get_by_test_id("install-missing")
        expect(button).to_have_text("Install qwen/only-llm")
        page.screenshot(path=str(tmp_path / "no-llm.png"), full_page=True)
        button.click()  # the Install dialog first, as for every Install button: what it pulls and needs
        dialog = page.get_by_test_id("install-dialog")
        expect(dialog.get_by_test_id("install-title")).to_have_text("Install qwen/only-llm")
        dialog.get_by_test_id("install-cancel").click()
        expect(dialog).to_be_hidden()
        expect(button).to_be_enabled()
        assert app.api("GET", "/api/jobs").json()["jobs"] == []  # cancelled: nothing installs
        button.click()
        dialog.get_by_test_id("install-confirm").click()
        expect(page.get_by_test_id("toast").last).to_contain_text("Installing qwen/only-llm")
        expect(button).to_be_disabled()
        jobs = app.api("GET", "/api/jobs").json()["jobs"]
        assert [j["title"] for j in jobs] == ["Install qwen/only-llm"]
        assert app.wait_job(jobs[0]["id"])["status"] == "SUCCESS"
        page.get_by_test_id("nav-jobs").click()
        expect(page.get_by_test_id("job").first.get_by_test_id("job-title")).to_have_text(
            re.compile("Install qwen/only-llm"))
