# ruff: noqa: F811  (the fixtures imported from test_cluster are parameters here)
"""The studio's image job across machines: the app (its own ZISHU_HOME, without the model) submits
a picture; of two ``zishu worker`` processes with ZISHU_HOMEs of their own, only the one that has the
model draws it (a tiny random-weight SD pipeline through the real diffusers engine), and the
picture arrives in the app's gallery, file and row, with its A1111 parameters. What only the app has
travels with the job: a character and a style installed on the app alone, and a picture of the app's
gallery to draw from, named by its id."""

from __future__ import annotations

import time

import pytest
from PIL import Image

from conftest import install_resource
from test_cluster import plugin_path, redis_url, stop, worker  # noqa: F401 (fixtures)
from test_cluster_routing import advertised
from tiny_diffusers import write_tiny_sd
from zishu.studio.metadata import read_parameters

MODEL = "acme/tiny-sd"


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory):
    return write_tiny_sd(tmp_path_factory.mktemp("cluster-sd") / "sd")


def test_an_image_job_is_drawn_by_the_node_with_the_model_and_lands_in_the_apps_gallery(
        tmp_path, redis_url, plugin_path, tiny_sd, monkeypatch):
    from zishu.runtime import Runtime

    app_home = tmp_path / "app"
    monkeypatch.setenv("ZISHU_HOME", str(app_home))
    rt = Runtime(app_home, queue_url=redis_url, accept=[])  # the app draws nothing itself
    procs = []
    try:
        install_resource(tmp_path / "painter", MODEL, {"format": "diffusers", "role": "image", "base_model": "sd15"},
                         files={p.name: p for p in tiny_sd.iterdir()})
        painter = worker(tmp_path, "painter", redis_url, plugin_path, app_home, "--accept", "image")
        idle = worker(tmp_path, "idle", redis_url, plugin_path, app_home, "--accept", "image")
        procs = [painter, idle]
        advertised(redis_url, painter, MODEL, timeout=120)
        advertised(redis_url, idle, None, timeout=120)
        job = rt.jobs.submit("image", {"prompt": "a red cat", "model": MODEL, "width": 64, "height": 64,
                                       "steps": 2, "seed": 7, "batch": 2})
        state = finished(rt, job.id, procs)
        assert state.status == "SUCCESS", state.error
        first = state.as_dict()["result"]["images"][0]["id"]  # an id in the app's gallery, not the node's

        install_resource(app_home, "acme/mei", {"persona": "You are Mei.",
                                                "image_style": {"prompt_prefix": "silver hair, fox ears"}},
                         kind="character", name="Mei")  # on the app alone
        asked = {"prompt": "waving", "character": "acme/mei", "style": "anime", "model": MODEL, "width": 64,
                 "height": 64, "steps": 2, "seed": 9, "init_image": first, "strength": 0.5}
        sent = rt.jobs.submit("image", asked)
        queued = sent.as_dict()["params"]
        assert "character" not in queued and queued["labels"] == {"character": "acme/mei", "style": "anime"}
        assert queued["prompt"].startswith("anime style, silver hair, fox ears, waving")  # expanded on the app
        assert queued["init_image"].startswith("data:image/png;base64,")
        drawn = finished(rt, sent.id, procs)
    finally:
        stop(*procs)
    try:
        assert state.status == "SUCCESS", state.error
        result = state.as_dict()["result"]
        assert "records" not in result and len(result["images"]) == 2
        rows, total = rt.studio.gallery.search("red cat")
        assert total == 2 and sorted(r.seed for r in rows) == [7, 8] and {r.model for r in rows} == {MODEL}
        assert {r.id for r in rows} == {i["id"] for i in result["images"]}  # the app's own rows
        for row in rows:
            path = rt.studio.gallery.path(row)
            assert path.is_relative_to(app_home / "studio")
            with Image.open(path) as png:
                assert png.size == (64, 64) and read_parameters(png.info["parameters"])["Prompt"] == "a red cat"
            assert rt.studio.gallery.reuse(row.id)["seed"] == row.seed
        assert not (tmp_path / "idle" / "studio").exists()  # the node without the model drew nothing

        assert drawn.status == "SUCCESS", drawn.error  # the node has neither the character nor picture 1
        row = rt.studio.gallery.get(drawn.as_dict()["result"]["images"][0]["id"])
        assert (row.character, row.style) == ("acme/mei", "anime")  # the app's gallery says what was asked
        assert row.prompt == queued["prompt"] and row.steps == 2
        assert rt.studio.gallery.search(character="acme/mei")[1] == 1
        assert not (tmp_path / "idle" / "resources").exists()
    finally:
        rt.close()


def finished(rt, job_id: int, procs, timeout: float = 300):
    """The job's row once it has ended, the workers checked alive while it runs."""
    deadline = time.monotonic() + timeout
    while (state := rt.jobs.get(job_id)).status in ("PENDING", "RUNNING"):
        for p in procs:
            assert p.poll() is None, f"worker exited: {p.stderr.read()}"
        assert time.monotonic() < deadline, state.message
        time.sleep(0.1)
    return state
