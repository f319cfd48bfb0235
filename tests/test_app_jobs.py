"""Jobs through the running app: a killed app's install goes on by itself at the next start, an
install waits out a network outage until cancelled (and stays cancelled); a Redis queue lets a
separate ``zishu worker`` process run the jobs."""

from __future__ import annotations

import shutil
import socket
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import AppProcess, trickle


def test_an_install_running_when_the_app_is_killed_goes_on_by_itself_at_the_next_start(app_env):
    env, server, home = app_env
    server.faults["/files/big.bin"] = trickle(1_500_000)
    with AppProcess(env) as app:
        job = app.api("POST", "/api/installs", json={"request": "zishu/big-model"}).json()["job"]
        deadline = time.monotonic() + 30
        while (app.api("GET", f"/api/jobs/{job['id']}").json()["job"]["done"] or 0) < 1_000_000:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        app.kill()  # SIGKILL: no chance to tidy up

    del server.faults["/files/big.bin"]
    (part,) = (home / "partials").glob("*.part")
    kept = part.stat().st_size
    size = len(server.files["/files/big.bin"])
    assert 0 < kept < size
    with AppProcess(env) as app:
        seen = app.api("GET", f"/api/jobs/{job['id']}").json()["job"]
        assert seen["status"] in ("PENDING", "RUNNING", "SUCCESS")  # queued again, nobody pressed Retry
        done = app.wait_job(job["id"])
        assert done["status"] == "SUCCESS" and done["attempts"] == 2
        (installed,) = done["result"]
        assert installed["downloaded"] == size - kept  # only the bytes the partial file lacked
        assert (home / "resources/zishu/big-model/1.0.0/big.bin").read_bytes() == server.files["/files/big.bin"]
    gets = [headers.get("Range") for method, path, headers in server.requests
            if method == "GET" and path == "/files/big.bin"]
    assert gets[-1] == f"bytes={kept}-"
    with sqlite3.connect(home / "zishu.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_an_install_waits_for_the_network_and_a_cancel_then_survives_a_restart(app_env):
    env, server, home = app_env
    refused = []

    def offline(handler) -> bool:  # the network is down: every connection dies before an answer
        refused.append(handler.command)
        handler.close_connection = True
        handler.connection.shutdown(socket.SHUT_RDWR)
        return True

    server.faults["/files/big.bin"] = offline
    with AppProcess(env) as app:
        job = app.api("POST", "/api/installs", json={"request": "zishu/big-model"}).json()["job"]
        deadline = time.monotonic() + 30
        while not (seen := app.api("GET", f"/api/jobs/{job['id']}").json()["job"])["message"].startswith(
                "waiting for the network"):
            assert seen["status"] in ("PENDING", "RUNNING") and time.monotonic() < deadline, seen
            time.sleep(0.05)
        assert seen["status"] == "RUNNING" and "big.bin" in seen["message"]
        app.api("POST", f"/api/jobs/{job['id']}/cancel")
        cancelled = app.wait_job(job["id"], timeout=10)
        assert cancelled["status"] == "CANCELLED", cancelled
        app.kill()

    del server.faults["/files/big.bin"]
    asked = [path for _, path, _ in server.requests].count("/files/big.bin")
    assert asked == len(refused) > 0
    with AppProcess(env) as app:
        again = app.api("GET", f"/api/jobs/{job['id']}").json()["job"]
        assert again["status"] == "CANCELLED"
        other = app.api("POST", "/api/installs", json={"request": "zishu/hero"}).json()["job"]
        assert app.wait_job(other["id"])["status"] == "SUCCESS"  # the queue runs; the cancelled job stays
        assert app.api("GET", f"/api/jobs/{job['id']}").json()["job"]["status"] == "CANCELLED"
    assert not (home / "resources/zishu/big-model/1.0.0").exists()
    assert [path for _, path, _ in server.requests].count("/files/big.bin") == asked  # nothing asked again


def test_jobs_stream_live_over_server_sent_events(app_env):
    import json

    env, _, _ = app_env
    with AppProcess(env) as app:
        with app.api("GET", "/api/jobs/stream", stream=True) as stream:
            assert stream.headers["Content-Type"].startswith("text/event-stream")
            job = app.api("POST", "/api/installs", json={"request": "zishu/hero"}).json()["job"]
            statuses = []
            for line in stream.iter_lines(decode_unicode=True):
                if line.startswith("data: "):
                    event = json.loads(line[6:])
                    assert event["id"] == job["id"]
                    statuses.append(event["status"])
                    if event["status"] == "SUCCESS":
                        break
        assert statuses[-1] == "SUCCESS" and "RUNNING" in statuses


@pytest.fixture
def redis_url(tmp_path):
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (make test installs it)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


def test_a_redis_queue_lets_a_separate_worker_run_the_jobs(app_env, redis_url):
    env, _, home = app_env
    env = {**env, "ZISHU_QUEUE": redis_url}
    worker = subprocess.Popen([sys.executable, "-m", "zishu.cli", "worker"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        with AppProcess(env, "--workers", "0") as app:  # the app only enqueues
            assert app.api("GET", "/api/settings").json()["queue"] == redis_url
            job = app.api("POST", "/api/installs", json={"request": "zishu/hero"}).json()["job"]
            done = app.wait_job(job["id"])
            assert done["status"] == "SUCCESS", done
            assert done["worker"].split(":")[1] == str(worker.pid)
            assert (home / "resources/zishu/hero/1.0.0/portrait.png").exists()
    finally:
        worker.terminate()
        worker.wait(15)


def test_an_install_whose_worker_is_killed_goes_on_when_a_worker_starts_again(app_env, redis_url):
    env, server, _home = app_env
    env = {**env, "ZISHU_QUEUE": redis_url}
    server.faults["/files/big.bin"] = trickle(1_500_000)

    def worker() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "zishu.cli", "worker"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    first = worker()
    second = None
    try:
        with AppProcess(env, "--workers", "0") as app:  # the app only enqueues
            job = app.api("POST", "/api/installs", json={"request": "zishu/big-model"}).json()["job"]
            deadline = time.monotonic() + 120  # a worker's start is slow on a busy machine; nothing here is timed
            while (app.api("GET", f"/api/jobs/{job['id']}").json()["job"]["done"] or 0) < 1_000_000:
                assert time.monotonic() < deadline and first.poll() is None
                time.sleep(0.05)
            first.kill()  # SIGKILL
            first.wait()
            del server.faults["/files/big.bin"]
            second = worker()
            # not INTERRUPTED: the new worker's recovery passes through it on the way back to PENDING
            done = app.wait_job(job["id"], until=("SUCCESS", "FAILED", "CANCELLED"), timeout=180)
            assert done["status"] == "SUCCESS" and done["attempts"] == 2, done
            assert done["worker"].split(":")[1] == str(second.pid)
            assert 0 < done["result"][0]["downloaded"] < 8 * 1024 * 1024  # it resumed the partial file
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(15)
