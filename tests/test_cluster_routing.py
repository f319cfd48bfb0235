# ruff: noqa: F811  (the fixtures imported from test_cluster are parameters here)
"""Routing by model on a real redis-server with real ``zishu worker`` processes, each with a
ZISHU_HOME of its own: a job that needs a model goes only to a node that has it; a node handed one
it lacks answers MODEL_NOT_AVAILABLE at once, downloads nothing, and the app sends the job to a
node that has the model or keeps it waiting ("no node has M", counted unserved) until one shows
up; result files over the Redis limit come back by an authenticated pull; and the JSON API of the
nodes and the ranking, with and without Redis."""

from __future__ import annotations

import hashlib
import socket
import time
from pathlib import Path

import pytest
import redis

from conftest import install_resource
from test_cluster import app_queue, plugin_path, redis_url, stop, wait, worker  # noqa: F401 (fixtures)
from zishu.cluster import nodes, pull, routing, usage
from zishu.errors import ChecksumMismatch, DownloadError
from zishu.jobs import JobQueue

MODEL = "acme/tiny-model"


@pytest.fixture
def render_queue(app_queue):
    """The app's queue with the ``render`` job type (routed by the model it names)."""
    import zishu_test_cluster as jobs

    def make(url: str) -> JobQueue:
        q = app_queue(url)
        q.register("render", jobs.render, remote=True, model=lambda p: p.get("model"))
        return q

    return make


def with_model(tmp_path: Path, name: str) -> Path:
    """A worker's ZISHU_HOME with ``MODEL`` installed as the installer leaves it."""
    home = tmp_path / name
    install_resource(home, MODEL, {"format": "gguf", "role": "llm"})
    return home


def advertised(url: str, proc, model: str | None = MODEL, timeout: float = 60) -> dict:
    """Wait for the node of ``proc`` to advertise (with ``model`` among its models, when given)."""
    deadline = time.monotonic() + timeout
    while True:
        for n in nodes.status(url):
            if n["worker"].split(":")[1] == str(proc.pid) and (model is None or routing.holds(n["models"], model)):
                return n
        assert proc.poll() is None, f"worker exited: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "the worker did not advertise itself"
        time.sleep(0.1)


def test_routes_queues_and_the_choice_of_node():
    assert routing.catalog_model("Acme/Tiny@1.0.0") == "acme/tiny@1.0.0"
    assert routing.catalog_model("/no/such/file.gguf") is None and routing.catalog_model(None) is None
    assert routing.model_route("acme/tiny@1.0.0") == "model:acme/tiny"  # one queue for every version
    assert routing.holds(["acme/tiny@1.0.0"], "acme/tiny") and routing.holds(["acme/tiny@1.0.0"], "acme/tiny@1.0.0")
    assert not routing.holds(["acme/tiny@1.0.0"], "acme/tiny@2.0.0") and not routing.holds([], "acme/tiny")
    assert routing.listen_routes("n1", "h:1:2", ["paint"], ["acme/tiny@1.0.0", "acme/tiny@2.0.0"], True) == [
        "home:n1", "worker:h:1:2", "kind:paint", "model:acme/tiny"]
    assert "model:acme/tiny" not in routing.listen_routes("n1", "h:1:2", ["paint"], ["acme/tiny@1.0.0"], False)
    listing = [{"worker": "a", "accepts": ["render"], "models": ["acme/tiny@1.0.0"], "running": [{}, {}]},
               {"worker": "b", "accepts": ["render"], "models": ["acme/tiny@1.0.0"], "running": []},
               {"worker": "c", "accepts": ["paint"], "models": ["acme/tiny@1.0.0"], "running": []},
               {"worker": "d", "accepts": ["render"], "models": ["acme/other@1.0.0"], "running": []}]
    assert routing.pick(listing, "acme/tiny", "render")["worker"] == "b"  # the least busy that fits
    assert routing.pick(listing, "acme/tiny", "render", refused=["b"])["worker"] == "a"
    assert routing.pick(listing, "acme/tiny", "render", refused=["a", "b"]) is None
    assert routing.pick(listing, "acme/tiny@2.0.0", "render") is None


def test_a_job_for_a_model_goes_only_to_a_node_that_has_it(tmp_path, redis_url, render_queue,
                                                           plugin_path):
    queue = render_queue(redis_url)
    with_model(tmp_path, "has")
    has = worker(tmp_path, "has", redis_url, plugin_path, queue.home, "--accept", "render")
    lacks = worker(tmp_path, "lacks", redis_url, plugin_path, queue.home, "--accept", "render")
    try:
        advertised(redis_url, has)
        advertised(redis_url, lacks, None)
        jobs = [queue.submit("render", {"model": MODEL, "name": f"r{i}"}) for i in range(4)]
        done = [wait(queue, j.id, "SUCCESS", "FAILED", procs=[has, lacks]) for j in jobs]
        assert not (tmp_path / "lacks" / "resources").exists()
        # an install on a running node: at its next heartbeat it advertises the model and listens for it
        stop(has)
        with_model(tmp_path, "lacks")
        advertised(redis_url, lacks)
        later = queue.submit("render", {"model": MODEL, "name": "later"})
        assert wait(queue, later.id, "SUCCESS", procs=[lacks]).as_dict()["result"]["home"] == str(tmp_path / "lacks")
    finally:
        stop(*[p for p in (has, lacks) if p.returncode is None])
    for job in done:
        assert job.status == "SUCCESS", job.error
        result = job.as_dict()["result"]
        assert result["home"] == str(tmp_path / "has") and result["model"] == f"{MODEL}@1.0.0"
        assert job.attempts == 1
    conn = redis.Redis.from_url(redis_url)
    served = {r["model"]: r for r in usage.ranking(conn, [], lambda route: 0, lambda m: False)}
    assert served[MODEL]["served_hour"] == 5 and served[MODEL]["unserved"] == 0


def test_a_node_without_the_model_refuses_at_once_and_the_job_is_rerouted_or_waits(
        tmp_path, redis_url, render_queue, plugin_path):
    queue = render_queue(redis_url)
    slow = {"ZISHU_CLUSTER_HEARTBEAT": "30"}  # its advertisement goes stale on purpose
    stale_home = with_model(tmp_path, "stale")
    stale = worker(tmp_path, "stale", redis_url, plugin_path, queue.home, "--accept", "render", env=slow)
    procs = [stale]
    try:
        advertised(redis_url, stale)
        import shutil

        shutil.rmtree(stale_home / "resources")  # uninstalled after its advertisement
        (stale_home / "registry.json").unlink(missing_ok=True)
        job = queue.submit("render", {"model": MODEL, "name": "first"})
        deadline = time.monotonic() + 30
        while (waiting := queue.get(job.id)).message != f"waiting: no node has {MODEL}":
            assert time.monotonic() < deadline, waiting.message
            time.sleep(0.02)
        conn = redis.Redis.from_url(redis_url)
        [entry] = usage.waiting(conn, queue.node)
        assert entry["job"] == job.id and entry["model"] == MODEL
        # no download on the node that refused: no folder, no partial, no install job
        assert not (stale_home / "resources").exists() and not (stale_home / "partials").exists()

        with_model(tmp_path, "good")
        good = worker(tmp_path, "good", redis_url, plugin_path, queue.home, "--accept", "render")
        procs.append(good)
        done = wait(queue, job.id, "SUCCESS", "FAILED", procs=procs)
        assert done.status == "SUCCESS", done.error
        assert done.as_dict()["result"]["home"] == str(tmp_path / "good")
        assert usage.waiting(conn, queue.node) == []

        again = queue.submit("render", {"model": MODEL, "name": "second"})  # the refusing node listens no more
        assert wait(queue, again.id, "SUCCESS", procs=procs).as_dict()["result"]["home"] == str(tmp_path / "good")

        # the model goes away while a job is loading it: resolution refuses, the node tells the app
        gone = queue.submit("render", {"model": MODEL, "name": "gone", "uninstall_first": True})
        deadline = time.monotonic() + 60
        while (state := queue.get(gone.id)).message != f"waiting: no node has {MODEL}":
            assert state.status in ("PENDING", "RUNNING") and time.monotonic() < deadline, (state.status,
                                                                                         state.message)
            time.sleep(0.02)
        assert not (tmp_path / "good" / "resources" / MODEL).exists()
        ranked = {r["model"]: r for r in usage.ranking(conn, nodes.listing(conn), lambda route: 0,
                                                         lambda m: False)}[MODEL]
        assert ranked["unserved"] == 2 and ranked["served_hour"] == 2 and ranked["queued"] == 1
    finally:
        log = stop(*procs)
    assert "MODEL_NOT_AVAILABLE" in log


def test_a_stale_pick_is_refused_and_sent_to_the_node_that_has_the_model(tmp_path, redis_url, render_queue,
                                                                        plugin_path):
    queue = render_queue(redis_url)
    with_model(tmp_path, "good")
    good = worker(tmp_path, "good", redis_url, plugin_path, queue.home, "--accept", "render")
    lacks = worker(tmp_path, "lacks", redis_url, plugin_path, queue.home, "--accept", "render")
    try:
        advertised(redis_url, good)
        lacking = advertised(redis_url, lacks, None)["worker"]
        from zishu.jobs import records

        made = records.create("render", "render", {"model": MODEL, "name": "picked"}, 0)
        queue._enqueue(made.id, 0, None, route=routing.worker_route(lacking))  # as a stale advertisement would
        done = wait(queue, made.id, "SUCCESS", "FAILED", procs=[good, lacks])
    finally:
        log = stop(good, lacks)
    assert done.status == "SUCCESS", done.error
    assert done.as_dict()["result"]["home"] == str(tmp_path / "good")
    assert "refused job" in log and "MODEL_NOT_AVAILABLE" in log
    assert not (tmp_path / "lacks" / "resources").exists()


def test_a_file_over_the_redis_limit_comes_back_by_a_signed_pull(tmp_path, redis_url, render_queue,
                                                                 plugin_path):
    queue = render_queue(redis_url)
    with_model(tmp_path, "w1")
    w = worker(tmp_path, "w1", redis_url, plugin_path, queue.home, "--accept", "render")
    size = 64 * 1024 * 1024 + 1  # just over the limit; written sparse, so quick
    try:
        job = queue.submit("render", {"model": MODEL, "name": "big", "size": size})
        done = wait(queue, job.id, "SUCCESS", "FAILED", procs=[w], timeout=120)
    finally:
        stop(w)
    assert done.status == "SUCCESS", done.error
    got = queue.home / "outputs/render/big.bin"
    assert got.stat().st_size == size
    assert pull.sha256_file(got) == hashlib.sha256(bytes(size)).hexdigest()
    assert not list(got.parent.glob(".*.tmp"))


def test_a_pull_needs_the_token_and_a_changed_file_never_lands(tmp_path):
    home = tmp_path / "worker"
    (home / "out").mkdir(parents=True)
    (home / "out/a.bin").write_bytes(b"x" * 5000)
    server = pull.FileOffer(home, "s" * 40, "127.0.0.1")
    try:
        offered = server.offer("out/a.bin")
        app = tmp_path / "app"
        assert pull.fetch(app, offered, "s" * 40).read_bytes() == b"x" * 5000
        for bad in ({**offered, "token": "0" * 64},
                    {**offered, "url": offered["url"].replace("path=out/a.bin", "path=out/b.bin")},
                    {**offered, "url": offered["url"].replace("expires=", "expires=9")},
                    {**offered, "token": pull.sign("another-secret" * 3, offered["sha256"], "out/a.bin",
                                                   offered["expires"])}):
            with pytest.raises(DownloadError, match="answered 403"):
                pull.fetch(tmp_path / "elsewhere", bad, "s" * 40)
        (home / "out/a.bin").write_bytes(b"y" * 5000)  # changed after it was offered
        with pytest.raises(ChecksumMismatch, match="expected 5000 bytes with sha256"):
            pull.fetch(tmp_path / "third", offered, "s" * 40)
        assert not (tmp_path / "third/out/a.bin").exists() and not list((tmp_path / "third/out").glob("*"))
    finally:
        server.close()


def test_the_nodes_and_ranking_api_without_redis(runtime):
    from zishu.web.app import create_app

    client = create_app(runtime, "s3cret").test_client()
    assert client.get("/api/model-usage/ranking").status_code in (401, 403)  # behind the secret
    client.environ_base.update(HTTP_X_ZISHU_TOKEN="s3cret")
    ranking = client.get("/api/model-usage/ranking")
    assert ranking.status_code == 200 and ranking.json["models"] == [] and ranking.json["updated"].endswith("+00:00")
    assert client.get("/api/cluster/nodes").json == {"nodes": [], "queue": None}


def test_the_nodes_and_ranking_api_on_a_cluster(tmp_path, redis_url, plugin_path, monkeypatch):
    from zishu.runtime import Runtime
    from zishu.web.app import create_app

    app_home = tmp_path / "app"
    install_resource(app_home, "acme/other", {"format": "gguf", "role": "llm"})
    monkeypatch.setenv("ZISHU_HOME", str(app_home))
    rt = Runtime(app_home, queue_url=redis_url, accept=[])
    try:
        with_model(tmp_path, "w1")
        w = worker(tmp_path, "w1", redis_url, plugin_path, app_home, "--accept", "render")
        try:
            advertised(redis_url, w)
            conn = redis.Redis.from_url(redis_url)
            usage.unserved(conn, "acme/wanted")
            usage.unserved(conn, "acme/wanted")
            usage.served(conn, MODEL, 2.0)
            usage.served(conn, MODEL, 4.0, now=time.time() - 2 * 3600)  # yesterday's hour: day only
            client = create_app(rt, "s3cret").test_client()
            client.environ_base.update(HTTP_X_ZISHU_TOKEN="s3cret")
            listed = client.get("/api/cluster/nodes").json
            assert listed["queue"] == redis_url
            [node] = [n for n in listed["nodes"] if n["id"].split(":")[1] == str(w.pid)]
            assert f"{MODEL}@1.0.0" in node["models"] and node["running"] == [] and node["ram_free"] > 0
            assert node["age_seconds"] < nodes.EXPIRES_AFTER and node["last_heartbeat"].endswith("+00:00")
            assert set(node) >= {"id", "name", "models", "engines", "ram_free", "vram_free", "gpu", "load",
                                 "running", "last_heartbeat", "age_seconds"}
            ranked = client.get("/api/model-usage/ranking").json["models"]
        finally:
            stop(w)
    finally:
        rt.close()
    assert [r["model"] for r in ranked][:2] == ["acme/wanted", MODEL]  # unserved demand first
    wanted, tiny = ranked[0], ranked[1]
    assert wanted == {"model": "acme/wanted", "queued": 0, "served_hour": 0, "served_day": 0, "unserved": 2,
                      "nodes": [], "eta_seconds": None, "installed_here": False}
    assert tiny["served_hour"] == 1 and tiny["served_day"] == 2 and len(tiny["nodes"]) == 1
    assert tiny["eta_seconds"] == 3.0 and tiny["installed_here"] is False  # (0 queued / 1 node + 1) × 3 s


def test_a_redis_that_does_not_answer_is_a_clear_error_not_a_500(tmp_path, monkeypatch):
    from zishu.runtime import Runtime
    from zishu.web.app import create_app

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("ZISHU_HOME", str(tmp_path / "app"))
    rt = Runtime(tmp_path / "app", queue_url=f"redis://:hunter2@127.0.0.1:{port}/0", accept=[])
    try:
        client = create_app(rt, "s3cret").test_client()
        client.environ_base.update(HTTP_X_ZISHU_TOKEN="s3cret")
        for path in ("/api/model-usage/ranking", "/api/cluster/nodes"):
            answer = client.get(path)
            assert answer.status_code == 502 and answer.json["error"]["code"] == "REMOTE_FAILED"
            assert "the cluster's Redis redis://:***@127.0.0.1" in answer.json["error"]["message"]
            assert "hunter2" not in answer.get_data(as_text=True)
    finally:
        rt.close()


def test_a_job_type_a_node_does_not_accept_found_in_a_models_queue_is_sent_back(tmp_path, redis_url, render_queue,
                                                                               plugin_path):
    """A node that draws images with the model listens to its queue; a ``render`` job for the same
    model is not one its user enabled: it refuses it (NOT_ACCEPTED) rather than drop or run it."""
    queue = render_queue(redis_url)
    with_model(tmp_path, "imager")
    imager = worker(tmp_path, "imager", redis_url, plugin_path, queue.home, "--accept", "image")
    procs = [imager]
    try:
        advertised(redis_url, imager)
        job = queue.submit("render", {"model": MODEL, "name": "not-for-imager"})
        deadline = time.monotonic() + 30
        while usage.waiting(redis.Redis.from_url(redis_url), queue.node) == []:
            assert time.monotonic() < deadline, queue.get(job.id).message
            time.sleep(0.02)
        assert queue.get(job.id).status == "PENDING"
        with_model(tmp_path, "renderer")
        renderer = worker(tmp_path, "renderer", redis_url, plugin_path, queue.home, "--accept", "render")
        procs.append(renderer)
        done = wait(queue, job.id, "SUCCESS", "FAILED", procs=procs)
    finally:
        log = stop(*procs)
    assert done.status == "SUCCESS" and done.as_dict()["result"]["home"] == str(tmp_path / "renderer")
    assert "NOT_ACCEPTED" in log and not (tmp_path / "imager" / "outputs").exists()
