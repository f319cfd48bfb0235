"""A whole day with the starter character, walked as a user in headless Chromium against a real
``zishu serve`` over a local catalog: find 小雨 Xiaoyu in Discover and install her (her language model
comes with her), talk by text, reload and find the chat again, regenerate and swipe, edit a message,
give her a Live2D model and then a picture in the editor (a copy of one's own), and uninstall that copy
from the Library and Undo it.

The catalog holds the real ``zishu/xiaoyu`` manifest (persona, greetings, lorebook, emotions), with its
language model ``qwen/qwen2-5-0-5b-instruct-gguf`` played by a tiny scripted GGUF that always answers
"[shy]Hi, cat." ([shy] is one of her emotion tags), and a tiny Live2D model; her own avatar and voice
are left out, so that the day gives her one and a text day needs no speech."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest
import yaml

from conftest import AppProcess, FileServer, app_origin, make_manifest, publish_catalog, watched_page, write_manifest
from tiny_gguf import write_tiny_gguf

pytestmark = pytest.mark.browser

WAIT = 60_000  # ms
REPLY = "[shy]Hi, cat."
QWEN = "qwen/qwen2-5-0-5b-instruct-gguf"
STARTER = Path(__file__).resolve().parent.parent / "registry_index" / "resources" / "zishu" / "xiaoyu.yaml"


def served(server: FileServer, name: str, body: bytes) -> dict:
    server.files[f"/files/{name}"] = body
    return {"name": name, "url": f"{server.url}/files/{name}", "sha256": hashlib.sha256(body).hexdigest(),
            "size": len(body)}


@pytest.fixture
def app(tmp_path: Path, registry: Path, file_server: FileServer):
    starter = yaml.safe_load(STARTER.read_text(encoding="utf-8"))
    del starter["spec"]["avatar"], starter["spec"]["voice"]
    starter["versions"][0]["requires"] = [{"id": QWEN, "version": ">=1.0.0"}]
    llm = make_manifest(QWEN, kind="model", name="Qwen2.5 0.5B Instruct (tiny test stand-in)")
    gguf = write_tiny_gguf(tmp_path / "qwen.gguf", script=REPLY, context=2048)
    llm["versions"][0]["files"] = [served(file_server, "qwen.gguf", gguf.read_bytes())]
    live2d = make_manifest("live2d/tiny", kind="live2d", name="Tiny Live2D")
    live2d["versions"][0]["files"] = [served(file_server, "model.model3.json", b'{"Version": 3}')]
    for manifest in (starter, llm, live2d):
        write_manifest(registry, manifest)
    env = {**os.environ, "ZISHU_HOME": str(tmp_path / "home"),
           "ZISHU_CATALOG": publish_catalog(registry, tmp_path / "catalog")}
    env.pop("ZISHU_QUEUE", None)
    with AppProcess(env) as app:
        yield app


def character(app, rid: str) -> dict:
    return app.api("GET", f"/api/characters/{rid}").json()["character"]


def test_a_day_with_the_starter_character(browser, app, tmp_path):
    from playwright.sync_api import expect

    shots = tmp_path / "shots"
    shots.mkdir()
    with watched_page(browser, app.login_url) as page:
        origin = app_origin(page)

        # Morning: find her in Discover and install her; her language model comes with her
        page.get_by_test_id("search-input").fill("xiaoyu")
        card = page.get_by_test_id("result-card").filter(has_text="Xiaoyu")
        expect(card).to_have_count(1)
        card.click()
        expect(page.get_by_test_id("resource-name")).to_have_text("小雨 Xiaoyu")
        expect(page.get_by_test_id("dependency")).to_have_text(QWEN)
        page.get_by_test_id("install-button").click()
        page.get_by_test_id("install-confirm").click()  # the Install dialog: what she pulls and needs
        expect(page.get_by_test_id("install-done")).to_contain_text("Installed ✓", timeout=WAIT)
        page.get_by_test_id("library-link").click()
        expect(page.get_by_test_id("library-item")).to_have_count(2)
        for rid in ("zishu/xiaoyu", QWEN):
            expect(page.locator(f'[data-testid="library-item"][data-id="{rid}"]')).to_be_visible()

        # Talk by text: her greeting first, then her reply, its emotion tag shown as an emotion
        page.get_by_test_id("nav-characters").click()
        xiaoyu = page.locator('[data-testid="character-card"][data-id="zishu/xiaoyu"]')
        expect(xiaoyu.get_by_test_id("character-origin")).to_have_text("From the catalog")
        xiaoyu.get_by_test_id("talk").click()
        expect(page.get_by_test_id("companion-status")).to_contain_text("小雨 Xiaoyu is here", timeout=WAIT)
        replies = page.get_by_test_id("message-assistant")
        expect(replies.first).to_contain_text("你回来啦！今天过得怎么样？")
        mood = replies.first.get_by_test_id("greeting-emotion")
        expect(mood).to_have_text("开心")  # her tag, shown as the emotion it names, never as "[开心]"
        expect(mood).to_have_attribute("data-emotion", "happy")
        expect(replies.first).not_to_contain_text("[开心]")
        page.get_by_test_id("message").fill("My name is Lin.")
        page.get_by_test_id("send").click()
        reply = replies.nth(1)
        expect(reply.locator(".message-text")).to_have_text("Hi, cat.", timeout=WAIT)
        expect(page.get_by_test_id("avatar")).to_have_attribute("data-expression", "F07")  # [shy] in her map
        page.screenshot(path=str(shots / "talk.png"), full_page=True)

        # Reload: the chat is reopened with its history
        page.reload()
        expect(page.get_by_test_id("companion-status")).to_contain_text("小雨 Xiaoyu is here", timeout=WAIT)
        expect(page.get_by_test_id("message-user").locator(".message-text")).to_have_text(["My name is Lin."])
        expect(reply.locator(".message-text")).to_have_text("Hi, cat.")
        expect(page.get_by_test_id("chat-select").locator("option")).to_have_count(1)

        # Regenerate, then swipe between the two replies
        expect(reply.get_by_test_id("swipe-count")).to_have_attribute("data-count", "1/1")
        reply.get_by_test_id("regenerate").click()
        expect(reply.get_by_test_id("swipe-count")).to_have_attribute("data-count", "2/2", timeout=WAIT)
        expect(reply.locator(".message-text")).to_have_text("Hi, cat.")
        expect(replies).to_have_count(2)
        reply.get_by_test_id("swipe-left").click()
        expect(reply.get_by_test_id("swipe-count")).to_have_attribute("data-count", "1/2")
        reply.get_by_test_id("swipe-right").click()
        expect(reply.get_by_test_id("swipe-count")).to_have_attribute("data-count", "2/2")

        # Edit a message: what she was told changes, in the window and after a reload
        mine = page.get_by_test_id("message-user")
        mine.get_by_test_id("edit-message").click()
        page.get_by_test_id("message-input").fill("My name is Wei.")
        page.get_by_test_id("message-input").press("Enter")
        expect(mine.locator(".message-text")).to_have_text("My name is Wei.")
        page.reload()
        expect(page.get_by_test_id("companion-status")).to_contain_text("小雨 Xiaoyu is here", timeout=WAIT)
        expect(mine.locator(".message-text")).to_have_text(["My name is Wei."])
        expect(reply.get_by_test_id("swipe-count")).to_have_attribute("data-count", "2/2")
        page.screenshot(path=str(shots / "chat.png"), full_page=True)

        # Evening: give her a Live2D model in the editor (installing it from there), a copy of her own
        page.goto(origin + "/characters/zishu/xiaoyu/edit")
        expect(page.get_by_test_id("page-title")).to_have_text("Edit 小雨 Xiaoyu")
        expect(page.get_by_test_id("fork-note")).to_be_visible()
        page.get_by_test_id("avatar-live2d").check()
        live2d = page.get_by_test_id("field-live2d")
        expect(live2d.locator('option[value="live2d/tiny"]')).to_have_count(1)
        live2d.select_option("live2d/tiny")
        page.get_by_test_id("install-live2d").click()
        dialog = page.get_by_test_id("install-dialog")  # what it pulls and needs, as for every Install
        expect(dialog.get_by_test_id("install-title")).to_have_text("Install live2d/tiny")
        page.screenshot(path=str(shots / "install-live2d.png"), full_page=True)
        dialog.get_by_test_id("install-confirm").click()
        expect(page.get_by_test_id("toast").last).to_contain_text("Installing live2d/tiny")
        job = next(j for j in app.api("GET", "/api/jobs").json()["jobs"] if j["title"] == "Install live2d/tiny")
        assert app.wait_job(job["id"])["status"] == "SUCCESS"
        page.get_by_test_id("save-character").click()
        expect(page.get_by_test_id("toast").last).to_contain_text("Saved 小雨 Xiaoyu as your own copy (local/xiaoyu).")
        expect(page).to_have_url(re.compile(r"/characters/local/xiaoyu/edit$"))
        assert character(app, "local/xiaoyu")["avatar"]["live2d"] == "live2d/tiny"

        # ... then a picture instead (her copy began at 1.0.1, after the catalog's 1.0.0)
        from PIL import Image

        picture = tmp_path / "xiaoyu.png"
        Image.new("RGB", (32, 32), (90, 140, 220)).save(picture)
        page.get_by_test_id("avatar-image").check()
        page.get_by_test_id("field-picture").set_input_files(str(picture))
        page.get_by_test_id("save-character").click()
        expect(page.get_by_test_id("toast").last).to_contain_text("Saved 小雨 Xiaoyu (version 1.0.2).")
        expect(page.get_by_test_id("picture-preview")).to_be_visible()
        copy = character(app, "local/xiaoyu")
        assert copy["avatar"]["image"].startswith("picture-") and copy["avatar"]["live2d"] is None
        assert copy["persona"] == character(app, "zishu/xiaoyu")["persona"]  # the rest of her came along
        page.screenshot(path=str(shots / "editor.png"), full_page=True)

        # Night: uninstall her copy from the Library (to the trash), then Undo
        page.get_by_test_id("nav-library").click()
        mine = page.locator('[data-testid="library-item"][data-id="local/xiaoyu"]')
        expect(mine).to_have_count(1)
        mine.get_by_test_id("uninstall").first.click()
        expect(page.get_by_test_id("confirm-dialog")).to_contain_text("Characters trash")
        page.get_by_test_id("confirm-ok").click()
        expect(mine).to_have_count(0)
        assert app.api("GET", "/api/characters/local/xiaoyu").status_code == 404
        page.get_by_test_id("toast").last.get_by_test_id("undo").click()
        expect(mine).to_have_count(1)
        expect(page.get_by_test_id("toast").last).to_contain_text("local/xiaoyu is back.")
        assert character(app, "local/xiaoyu")["avatar"]["image"] == copy["avatar"]["image"]
        page.reload()
        expect(mine).to_have_count(1)
        page.screenshot(path=str(shots / "library.png"), full_page=True)
