"""The Characters page's Publish button in headless Chromium against a real ``zishu serve`` and the
local GitHub (``local_github``): a dry run lists the requests and sends none, then the real publish
streams its steps and ends on the pull request's link."""

from __future__ import annotations

import re

import pytest

from conftest import AppProcess, app_origin, watched_page
from local_github import LocalGitHub
from test_publish import CATALOG, TOKEN, make_character

pytestmark = pytest.mark.browser

WAIT = 30_000  # ms


def test_publish_from_the_characters_page(browser, app_env, tmp_path):
    from playwright.sync_api import expect

    env, _, home = app_env
    make_character(home)
    with LocalGitHub(tokens={TOKEN: "alice"}) as github:
        github.add_repo(CATALOG, {"README.md": b"# catalog\n"})
        env = {**env, "ZISHU_GITHUB_API": github.url, "ZISHU_GITHUB_TOKEN": TOKEN, "ZISHU_CATALOG_REPO": CATALOG}
        with AppProcess(env) as app, watched_page(browser, app.login_url) as page:
            page.goto(app_origin(page) + "/characters")
            card = page.get_by_test_id("character-card").filter(has_text="Aria")
            card.get_by_test_id("publish").click()
            dialog = page.get_by_test_id("publish-dialog")
            expect(dialog.get_by_test_id("publish-title")).to_have_text("Publish Aria")

            dialog.get_by_test_id("publish-license").fill("CC-BY-4.0")
            dialog.get_by_test_id("publish-dry-run").check()
            dialog.get_by_test_id("publish-start").click()
            expect(dialog.get_by_test_id("publish-result")).to_contain_text("nothing sent", timeout=WAIT)
            log = dialog.get_by_test_id("publish-log")
            expect(log).to_contain_text(f"POST {github.url}/repos/your-login/aria/releases")
            assert github.requests == []
            page.screenshot(path=str(tmp_path / "publish-dry-run.png"))

            dialog.get_by_test_id("publish-dry-run").uncheck()
            dialog.get_by_test_id("publish-start").click()
            link = dialog.get_by_test_id("publish-pull-request")
            expect(link).to_have_text("Pull request for alice/aria 1.0.0", timeout=WAIT)
            expect(link).to_have_attribute("href", "https://github.com/zishu-ai/zishu/pull/1")
            expect(dialog.get_by_test_id("publish-log")).to_contain_text("Uploading voices/calm.wav")
            page.evaluate("document.documentElement.setAttribute('data-theme', 'dark')")
            page.screenshot(path=str(tmp_path / "publish-done-dark.png"))
            assert len(github.pulls) == 1

            # a second publish of the same version: the release exists, and the dialog says so
            dialog.get_by_test_id("publish-start").click()
            expect(dialog.get_by_test_id("publish-error")).to_have_text(re.compile("already exists"), timeout=WAIT)
    print(tmp_path)
