"""Plugins from entry points: one that fails at import, one that raises in a hook and one that adds a
panel and a job type, installed as a real distribution (a .dist-info on the path) for the host."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import AppProcess, install_test_plugins


@pytest.fixture
def plugin_env(app_env, tmp_path):
    env, server, home = app_env
    return {**env, "PYTHONPATH": install_test_plugins(tmp_path / "site")}, server, home


def zishu(env, *args):
    return subprocess.run([sys.executable, "-m", "zishu.cli", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def test_zishu_plugins_lists_the_failed_ones_with_their_errors(plugin_env):
    env, _, _ = plugin_env
    listed = {p["name"]: p for p in json.loads(zishu(env, "plugins", "--json").stdout)}
    assert listed["broken"]["status"] == "failed"
    assert "RuntimeError: this plugin is broken on purpose" in listed["broken"]["error"]
    assert listed["angry"]["status"] == "failed"
    assert "register_job_types raised ValueError: angry plugin refuses to register" in listed["angry"]["error"]
    assert listed["panel"]["status"] == "loaded" and listed["panel"]["version"] == "1.0.0"
    assert listed["panel"]["hooks"] == ["register_engines", "register_job_types", "register_routes"]
    assert listed["angry"]["hooks"] == ["on_job_start", "register_job_types"]
    assert listed["zishu.resources.jobs"]["internal"] and listed["zishu.resources.jobs"]["status"] == "loaded"
    table = zishu(env, "plugins")
    assert table.returncode == 0 and "broken" in table.stdout and "failed" in table.stdout


def test_the_app_works_around_failed_plugins_and_shows_them(plugin_env):
    env, _, _ = plugin_env
    with AppProcess(env) as app:
        listed = {p["name"]: p for p in app.api("GET", "/api/plugins").json()["plugins"]}
        assert listed["broken"]["status"] == "failed" and "broken on purpose" in listed["broken"]["error"]
        # everything else still works: search, installs, the plugin's own panel and job type
        assert app.api("GET", "/api/catalog/search", params={"q": "hero"}).json()["total"] == 1
        job = app.api("POST", "/api/installs", json={"request": "zishu/hero"}).json()["job"]
        assert app.wait_job(job["id"])["status"] == "SUCCESS"  # though a plugin raised in on_job_start
        angry = {p["name"]: p for p in app.api("GET", "/api/plugins").json()["plugins"]}["angry"]
        assert angry["error"] == f"on_job_start raised RuntimeError: angry plugin shouts at job {job['id']}"
        assert "Hello from a plugin" in app.api("GET", "/plugins/hello/").text
        shout = app.api("POST", "/api/jobs", json={"kind": "shout", "params": {"text": "hi"}}).json()["job"]
        assert shout["title"] == "Shout hi" and app.wait_job(shout["id"])["result"] == "HI"
        page = app.api("GET", "/plugins").text
        assert "broken on purpose" in page and 'href="/plugins/hello/"' in page


def test_disabled_plugins_stay_disabled_across_restarts(plugin_env):
    env, _, _ = plugin_env
    with AppProcess(env) as app:
        r = app.api("POST", "/api/plugins/panel/disable")
        assert r.json() == {"name": "panel", "disabled": True, "restart_needed": True}
        assert app.api("POST", "/api/plugins/zishu.web.panels/disable").status_code == 400
        assert app.api("POST", "/api/plugins/nope/disable").status_code == 404
    with AppProcess(env) as app:
        listed = {p["name"]: p for p in app.api("GET", "/api/plugins").json()["plugins"]}
        assert listed["panel"]["status"] == "disabled"
        assert app.api("GET", "/plugins/hello/").status_code == 404
        app.api("POST", "/api/plugins/panel/enable")
    with AppProcess(env) as app:
        assert app.api("GET", "/plugins/hello/").status_code == 200


def test_the_allow_list_loads_only_the_named_plugins(plugin_env):
    env, _, _ = plugin_env
    shown = zishu({**env, "ZISHU_LOAD_PLUGINS": "panel"}, "plugins", "--json")
    listed = {p["name"]: p for p in json.loads(shown.stdout)}
    assert listed["panel"]["status"] == "loaded"
    assert listed["broken"]["status"] == listed["angry"]["status"] == "not allowed"
    assert listed["zishu.web.panels"]["status"] == "loaded"  # the core is not a plugin one can forget


def test_a_plugin_engine_shows_in_zishu_engines(plugin_env):
    env, _, _ = plugin_env
    listed = json.loads(zishu(env, "engines", "--json").stdout)
    (echo,) = [e for e in listed["engines"] if e["name"] == "echo"]
    assert echo["kind"] == "llm" and echo["formats"] == ["gguf"] and echo["capabilities"] == ["streaming"]
    assert "broken on purpose" in listed["failed_plugins"]["broken"]


def test_the_engines_panel_lists_plugin_engines_and_memory(plugin_env):
    env, _, _ = plugin_env
    with AppProcess(env) as app:
        state = app.api("GET", "/api/engines").json()
        names = [e["name"] for e in state["engines"]]
        # the built-in engines are plugins like any other: they list beside the third parties'
        assert {"echo", "grumpy", "llama-cpp", "espeak-ng", "piper", "funasr", "diffusers"} <= set(names)
        assert names.count("echo") == 1
        assert state["loaded"] == [] and state["ram_used"] == 0 and state["ram_budget"] > 0
        assert app.api("POST", "/api/engines/unload", json={}).json()["unloaded"] == []
        assert app.api("POST", "/api/engines/unload", json={"engine": 3}).status_code == 400
        page = app.api("GET", "/engines").text
        assert 'data-name="echo"' in page and "No model is loaded" in page and 'href="/engines"' in page


def test_a_plugin_engine_that_raises_on_load_is_reported_and_the_host_keeps_working(plugin_env, tmp_path):
    env, _, _ = plugin_env
    model = tmp_path / "tiny.gguf"
    model.write_bytes(b"GGUF" + bytes(60))
    failed = zishu(env, "run", "llm", "--engine", "grumpy", "--model", str(model), "hello")
    assert failed.returncode == 11, failed.stderr
    assert "the grumpy engine failed to load" in failed.stderr
    assert "RuntimeError: grumpy refuses to load tiny.gguf" in failed.stderr
    # the other engines, the engine list and the app go on working
    listed = json.loads(zishu(env, "engines", "--json").stdout)
    assert {"grumpy", "echo"} <= {e["name"] for e in listed["engines"]}
    with AppProcess(env) as app:
        assert "grumpy" in {e["name"] for e in app.api("GET", "/api/engines").json()["engines"]}
        assert app.api("GET", "/api/catalog/search", params={"q": "hero"}).json()["total"] == 1
