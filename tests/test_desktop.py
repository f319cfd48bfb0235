"""The desktop shell: a real pywebview (Qt) window under Xvfb, the no-display fallback, zishu open
reaching a running app, and the zishu:// scheme registration."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from zishu import desktop, urlscheme

WINDOW_FLAGS = "--no-sandbox --disable-gpu"


def _window_env(tmp_path: Path, display: str) -> dict:
    env = {**os.environ, "ZISHU_HOME": str(tmp_path / "home"), "DISPLAY": display,
           "QTWEBENGINE_CHROMIUM_FLAGS": WINDOW_FLAGS, "ZISHU_NO_URL_SCHEME": "1"}
    for name in ("WAYLAND_DISPLAY", "ZISHU_QUEUE", "XAUTHORITY"):
        env.pop(name, None)
    return env


@pytest.fixture(scope="module")
def xvfb():
    """A private X server (Xvfb) on a free display number; yields DISPLAY."""
    if not shutil.which("Xvfb"):
        pytest.skip("Xvfb is not installed (make test installs it: scripts/ensure-system-packages.sh)")
    if importlib.util.find_spec("PyQt6") is None or importlib.util.find_spec("PyQt6.QtWebEngineWidgets") is None:
        pytest.skip("PyQt6-WebEngine is not installed (pip install 'zishu[desktop]')")
    for number in range(90 + os.getpid() % 300, 1000):
        if Path(f"/tmp/.X{number}-lock").exists() or Path(f"/tmp/.X11-unix/X{number}").exists():
            continue
        proc = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1440x900x24", "-nolisten", "tcp"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while proc.poll() is None and not Path(f"/tmp/.X11-unix/X{number}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.poll() is None and Path(f"/tmp/.X11-unix/X{number}").exists():
            break
        proc.kill()
        proc.wait()
    else:
        pytest.fail("no free X display number for Xvfb")
    yield f":{number}"
    _stop(proc)


def _zishu(*args: str, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zishu.cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


@contextlib.contextmanager
def _running(args: list[str], env: dict):
    proc = subprocess.Popen([sys.executable, "-m", "zishu.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_window_check_loads_the_app_and_screenshots_it(xvfb, tmp_path):
    from PIL import Image

    png = tmp_path / "window.png"
    done = _zishu("app", "--check", str(png), env=_window_env(tmp_path, xvfb))
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["loaded"] is True
    assert desktop.TITLE in report["title"]
    assert report["path"] == "/discover"  # "/" leads there; the secret was traded for a cookie
    assert report["screenshot"] == str(png)
    with Image.open(png) as image:
        assert image.format == "PNG"
        assert image.size == tuple(report["size"]) == desktop.WINDOW_SIZE
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
        assert colours is None or len(colours) > 1, "the screenshot is one flat colour"


def test_without_a_display_it_says_so_and_serves_for_a_browser(tmp_path):
    env = {**os.environ, "ZISHU_HOME": str(tmp_path / "home")}
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "ZISHU_QUEUE"):
        env.pop(name, None)
    with _running(["app"], env) as proc:
        url = proc.stdout.readline().strip()
        assert "?token=" in url, proc.stderr.read() if proc.poll() is not None else url
        base, _, secret = url.partition("?token=")
        answer = requests.get(base.rstrip("/") + "/api/health", headers={"X-Zishu-Token": secret}, timeout=30)
        assert answer.status_code == 200 and answer.json()["ok"] is True
        proc.terminate()
        proc.wait(30)
        said = " ".join(proc.stderr.read().split())
    assert "No display is available" in said and "Serving for a browser instead" in said
    assert "Traceback" not in said


def test_check_without_a_display_fails_with_the_reason(tmp_path):
    env = {**os.environ, "ZISHU_HOME": str(tmp_path / "home")}
    for name in ("DISPLAY", "WAYLAND_DISPLAY"):
        env.pop(name, None)
    done = _zishu("app", "--check", str(tmp_path / "x.png"), env=env, timeout=60)
    assert done.returncode == 1
    assert "No display is available" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "x.png").exists()


def _app_json(home: Path, proc: subprocess.Popen) -> dict:
    deadline = time.monotonic() + 60
    while not (home / "app.json").exists():
        assert proc.poll() is None, f"zishu app exited {proc.returncode}: {proc.stderr.read()[-4000:]}"
        assert time.monotonic() < deadline, "zishu app did not start within 60 s"
        time.sleep(0.1)
    return json.loads((home / "app.json").read_text())


def test_zishu_open_shows_the_link_in_the_running_window(xvfb, tmp_path):
    env = _window_env(tmp_path, xvfb)
    home = Path(env["ZISHU_HOME"])
    with _running(["app"], env) as app:
        info = _app_json(home, app)
        window = info["url"].rstrip("/") + "/api/window"
        headers = {"X-Zishu-Token": info["secret"]}
        done = _zishu("open", "zishu://resource/zishu/hero", env=env, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "in the Zishu window" in done.stderr
        deadline = time.monotonic() + 60
        while (shown := requests.get(window, headers=headers, timeout=30).json()["path"]) != "/resources/zishu/hero":
            assert time.monotonic() < deadline, f"the window still shows {shown!r}"
            time.sleep(0.1)
        # the route is guarded like every other, and only takes paths in this app
        assert requests.post(window + "/open", json={"path": "/discover"}, timeout=30).status_code == 403
        refused = requests.post(window + "/open", json={"path": "https://example.com/"}, headers=headers, timeout=30)
        assert refused.status_code == 400
        app.terminate()  # SIGTERM closes the window: a clean stop
        assert app.wait(60) == 0
    assert not (home / "app.json").exists()


def test_zishu_open_without_a_window_falls_back_to_the_browser(tmp_path):
    env = {**os.environ, "ZISHU_HOME": str(tmp_path / "home")}
    env.pop("ZISHU_QUEUE", None)
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser"
    browser.write_text(f'#!/bin/sh\necho "$1" > {opened}\n')
    browser.chmod(0o755)
    with _running(["serve"], env) as serve:
        url = serve.stdout.readline().strip()
        base, _, secret = url.partition("?token=")
        assert requests.post(base.rstrip("/") + "/api/window/open", json={"path": "/discover"},
                             headers={"X-Zishu-Token": secret}, timeout=30).status_code == 404
        done = _zishu("open", "zishu://install/zishu/hero", env={**env, "BROWSER": f"{browser} %s"}, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "in the running Zishu" in done.stderr
        deadline = time.monotonic() + 30
        while not opened.exists():
            assert time.monotonic() < deadline, "the browser was not started"
            time.sleep(0.05)
    assert opened.read_text().strip() == f"{base.rstrip('/')}/resources/zishu/hero?install=zishu/hero&token={secret}"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the .desktop registration is Linux's")
def test_url_scheme_registration_writes_a_desktop_file_once(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))  # no xdg-mime here: only the file is written
    said = urlscheme.register()
    entry = tmp_path / "data" / "applications" / "zishu-url-handler.desktop"
    assert said == f"registered by {entry}"
    lines = entry.read_text().splitlines()
    assert lines[0] == "[Desktop Entry]"
    assert f"Exec={sys.executable} -m zishu.cli open %u" in lines
    assert "MimeType=x-scheme-handler/zishu;" in lines
    assert "NoDisplay=true" in lines and "Type=Application" in lines
    before = entry.stat().st_mtime_ns
    os.utime(entry, ns=(before - 10**9, before - 10**9))
    assert urlscheme.register() == f"already registered by {entry}"
    assert entry.stat().st_mtime_ns == before - 10**9  # not rewritten


def test_url_scheme_exec_quotes_paths_with_spaces(monkeypatch):
    monkeypatch.setattr(sys, "executable", '/opt/my apps/py"thon')
    assert 'Exec="/opt/my apps/py\\\\"thon" -m zishu.cli open %u' in urlscheme.desktop_entry().splitlines()
