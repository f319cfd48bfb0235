"""``zishu cluster status`` against a real ``redis-server`` and a real ``zishu worker`` with a
ZISHU_HOME of its own: its host, installed model, running job, free memory and heartbeat, as a table
and as JSON (the shape of ``GET /api/cluster/nodes``); a node whose clock lags shows a stale
heartbeat; and each bad input refused by name."""

from __future__ import annotations

import json
import os
import re
import socket
import time

import pytest
import redis
from click.testing import CliRunner
from rich.console import Console

from conftest import install_resource
from test_cluster import app_queue, plugin_path, redis_url, start_redis, stop, wait, worker  # noqa: F401 (fixtures)
from zishu.cli import cli
from zishu.cluster import nodes
from zishu.commands.cluster import status_table
from zishu.errors import RemoteError, UsageError, exit_status

WIDE = {"COLUMNS": "240"}  # rich folds a table to the terminal's width; a test's is 80


def status(*args: str, env: dict | None = None):
    return CliRunner().invoke(cli, ["cluster", "status", *args], env={**WIDE, **(env or {})})


def heartbeats(url: str, count: int, timeout: float = 30.0, procs=()) -> list[dict]:
    deadline = time.monotonic() + timeout
    while len(found := nodes.status(url)) < count:
        for p in procs:
            assert p.poll() is None, f"worker exited {p.returncode}: {p.stderr.read()}"
        assert time.monotonic() < deadline, f"{len(found)} heartbeats after {timeout} s, expected {count}"
        time.sleep(0.1)
    return found


def test_status_shows_a_real_workers_models_running_job_and_heartbeat(tmp_path, redis_url, app_queue,  # noqa: F811
                                                                      plugin_path):  # noqa: F811
    queue = app_queue(redis_url)
    home = tmp_path / "w1"
    install_resource(home, "alice/tiny-llm", {"format": "gguf", "role": "llm"}, name="Tiny LLM")
    w = worker(tmp_path, "w1", redis_url, plugin_path, queue.home, "--accept", "spin")
    try:
        job = queue.submit("spin", {"seconds": 60})
        wait(queue, job.id, "RUNNING", procs=[w])
        deadline = time.monotonic() + 30
        while not (found := heartbeats(redis_url, 1, procs=[w]))[0]["running"]:  # the next beat lists the job
            assert time.monotonic() < deadline, found
            time.sleep(0.1)

        table = status("--join", redis_url)
        as_json = status("--json", "--join", redis_url)
        queue.cancel(job.id)
    finally:
        stop(w)
    assert table.exit_code == 0, table.output
    text = table.output
    assert f"1 node on {redis_url}" in text
    for column in ("node", "models", "running", "RAM free", "GPU", "load", "heartbeat"):
        assert column in text
    assert socket.gethostname() in text
    assert "alice/tiny-llm@1.0.0" in text
    assert "takes spin" in text
    assert " s ago" in text and "stale" not in text

    assert f"spin #{job.id}" in text  # the running job: its kind and the app's job id
    assert as_json.exit_code == 0, as_json.output
    [node] = json.loads(as_json.output)  # the shape of GET /api/cluster/nodes
    assert node["name"] == socket.gethostname() and node["id"].startswith(f"{socket.gethostname()}:{w.pid}:")
    assert node["models"] == ["alice/tiny-llm@1.0.0"]
    assert node["accepts"] == ["spin"]
    assert node["running"] == [{"job": job.id, "kind": "spin", "model": None}]
    assert node["ram_free"] > 0
    assert 0 <= node["age_seconds"] < nodes.EXPIRES_AFTER + 5 and node["last_heartbeat"].endswith("+00:00")
    assert set(node) >= {"id", "name", "models", "engines", "ram_free", "vram_free", "gpu", "load", "running",
                         "last_heartbeat", "age_seconds"}


def test_a_node_whose_heartbeat_is_older_than_the_ttl_shows_stale(redis_url):  # noqa: F811
    conn = redis.Redis.from_url(redis_url)
    info = nodes.describe("lagging-box:4242:1", "n1", ["image"], [], {"models": ["bob/sd@2.0.0"], "engines": []})
    info["heartbeat"] = time.time() - 10 * nodes.EXPIRES_AFTER  # its clock lags behind this machine's
    nodes.beat(conn, info)
    fresh = nodes.describe("fresh-box:77:1", "n2", ["tts"], [], {"models": [], "engines": []})
    nodes.beat(conn, fresh)

    result = status("--join", redis_url)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    lagging = next(i for i, line in enumerate(lines) if "lagging-box" in line)
    assert "(stale)" in lines[lagging] and "bob/sd@2.0.0" in lines[lagging]
    fresh_line = next(line for line in lines if "fresh-box" in line)
    assert "(stale)" not in fresh_line and " s ago" in fresh_line

    console = Console(record=True, width=200, color_system="truecolor")
    console.print(status_table([nodes.public(n) for n in nodes.status(redis_url)], nodes.EXPIRES_AFTER))
    html = console.export_html(inline_styles=True)
    assert re.search(r'<span style="color: #800000[^"]*font-weight: bold">\d+ s ago \(stale\)', html)  # red


def test_status_with_no_live_node_says_how_to_start_one(redis_url):  # noqa: F811
    result = status("--join", redis_url)
    assert result.exit_code == 0, result.output
    assert f"no live nodes on {redis_url}" in result.output
    assert "zishu worker --join" in result.output
    as_json = status("--json", "--join", redis_url)
    assert json.loads(as_json.output) == []


def test_status_reads_zishu_queue_when_no_join_is_given(redis_url):  # noqa: F811
    result = status(env={"ZISHU_QUEUE": redis_url})
    assert result.exit_code == 0, result.output
    assert f"no live nodes on {redis_url}" in result.output


@pytest.mark.parametrize(("args", "env", "message"), [
    ((), {"ZISHU_QUEUE": ""}, "no cluster: set ZISHU_QUEUE=redis://… or pass --join URL"),
    (("--join", "http://nas.local:6379/0"), {}, "--join 'http://nas.local:6379/0': expected a Redis URL"),
    ((), {"ZISHU_QUEUE": "nas.local:6379"}, "ZISHU_QUEUE 'nas.local:6379': expected a Redis URL"),
])
def test_status_refuses_a_missing_or_wrong_url_by_name(args, env, message):
    result = status(*args, env=env)
    assert result.exit_code == exit_status(UsageError("x")), result.output
    assert message in result.output


def test_status_on_an_unreachable_redis_names_it_without_its_password(tmp_path):
    proc, port = start_redis(tmp_path)
    proc.terminate()
    proc.wait(10)  # the port was free a moment ago and nothing listens on it now
    result = status("--join", f"redis://:hunter2-secret@127.0.0.1:{port}/0")
    assert result.exit_code == exit_status(RemoteError("x")), result.output
    assert f"the cluster's Redis redis://:***@127.0.0.1:{port}/0" in result.output
    assert "hunter2" not in result.output


def test_status_with_the_password_in_zishu_queue_never_prints_it(tmp_path):
    proc, port = start_redis(tmp_path, "--requirepass", "hunter2-secret")
    try:
        url = f"redis://:hunter2-secret@127.0.0.1:{port}/0"
        result = status(env={"ZISHU_QUEUE": url})
        wrong = status("--join", f"redis://:not-it@127.0.0.1:{port}/0")
    finally:
        proc.terminate()
        proc.wait(10)
    assert result.exit_code == 0, result.output
    assert f"no live nodes on redis://:***@127.0.0.1:{port}/0" in result.output and "hunter2" not in result.output
    assert wrong.exit_code == exit_status(RemoteError("x")) and "not-it" not in wrong.output
    assert os.environ.get("ZISHU_QUEUE") != url  # CliRunner's env did not leak into this process


def test_a_heartbeat_reads_the_gpu_with_nvidia_smi_at_most_every_few_seconds(tmp_path, monkeypatch):
    """A node beats every 2 s; nvidia-smi, which takes a good part of a second, runs once per
    GPU_READ_EVERY, and what it said is advertised in between."""
    from zishu.cluster import nodes

    calls = tmp_path / "calls"
    smi = tmp_path / "bin" / "nvidia-smi"
    smi.parent.mkdir()
    smi.write_text(f'#!/bin/sh\necho x >> "{calls}"\necho "NVIDIA H200, 1024, 2048"\n')
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{smi.parent}:{os.environ['PATH']}")
    monkeypatch.setattr(nodes, "_gpu_read", [float("-inf"), None])
    seen = [nodes.describe("w:1", "n", [], [])["gpu"] for _ in range(5)]
    assert seen == [{"name": "NVIDIA H200", "vram_free": 2**30, "vram_total": 2**31}] * 5
    assert calls.read_text().count("x") == 1
    monkeypatch.setattr(nodes, "GPU_READ_EVERY", 0.0)
    nodes.describe("w:1", "n", [], [])
    assert calls.read_text().count("x") == 2
