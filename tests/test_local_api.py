"""The local API for other tools (Settings, "Local API"): a fixed port that survives restarts, a key
kept across restarts until rotated (a 0600 file where the machine has no keyring), CORS for the
allowed origins only, and only the tool routes on that port."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest
import requests

from conftest import AppProcess


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def api_env(tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "ZISHU_HOME": str(home), "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    env.pop("ZISHU_QUEUE", None)
    return env, home


def _enable(env: dict, port: int, origins: list[str]) -> None:
    with AppProcess(env, "--workers", "0") as app:
        answer = app.api("PUT", "/api/settings", json={"local_api_enabled": True, "local_api_port": port,
                                                       "local_api_origins": origins})
        assert answer.status_code == 200, answer.text
        state = app.api("GET", "/api/local-api").json()
        assert state["enabled"] and state["port"] == port and state["listening"] is None
        assert state["restart_needed"] is True


def test_fixed_port_and_key_survive_a_restart_and_a_rotated_key_refuses_the_old_one(api_env):
    env, home = api_env
    port = _free_port()
    _enable(env, port, [])
    with AppProcess(env, "--workers", "0") as app:
        state = app.api("GET", "/api/local-api").json()
        assert state["listening"] == f"http://127.0.0.1:{port}" and state["restart_needed"] is False
        key = state["key"]
        assert key.startswith("zk-") and state["key_kept_in"] == str(home / "api_key")
        assert f":{port}" not in app.url  # the window keeps its own per-launch port
        models = requests.get(f"http://127.0.0.1:{port}/v1/models", headers={"Authorization": f"Bearer {key}"},
                              timeout=30)
        assert models.status_code == 200 and models.json()["object"] == "list"
    with AppProcess(env, "--workers", "0") as app:  # restarted: same port, same key
        assert requests.get(f"http://127.0.0.1:{port}/v1/models", headers={"Authorization": f"Bearer {key}"},
                            timeout=30).status_code == 200
        new = app.api("POST", "/api/local-api/key").json()["key"]
        assert new != key
        old = requests.get(f"http://127.0.0.1:{port}/v1/models", headers={"Authorization": f"Bearer {key}"},
                           timeout=30)
        assert old.status_code == 401 and old.json()["error"]["code"] == "INVALID_API_KEY"
        assert requests.get(f"http://127.0.0.1:{port}/v1/models", headers={"Authorization": f"Bearer {new}"},
                            timeout=30).status_code == 200
    key_file = Path(home) / "api_key"
    assert key_file.read_text().strip() == new
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert new not in (Path(home) / "zishu.db").read_bytes().decode("latin-1")  # never in the settings


def test_only_tool_routes_with_the_key_and_cors_for_allowed_origins_only(api_env):
    env, _ = api_env
    port = _free_port()
    allowed = "http://127.0.0.1:8000"
    _enable(env, port, [allowed])
    base = f"http://127.0.0.1:{port}"
    with AppProcess(env, "--workers", "0") as app:
        key = app.api("GET", "/api/local-api").json()["key"]
        auth = {"Authorization": f"Bearer {key}"}
        # the window's secret is not the key, and the window's own routes are not on this port
        assert requests.get(f"{base}/v1/models", headers={"Authorization": f"Bearer {app.secret}"},
                            timeout=30).status_code == 401
        assert requests.get(f"{base}/v1/models", headers={"X-Zishu-Token": key}, timeout=30).status_code == 401
        assert requests.get(f"{base}/api/settings", headers=auth, timeout=30).status_code == 404
        assert requests.get(f"{base}/settings", headers=auth, timeout=30).status_code == 404
        # and the key does not open the window's port
        assert requests.get(f"{app.url}/v1/models", headers=auth, timeout=30).status_code == 403
        # a preflight from the allowed origin: 204 with the CORS headers, no key needed
        pre = requests.options(f"{base}/v1/chat/completions", timeout=30, headers={
            "Origin": allowed, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        assert pre.status_code == 204
        assert pre.headers["Access-Control-Allow-Origin"] == allowed
        assert "Authorization" in pre.headers["Access-Control-Allow-Headers"]
        got = requests.get(f"{base}/v1/models", headers={**auth, "Origin": allowed}, timeout=30)
        assert got.status_code == 200 and got.headers["Access-Control-Allow-Origin"] == allowed
        # any other origin: refused, and no CORS header that would let its page read the answer
        for method in ("OPTIONS", "GET"):
            other = requests.request(method, f"{base}/v1/models", timeout=30, headers={
                **auth, "Origin": "http://evil.example", "Access-Control-Request-Method": "GET"})
            assert other.status_code == 403
            assert not any(h.lower().startswith("access-control-") for h in other.headers)
        # origins apply at once when changed in Settings
        assert app.api("PUT", "/api/settings", json={"local_api_origins": []}).status_code == 200
        assert requests.get(f"{base}/v1/models", headers={**auth, "Origin": allowed}, timeout=30).status_code == 403


def test_local_api_settings_are_checked_by_name(api_env):
    env, _ = api_env
    with AppProcess(env, "--workers", "0") as app:
        for body, words in (({"local_api_port": 80}, "local_api_port"),
                            ({"local_api_enabled": "yes"}, "local_api_enabled"),
                            ({"local_api_origins": ["http://x:1/path"]}, "local_api_origins")):
            answer = app.api("PUT", "/api/settings", json=body)
            assert answer.status_code == 400 and words in answer.json()["error"]["message"], answer.text
        assert app.api("GET", "/api/local-api").json()["enabled"] is False


@pytest.mark.browser
def test_settings_local_api_section_saves_shows_and_rotates_the_key(browser, api_env, tmp_path):
    from playwright.sync_api import expect

    from conftest import app_origin, watched_page

    env, _ = api_env
    port = _free_port()
    with AppProcess(env, "--workers", "0") as app, watched_page(browser, app.login_url) as page:
        page.goto(app_origin(page) + "/settings")
        section = page.get_by_test_id("local-api-settings")
        key = section.get_by_test_id("local-api-key")
        expect(key).to_have_value(app.api("GET", "/api/local-api").json()["key"])
        expect(section.get_by_test_id("local-api-status")).to_contain_text("Not listening")
        section.get_by_test_id("local-api-enabled").check()
        section.get_by_test_id("local-api-port").fill(str(port))
        section.get_by_test_id("local-api-origins").fill("http://127.0.0.1:8000\nhttp://localhost:8000")
        section.get_by_test_id("save-local-api").click()
        expect(page.get_by_test_id("toast").last).to_contain_text("Local API settings saved.")
        expect(section.get_by_test_id("local-api-status")).to_contain_text("restart Zishu")
        saved = app.api("GET", "/api/settings").json()
        assert saved["local_api_enabled"] is True and saved["local_api_port"] == port
        assert saved["local_api_origins"] == ["http://127.0.0.1:8000", "http://localhost:8000"]
        old = key.input_value()
        section.get_by_test_id("local-api-rotate").click()
        expect(page.get_by_test_id("toast").last).to_contain_text("old one no longer works")
        expect(key).not_to_have_value(old)
        assert key.input_value() == app.api("GET", "/api/local-api").json()["key"]
        section.get_by_test_id("local-api-port").fill("80")
        section.get_by_test_id("save-local-api").click()
        expect(page.get_by_test_id("toast").last).to_contain_text("local_api_port")
        page.reload()
        expect(section.get_by_test_id("local-api-origins")).to_have_value("http://127.0.0.1:8000\nhttp://localhost:8000")
        section.screenshot(path=str(tmp_path / "local-api-light.png"))
        page.evaluate("document.documentElement.dataset.theme = 'dark'")
        section.screenshot(path=str(tmp_path / "local-api-dark.png"))
        print("screenshots in", tmp_path)
