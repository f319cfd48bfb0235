"""The Nodes panel and the Library's "Wanted models" in headless Chromium against a real ``zishu serve``.

The cluster's JSON API is made to answer what each test needs with Playwright's ``page.route`` (nodes
with and without a GPU, a heartbeat going stale, an error status, bad JSON, no answer at all), so the
pages are shown to survive every failure and to recover by themselves. The last tests drive the real
routes: without a cluster, and with a real ``redis-server``, a real ``zishu worker`` of its own
ZISHU_HOME, and a model no node has that Install puts on this app.

``ZISHU_SCREENSHOTS=folder`` keeps screenshots of both pages, light and dark."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

import pytest
import redis

from conftest import AppProcess, app_origin, install_resource, watched_page

pytestmark = pytest.mark.browser

WAIT = 30_000  # ms
SHOTS = os.environ.get("ZISHU_SCREENSHOTS")
GiB = 2**30
NOW = datetime.now(UTC).isoformat(timespec="seconds")

NODES = {
    "nodes": [
        {"id": "nas.local:812:1733390000", "name": "nas.local", "models": ["zishu/base-model@1.0.0",
                                                                            "alice/sd-tiny@0.2.0"],
         "engines": ["diffusers", "llama-cpp"], "ram_free": 12 * GiB + 300 * 2**20, "vram_free": 20 * GiB,
         "gpu": "NVIDIA GeForce RTX 4090", "load": 0.42,
         "running": [{"job": 17, "kind": "image", "model": "alice/sd-tiny"}],
         "last_heartbeat": NOW, "age_seconds": 1.2},
        {"id": "old-laptop:90:1733391111", "name": "old-laptop", "models": [], "engines": [],
         "ram_free": 3 * GiB, "vram_free": None, "gpu": None, "load": 1.5, "running": [],
         "last_heartbeat": NOW, "age_seconds": 42.0},
    ],
    "queue": "redis://:***@nas.local:6379/0",
}

RANKING = {
    "models": [
        {"model": "zishu/base-model", "queued": 4, "served_hour": 2, "served_day": 11, "unserved": 3, "nodes": [],
         "eta_seconds": None, "installed_here": False},
        {"model": "zishu/big-model", "queued": 1, "served_hour": 5, "served_day": 40, "unserved": 0,
         "nodes": ["nas.local:812:1733390000", "pc:3:4"], "eta_seconds": 95.0, "installed_here": False},
        {"model": "alice/sd-tiny", "queued": 0, "served_hour": 1, "served_day": 3, "unserved": 0,
         "nodes": ["pc:3:4"], "eta_seconds": 0.4, "installed_here": True},
    ],
    "updated": NOW,
}


class FakeApi:
    """What ``page.route`` answers for one API path: ``mode`` is ok, fail (HTTP 500), bad-json or
    hang (no answer; the page gives up on its own); ``calls`` counts the requests."""

    def __init__(self, page, path: str, body: dict) -> None:
        self.body, self.mode, self.calls = body, "ok", 0
        self.held: list = []
        page.route(f"**{path}", self.answer)

    def answer(self, route) -> None:
        self.calls += 1
        if self.mode == "ok":
            route.fulfill(status=200, content_type="application/json", body=json.dumps(self.body))
        elif self.mode == "fail":
            route.fulfill(status=500, content_type="application/json",
                          body=json.dumps({"error": {"code": "INTERNAL", "message": "boom"}}))
        elif self.mode == "bad-json":
            route.fulfill(status=200, content_type="application/json", body='{"models": [')
        else:
            self.held.append(route)  # never answered


@pytest.fixture
def app(app_env):
    env, _server, home = app_env
    install_resource(home, "alice/sd-tiny", {"format": "diffusers", "role": "image"}, name="SD tiny")
    with AppProcess(env) as app:
        yield app


def goto(ui, path: str) -> None:
    ui.goto(app_origin(ui) + path)


def theme(ui, name: str) -> None:
    if ui.evaluate("document.documentElement.dataset.theme") != name:
        ui.get_by_test_id("theme-toggle").click()


def shoot(ui, name: str) -> None:
    if SHOTS:
        ui.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)


def test_nodes_panel_shows_each_node_and_marks_a_late_heartbeat_stale(browser, app):
    from playwright.sync_api import expect

    with watched_page(browser, app.login_url) as ui:
        api = FakeApi(ui, "/api/cluster/nodes", NODES)
        ui.get_by_test_id("nav-nodes").click()
        expect(ui.get_by_test_id("page-title")).to_have_text("Nodes")
        expect(ui.get_by_test_id("nav-nodes")).to_have_class(re.compile(r"\bactive\b"))
        cards = ui.get_by_test_id("node")
        expect(cards).to_have_count(2)
        nas, laptop = cards.nth(0), cards.nth(1)
        expect(nas.get_by_test_id("node-name")).to_have_text("nas.local")
        expect(nas.get_by_test_id("node-id")).to_have_text("nas.local:812:1733390000")
        expect(nas.get_by_test_id("node-gpu")).to_have_text("NVIDIA GeForce RTX 4090")
        expect(nas.get_by_test_id("node-ram")).to_have_text("12.3 GiB")  # formatBytes, as zishu.sizes
        expect(nas.get_by_test_id("node-vram")).to_have_text("20.0 GiB")
        expect(nas.get_by_test_id("node-load")).to_have_text("0.42")
        expect(nas.get_by_test_id("node-models").locator(".chip")).to_have_text(
            ["zishu/base-model@1.0.0", "alice/sd-tiny@0.2.0"])
        expect(nas.get_by_test_id("node-job")).to_have_text(re.compile(r"image\s+alice/sd-tiny\s+#17"))
        expect(nas.get_by_test_id("node-heartbeat")).to_have_text(re.compile(r"^(just now|\d s ago)$"))
        expect(nas).to_have_attribute("data-stale", "false")
        expect(laptop.get_by_test_id("node-gpu")).to_have_text("none")
        expect(laptop.get_by_test_id("node-vram")).to_have_text("—")
        expect(laptop.get_by_test_id("node-models")).to_have_text("No models installed")
        expect(laptop.get_by_test_id("node-running")).to_have_text("Idle")
        expect(laptop.get_by_test_id("node-heartbeat")).to_have_text(re.compile(r"^stale · 4\d s ago$"))
        expect(laptop).to_have_attribute("data-stale", "true")
        expect(ui.get_by_test_id("nodes-queue-url")).to_have_text("redis://:***@nas.local:6379/0")
        expect(ui.get_by_test_id("nodes-empty")).to_be_hidden()
        expect(ui.get_by_test_id("nodes-unavailable")).to_be_hidden()
        theme(ui, "light")
        shoot(ui, "nodes-light")
        theme(ui, "dark")
        shoot(ui, "nodes-dark")

        # the API fails: the cards stay, a quiet note says why, and the heartbeats age into stale
        api.mode = "fail"
        expect(ui.get_by_test_id("nodes-unavailable")).to_contain_text("unavailable right now (HTTP 500)",
                                                                      timeout=WAIT)
        expect(nas).to_have_attribute("data-stale", "true", timeout=WAIT)
        expect(nas.get_by_test_id("node-heartbeat")).to_have_text(re.compile(r"^stale · \d+ s ago$"))
        shoot(ui, "nodes-stale-dark")
        api.mode = "ok"  # and the next good answer puts them right
        expect(nas).to_have_attribute("data-stale", "false", timeout=WAIT)
        expect(ui.get_by_test_id("nodes-unavailable")).to_be_hidden()
        theme(ui, "light")


def test_nodes_panel_stops_polling_while_the_tab_is_hidden(browser, app):
    from playwright.sync_api import expect

    with watched_page(browser, app.login_url) as ui:
        api = FakeApi(ui, "/api/cluster/nodes", NODES)
        goto(ui, "/nodes")
        expect(ui.get_by_test_id("node")).to_have_count(2)
        ui.evaluate("""() => {
            Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
            document.dispatchEvent(new Event("visibilitychange"));
        }""")
        before = api.calls
        ui.wait_for_timeout(4_000)  # longer than the panel's 3 s between reads
        assert api.calls == before
        ui.evaluate("""() => {
            Object.defineProperty(document, "visibilityState", { value: "visible", configurable: true });
            document.dispatchEvent(new Event("visibilitychange"));
        }""")
        deadline = time.monotonic() + 5
        while api.calls == before:  # read again at once on return
            assert time.monotonic() < deadline, "no read after the tab came back"
            ui.wait_for_timeout(100)


def test_nodes_panel_empty_states_say_how_to_add_a_worker(browser, app):
    from playwright.sync_api import expect

    with watched_page(browser, app.login_url) as ui:
        api = FakeApi(ui, "/api/cluster/nodes", {"nodes": [], "queue": "redis://:***@nas.local:6379/0"})
        goto(ui, "/nodes")
        empty = ui.get_by_test_id("nodes-empty")
        expect(empty).to_be_visible()
        expect(ui.get_by_test_id("nodes-empty-title")).to_have_text("No worker is connected")
        expect(empty).to_contain_text("zishu cluster init")
        expect(ui.get_by_test_id("nodes-join-command")).to_have_text(
            "zishu worker --join redis://:***@nas.local:6379/0 --secret-file cluster.secret")
        expect(ui.get_by_test_id("node")).to_have_count(0)
        theme(ui, "dark")
        shoot(ui, "nodes-empty-dark")
        theme(ui, "light")
        api.body = {"nodes": [], "queue": None}
        expect(ui.get_by_test_id("nodes-empty-title")).to_have_text("No cluster yet", timeout=WAIT)
        expect(ui.get_by_test_id("nodes-queue")).to_contain_text("no Redis queue is set (ZISHU_QUEUE)")
        expect(ui.get_by_test_id("nodes-join-command")).to_have_text(
            "zishu worker --join redis://:PASSWORD@HOST:6379/0 --secret-file cluster.secret")
        shoot(ui, "nodes-empty-light")


def test_wanted_models_survive_a_failing_ranking_and_install_through_the_dialog(browser, app):
    from playwright.sync_api import expect

    with watched_page(browser, app.login_url) as ui:
        api = FakeApi(ui, "/api/model-usage/ranking", RANKING)
        api.mode = "fail"  # broken from the first read
        ui.get_by_test_id("nav-library").click()
        note = ui.get_by_test_id("wanted-unavailable")
        expect(note).to_contain_text("The ranking is unavailable right now (HTTP 500)")
        # the rest of the Library works: its list is there and Uninstall goes through
        item = ui.get_by_test_id("library-item").filter(has_text="alice/sd-tiny")
        expect(item).to_have_count(1)
        item.get_by_test_id("uninstall").click()
        ui.get_by_test_id("confirm-ok").click()
        expect(ui.get_by_test_id("library-item")).to_have_count(0)
        expect(ui.get_by_test_id("library-empty")).to_be_visible()
        expect(ui.get_by_test_id("library-count")).to_have_text("0")
        assert app.api("GET", "/api/library").json()["resources"] == []

        api.mode = "ok"  # recovers on the next read
        rows = ui.get_by_test_id("wanted-model")
        expect(rows).to_have_count(3, timeout=WAIT)
        expect(note).to_be_hidden()
        base, big, tiny = rows.nth(0), rows.nth(1), rows.nth(2)
        expect(base.get_by_test_id("wanted-queued")).to_have_text("4")
        expect(base.get_by_test_id("wanted-served")).to_have_text("2 / 11")
        expect(base.get_by_test_id("wanted-unserved")).to_have_text("3")
        expect(base.get_by_test_id("wanted-nodes")).to_have_text("none")
        expect(base.get_by_test_id("wanted-eta")).to_have_text("—")
        expect(big.get_by_test_id("wanted-nodes")).to_have_text("2 nodes")
        expect(big.get_by_test_id("wanted-nodes")).to_have_attribute("title", "nas.local:812:1733390000, pc:3:4")
        expect(big.get_by_test_id("wanted-eta")).to_have_text("2 min")
        expect(tiny.get_by_test_id("wanted-eta")).to_have_text("< 1 s")
        expect(tiny.get_by_test_id("wanted-installed")).to_have_text("Installed here")
        expect(tiny.get_by_test_id("wanted-install")).to_have_count(0)
        expect(base.get_by_test_id("wanted-install")).to_have_text("Install")
        expect(ui.get_by_test_id("wanted-updated")).to_contain_text("updated ")
        theme(ui, "light")
        shoot(ui, "library-wanted-light")
        theme(ui, "dark")
        shoot(ui, "library-wanted-dark")

        for mode, why in (("bad-json", "the answer is not JSON"), ("hang", "no answer within 4 s")):
            api.mode = mode
            expect(note).to_contain_text(f"unavailable right now ({why})", timeout=WAIT)
            expect(ui.get_by_test_id("wanted-table")).to_have_class(re.compile(r"\bstale\b"))
            expect(rows).to_have_count(3)  # the last good ranking stays, dimmed
        shoot(ui, "library-wanted-unavailable-dark")
        theme(ui, "light")
        api.mode = "ok"
        expect(note).to_be_hidden(timeout=WAIT)
        expect(ui.get_by_test_id("wanted-table")).not_to_have_class(re.compile(r"\bstale\b"))

        # Install: the same dialog as a resource's page, then the install job, then "Installed here"
        base.get_by_test_id("wanted-install").click()
        dialog = ui.get_by_test_id("install-dialog")
        expect(dialog).to_be_visible()
        expect(dialog.get_by_test_id("install-title")).to_have_text("Install zishu/base-model")
        expect(dialog.get_by_test_id("install-steps").locator("tbody tr")).to_contain_text("zishu/base-model@1.0.0")
        expect(dialog.get_by_test_id("budget-here")).to_contain_text("this machine")
        dialog.get_by_test_id("install-confirm").click()
        expect(base.get_by_test_id("wanted-installed")).to_have_text("Installed here", timeout=WAIT)
        expect(ui.get_by_test_id("toast").filter(has_text="Installed zishu/base-model")).to_be_visible()
        assert [r["id"] for r in app.api("GET", "/api/library").json()["resources"]] == ["zishu/base-model"]


def test_the_wanted_models_section_adds_nothing_to_a_library_without_a_cluster(browser, app):
    """The real route, on an app with no Redis queue: no models, no error note, the Library as before."""
    from playwright.sync_api import expect

    found = app.api("GET", "/api/model-usage/ranking")
    if found.status_code == 404:
        pytest.skip("GET /api/model-usage/ranking is not on this branch yet (issue 18, cluster routing)")
    assert found.status_code == 200 and found.json()["models"] == []
    with watched_page(browser, app.login_url) as ui:
        goto(ui, "/library")
        expect(ui.get_by_test_id("wanted-empty")).to_be_visible()
        expect(ui.get_by_test_id("wanted-table")).to_be_hidden()
        expect(ui.get_by_test_id("wanted-unavailable")).to_be_hidden()
        expect(ui.get_by_test_id("library-item")).to_have_count(1)
        goto(ui, "/nodes")
        expect(ui.get_by_test_id("nodes-empty-title")).to_have_text("No cluster yet")


def test_the_nodes_panel_shows_a_real_worker_on_a_real_redis(browser, tmp_path, app_env):
    """The real routes: ``zishu serve`` on a Redis queue and a ``zishu worker --join`` with its own
    ZISHU_HOME and an installed model; the panel shows that worker, its model and its heartbeat."""
    from playwright.sync_api import expect

    from test_cluster import start_redis

    env, _server, home = app_env
    proc, port = start_redis(tmp_path)
    url = f"redis://127.0.0.1:{port}/0"
    worker = None
    try:
        with AppProcess({**env, "ZISHU_QUEUE": url}) as app:
            if app.api("GET", "/api/cluster/nodes").status_code == 404:
                pytest.skip("GET /api/cluster/nodes is not on this branch yet (issue 18, cluster routing)")
            whome = tmp_path / "worker"
            install_resource(whome, "alice/tiny-llm", {"format": "gguf", "role": "llm"}, name="Tiny LLM")
            secret = tmp_path / "copied.secret"
            shutil.copy(home / "cluster.secret", secret)
            secret.chmod(0o600)
            wenv = {**os.environ, "ZISHU_HOME": str(whome)}
            wenv.pop("ZISHU_QUEUE", None)
            worker = subprocess.Popen([sys.executable, "-m", "zishu.cli", "worker", "--join", url, "--secret-file",
                                       str(secret)], env=wenv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      text=True)
            threading.Thread(target=worker.stderr.read, daemon=True).start()  # never let its pipe fill
            with watched_page(browser, app.login_url) as ui:
                goto(ui, "/nodes")
                # the app, which runs jobs for the cluster too, is a node of its own without models
                card = ui.get_by_test_id("node").filter(has_text="alice/tiny-llm@1.0.0")
                expect(card).to_have_count(1, timeout=WAIT)
                expect(card.get_by_test_id("node-models").locator(".chip")).to_have_text(["alice/tiny-llm@1.0.0"])
                expect(card.get_by_test_id("node-name")).to_have_text(socket.gethostname())
                expect(card.get_by_test_id("node-id")).to_contain_text(f"{socket.gethostname()}:{worker.pid}:")
                expect(card.get_by_test_id("node-running")).to_have_text("Idle")
                expect(card.get_by_test_id("node-heartbeat")).to_have_text(re.compile(r"^(just now|\d s ago)$"))
                expect(card).to_have_attribute("data-stale", "false")
                expect(ui.get_by_test_id("nodes-queue-url")).to_have_text(url)
                expect(ui.get_by_test_id("nodes-unavailable")).to_be_hidden()
                shoot(ui, "nodes-real-light")
                worker.terminate()  # a worker that stops leaves the panel by itself
                worker.wait(20)
                expect(card).to_have_count(0, timeout=WAIT)
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
            worker.wait()
        proc.terminate()
        proc.wait(10)


def test_wanted_models_from_the_real_ranking_install_what_no_node_has(browser, tmp_path, app_env):
    """The real ranking on a real Redis: a model jobs asked for and no node had shows as wanted,
    unserved, with no node; Install here puts it on this app, which is a node too, and the row says
    so; the Nodes panel then lists the model on the app's node."""
    from playwright.sync_api import expect

    from test_cluster import start_redis

    env, _server, _home = app_env
    proc, port = start_redis(tmp_path)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        with AppProcess({**env, "ZISHU_QUEUE": url}) as app:
            if app.api("GET", "/api/model-usage/ranking").status_code == 404:
                pytest.skip("GET /api/model-usage/ranking is not on this branch yet (issue 18, cluster routing)")
            from zishu.cluster import usage

            conn = redis.Redis.from_url(url)
            for _ in range(2):
                usage.unserved(conn, "zishu/base-model")  # as the app records a job no node could take
            with watched_page(browser, app.login_url) as ui:
                goto(ui, "/library")
                row = ui.get_by_test_id("wanted-model").filter(has_text="zishu/base-model")
                expect(row).to_have_count(1, timeout=WAIT)
                expect(row.get_by_test_id("wanted-unserved")).to_have_text("2")
                expect(row.get_by_test_id("wanted-nodes")).to_have_text("none")
                expect(row.get_by_test_id("wanted-eta")).to_have_text("—")
                expect(ui.get_by_test_id("wanted-unavailable")).to_be_hidden()
                row.get_by_test_id("wanted-install").click()
                ui.get_by_test_id("install-confirm").click()
                expect(row.get_by_test_id("wanted-installed")).to_have_text("Installed here", timeout=WAIT)
                ranked = app.api("GET", "/api/model-usage/ranking").json()["models"]
                assert next(r for r in ranked if r["model"] == "zishu/base-model")["installed_here"] is True
                goto(ui, "/nodes")
                mine = ui.get_by_test_id("node").filter(has_text="zishu/base-model@1.0.0")
                expect(mine).to_have_count(1, timeout=WAIT)  # the app's node advertises it at its next beat
                theme(ui, "dark")
                shoot(ui, "nodes-real-dark")
                theme(ui, "light")
    finally:
        proc.terminate()
        proc.wait(10)
