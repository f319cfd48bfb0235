"""Packages from the command line, the launchers of ``zishu pack --app``, ``zishu://package``
links, and the Characters page's Pack button and package opening in headless Chromium."""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import AppProcess, FileServer, app_origin, watched_page, zishu
from test_packaging import _world
from zishu.links import location


@pytest.fixture
def author(tmp_path):
    """A home with local/aria and its parts (files served by a live server), and its environment."""
    with FileServer() as server:
        home = tmp_path / "author"
        rid = _world(home, server)
        env = {**os.environ, "ZISHU_HOME": str(home)}
        env.pop("ZISHU_QUEUE", None)
        yield env, rid, server


def _fresh(tmp_path: Path, name: str) -> dict:
    env = {**os.environ, "ZISHU_HOME": str(tmp_path / name), "BROWSER": "true"}  # webbrowser runs `true URL`
    env.pop("ZISHU_QUEUE", None)
    return env


def test_pack_and_install_from_the_command_line(author, tmp_path):
    env, rid, _ = author
    out = tmp_path / "aria.zpkg"
    done = zishu(env, "pack", rid, "--mode", "standalone", "--out", str(out))
    assert f"wrote {out}" in done.stderr and "standalone" in done.stderr
    friend = _fresh(tmp_path, "friend")
    installed = json.loads(zishu(friend, "install", str(out), "--json").stdout)
    assert installed["character"]["id"] == rid and installed["character"]["new"] is True
    assert {r["id"]: r["how"] for r in installed["resources"]}["qwen/tiny-llm"] == "downloaded"
    listed = json.loads(zishu(friend, "list", "--json").stdout)
    assert set(listed) == {rid, "qwen/tiny-llm", "alice/ink-lora", "alice/aria-live2d"}
    bad = tmp_path / "bad.zpkg"
    bad.write_bytes(b"not a zip")
    refused = zishu(friend, "install", str(bad), check=False)
    assert refused.returncode == 4 and "not a .zpkg (zip) file" in refused.stderr


def test_pack_app_writes_three_launchers(author, tmp_path):
    env, rid, _ = author
    out = tmp_path / "aria.zpkg"
    zishu(env, "pack", rid, "--out", str(out), "--app-for", "linux", "--app-for", "windows", "--app-for", "macos")
    desktop = (tmp_path / "aria.desktop").read_text()
    assert desktop.startswith("[Desktop Entry]\nType=Application\nName=Aria\n")
    assert f"-m zishu.cli open --install {out}" in desktop and "Terminal=false" in desktop
    cmd = (tmp_path / "aria.cmd").read_bytes().decode()  # as written: CRLF
    assert cmd.startswith("@echo off\r\n") and f"-m zishu.cli open --install {out}\r\n" in cmd
    command = (tmp_path / "aria.command").read_text()
    assert command.startswith("#!/bin/sh\n") and f"exec {shlex.quote(sys.executable)} -m zishu.cli open --install" \
                                                   f" {out}\n" in command
    for name in ("aria.desktop", "aria.command"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == 0o755


def test_the_linux_launcher_installs_the_package_and_opens_the_character(author, tmp_path):
    env, rid, _ = author
    out = tmp_path / "aria.zpkg"
    zishu(env, "pack", rid, "--out", str(out), "--app-for", "linux")
    exec_line = next(line for line in (tmp_path / "aria.desktop").read_text().splitlines()
                     if line.startswith("Exec="))[5:]
    fresh = _fresh(tmp_path, "fresh")
    with AppProcess(fresh, "--workers", "0"):  # the running app the launcher opens the character in
        for _ in range(2):  # the second run finds it installed and installs nothing
            ran = subprocess.run(shlex.split(exec_line), env=fresh, capture_output=True, text=True, timeout=120)
            assert ran.returncode == 0, ran.stderr
            assert f"opened /companion?character={rid} in the running Zishu" in ran.stderr
        registry = json.loads((tmp_path / "fresh" / "registry.json").read_text())["resources"]
        assert list(registry[rid]) == ["1.0.0"]
        assert "already installed" in ran.stderr


def test_zishu_package_links_open_the_install_dialog():
    assert location("zishu://package?path=/home/me/aria.zpkg") == "/characters?package=/home/me/aria.zpkg"
    with pytest.raises(Exception, match="expected zishu://package"):
        location("zishu://package?path=relative/aria.zpkg")
    with pytest.raises(Exception, match="expected zishu://package"):
        location("zishu://package?path=/etc/passwd")


# ---- the app ---------------------------------------------------------------------------------


def test_pack_route_runs_a_job_and_open_then_install(author, tmp_path):
    env, rid, _ = author
    with AppProcess(env) as app:
        answer = app.api("POST", f"/api/characters/{rid}/pack", json={"mode": "reference"})
        assert answer.status_code == 202
        job = app.wait_job(answer.json()["job"]["id"])
        assert job["status"] == "SUCCESS", job
        path = job["result"]["path"]
        assert path == str(tmp_path / "author" / "packages" / "aria-1.0.0.zpkg")
        bad = app.api("POST", f"/api/characters/{rid}/pack", json={"mode": "zipped"})
        assert bad.status_code == 400 and "mode" in bad.json()["error"]["message"]
    with AppProcess(_fresh(tmp_path, "friend")) as app:
        body = Path(path).read_bytes()
        opened = app.api("POST", "/api/packages?name=aria.zpkg", data=body,
                         headers={"Content-Type": "application/octet-stream"})
        assert opened.status_code == 200, opened.text
        assert opened.json()["plan"]["character"]["id"] == rid and opened.json()["plan"]["mode"] == "reference"
        job = app.api("POST", "/api/packages/install", json={"path": opened.json()["path"]}).json()["job"]
        done = app.wait_job(job["id"])
        assert done["status"] == "SUCCESS", done
        assert done["result"]["character"]["version"] == "1.0.0"
        undone = app.api("POST", "/api/packages/undo", json={"id": rid, "version": "1.0.0"}).json()["undone"]
        assert undone == {"id": rid, "removed": "1.0.0", "version": None}
        broken = app.api("POST", "/api/packages?name=x.zpkg", data=b"PK\x03\x04 broken",
                         headers={"Content-Type": "application/octet-stream"})
        assert broken.status_code == 422 and broken.json()["error"]["code"] == "PACKAGE_INVALID"


@pytest.mark.browser
def test_pack_button_and_opening_a_package_in_the_window(author, tmp_path, browser):
    from playwright.sync_api import expect

    env, rid, _ = author
    with AppProcess(env) as app, watched_page(browser, app.login_url) as page:
        page.goto(app_origin(page) + "/characters")
        card = page.get_by_test_id("character-card").filter(has_text="Aria")
        card.get_by_test_id("pack").click()
        dialog = page.get_by_test_id("pack-dialog")
        expect(dialog).to_be_visible()
        dialog.get_by_test_id("pack-mode").select_option("reference")
        dialog.get_by_test_id("pack-start").click()
        expect(dialog.get_by_test_id("pack-status")).to_have_text(re.compile(r"Wrote .*aria-1\.0\.0\.zpkg"),
                                                                  timeout=30_000)
        page.screenshot(path=str(tmp_path / "pack-dialog.png"))
        dialog.get_by_test_id("pack-close").click()
    package = tmp_path / "author" / "packages" / "aria-1.0.0.zpkg"
    with AppProcess(_fresh(tmp_path, "friend")) as app, watched_page(browser, app.login_url) as page:
        page.goto(app_origin(page) + "/characters")
        page.get_by_test_id("open-package").set_input_files(str(package))  # the file chooser
        dialog = page.get_by_test_id("package-dialog")
        expect(dialog.get_by_test_id("package-title")).to_have_text("Install Aria?")
        expect(dialog.get_by_test_id("package-parts")).to_contain_text("qwen/tiny-llm 1.0.0 (model, download)")
        expect(dialog.get_by_test_id("package-budget")).to_contain_text("needs  disk")
        page.screenshot(path=str(tmp_path / "package-dialog.png"))
        page.evaluate("document.documentElement.dataset.theme = 'dark'")
        page.screenshot(path=str(tmp_path / "package-dialog-dark.png"))
        page.evaluate("document.documentElement.dataset.theme = 'light'")
        dialog.get_by_test_id("package-install").click()
        expect(page.get_by_test_id("character-card").filter(has_text="Aria")).to_be_visible(timeout=30_000)
        expect(page.get_by_test_id("toast").last).to_contain_text(f"Installed {rid} 1.0.0")
        page.get_by_test_id("undo").last.click()
        expect(page.get_by_test_id("character-card")).to_have_count(0)
        # drag and drop: the same dialog
        data = base64.b64encode(package.read_bytes()).decode()
        transfer = page.evaluate_handle("""(b64) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], "aria.zpkg"));
            return dt;
        }""", data)
        page.dispatch_event("body", "drop", {"dataTransfer": transfer})
        expect(dialog.get_by_test_id("package-title")).to_have_text("Install Aria?")
        dialog.get_by_test_id("package-close").click()
        # a zishu://package link opens Characters with ?package=PATH
        page.goto(app_origin(page) + location(f"zishu://package?path={package}"))
        expect(dialog.get_by_test_id("package-title")).to_have_text("Install Aria?")

