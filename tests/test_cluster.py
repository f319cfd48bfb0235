"""Several machines on one Redis: signed tasks (a forged pickle never runs), a password, workers with
ZISHU_HOMEs of their own whose results and files come back to the app, only the job types a worker
accepts, cancel across machines, and a job requeued after its worker was killed.

The app's side is a ``JobQueue`` in this process (its own SQLite job table); the workers are real
``zishu worker`` processes with the test plugin ``zishu_test_cluster`` installed."""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from huey.serializer import SignedSerializer

from zishu.cluster import nodes, redisqueue
from zishu.cluster import secret as cluster_secret
from zishu.db import open_database
from zishu.errors import UsageError
from zishu.jobs import Job, JobQueue

PLUGINS = Path(__file__).parent / "plugins"


def start_redis(tmp_path: Path, *args: str) -> tuple[subprocess.Popen, int]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (make test installs it)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)


@pytest.fixture
def redis_url(tmp_path):
    proc, port = start_redis(tmp_path)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def plugin_path(tmp_path) -> str:
    """A PYTHONPATH on which the distribution ``zishu-test-cluster`` (tests/plugins/zishu_test_cluster) is installed."""
    site = tmp_path / "site"
    info = site / "zishu_test_cluster-1.0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: zishu-test-cluster\nVersion: 1.0.0\n")
    (info / "entry_points.txt").write_text("[zishu]\ncluster = zishu_test_cluster\n")
    return os.pathsep.join([str(site), str(PLUGINS), os.environ.get("PYTHONPATH", "")])


@pytest.fixture
def app_queue(tmp_path, plugin_path, monkeypatch):
    """The app's side: its own ZISHU_HOME with the cluster secret, a job table, the test job types."""
    sys.path.insert(0, str(PLUGINS))
    import zishu_test_cluster as jobs

    home = tmp_path / "app"
    home.mkdir()
    cluster_secret.init(home)
    open_database(home / "zishu.db")
    made: list[JobQueue] = []

    def make(url: str) -> JobQueue:
        q = JobQueue(home, url=url, secret=cluster_secret.read(cluster_secret.default_path(home)), accept=[])
        for name in ("paint", "spin", "burn"):
            q.register(name, getattr(jobs, name), remote=True)
        made.append(q)
        return q

    yield make
    for q in made:
        q.stop_consumer()
    sys.path.remove(str(PLUGINS))


def worker_home(tmp_path: Path, name: str, app_home: Path) -> tuple[Path, Path]:
    """A worker's own ZISHU_HOME, holding a copy (0600) of the app's cluster secret."""
    home = tmp_path / name
    home.mkdir(exist_ok=True)
    secret = home / "copied.secret"
    shutil.copy(app_home / "cluster.secret", secret)
    secret.chmod(0o600)
    return home, secret


def worker(tmp_path: Path, name: str, url: str, plugin_path: str, app_home: Path, *args: str,
           env: dict | None = None) -> subprocess.Popen:
    """A ``zishu worker`` with a ZISHU_HOME of its own and a copy of the app's cluster secret."""
    home, secret = worker_home(tmp_path, name, app_home)
    environ = {**os.environ, "ZISHU_HOME": str(home), "PYTHONPATH": plugin_path, **(env or {})}
    environ.pop("ZISHU_QUEUE", None)
    return subprocess.Popen([sys.executable, "-m", "zishu.cli", "worker", "--join", url, "--secret-file", str(secret),
                             *args], env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait(queue: JobQueue, job_id: int, *statuses: str, timeout: float = 60, procs=()) -> Job:
    deadline = time.monotonic() + timeout
    while (job := queue.get(job_id)).status not in statuses:
        for p in procs:
            assert p.poll() is None, f"worker exited {p.returncode}: {p.stderr.read()}"
        assert time.monotonic() < deadline, f"job {job_id} is still {job.status}: {job.message}"
        time.sleep(0.02)
    return job


def stop(*procs: subprocess.Popen) -> str:
    out = []
    for p in procs:
        if p.poll() is None:
            p.terminate()
        try:
            out.append(p.communicate(timeout=20)[1] or "")
        except subprocess.TimeoutExpired:
            p.kill()
            out.append(p.communicate()[1] or "")
    return "\n".join(out)


def test_cluster_init_writes_a_private_secret_and_read_refuses_one_others_can_read(tmp_path):
    path = cluster_secret.init(tmp_path)
    assert path == tmp_path / "cluster.secret" and (path.stat().st_mode & 0o777) == 0o600
    first = cluster_secret.read(path)
    assert cluster_secret.init(tmp_path) == path and cluster_secret.read(path) == first  # kept
    path.chmod(0o644)
    with pytest.raises(UsageError, match=r"cluster secret file .*cluster.secret: others may read it"):
        cluster_secret.read(path)
    short = tmp_path / "short"
    short.write_text("abc")
    short.chmod(0o600)
    with pytest.raises(UsageError, match="at least 32 are needed"):
        cluster_secret.read(short)
    with pytest.raises(UsageError, match="needs the cluster secret"):
        redisqueue.make("zishu", "redis://127.0.0.1:1/0", "")


def test_a_forged_pickle_pushed_into_redis_never_runs(tmp_path, redis_url, app_queue, plugin_path):
    queue = app_queue(redis_url)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    conn = redis.Redis.from_url(redis_url)
    # a bare pickle, and one signed with another secret, straight into the queues the worker listens to
    bare = pickle.dumps(Evil())
    wrong = SignedSerializer(secret="not-the-cluster-secret-" * 2, salt=redisqueue.SALT).serialize(Evil())
    for data in (bare, wrong):
        for key in ("huey.redis.zishu.kind:paint", f"huey.redis.zishu.home:{queue.node}"):
            conn.zadd(key, {struct.pack(">Q", int(time.time() * 1e6)) + data: 0})
    w = worker(tmp_path, "w1", redis_url, plugin_path, queue.home, "--accept", "paint")
    try:
        job = queue.submit("paint", {"name": "after-the-forgery"})
        done = wait(queue, job.id, "SUCCESS", "FAILED", procs=[w])  # the worker went on past the forgeries
        assert done.status == "SUCCESS", done.error
    finally:
        log = stop(w)
    assert not marker.exists()
    assert "refused a task whose signature does not match" in log


def test_two_workers_with_their_own_homes_run_jobs_and_send_the_files_back(tmp_path, redis_url, app_queue,
                                                                           plugin_path):
    queue = app_queue(redis_url)
    workers = [worker(tmp_path, f"w{i}", redis_url, plugin_path, queue.home, "--accept", "paint") for i in (1, 2)]
    try:
        jobs = [queue.submit("paint", {"name": f"p{i}", "size": 40_000 + i}) for i in range(6)]
        done = [wait(queue, j.id, "SUCCESS", "FAILED", procs=workers) for j in jobs]
    finally:
        stop(*workers)
    for i, job in enumerate(done):
        assert job.status == "SUCCESS", job.error
        result = job.as_dict()["result"]
        assert result["files"] == [f"outputs/paint/p{i}.bin"]
        assert result["painted_by"] in (str(tmp_path / "w1"), str(tmp_path / "w2"))  # not the app's home
        data = (queue.home / result["files"][0]).read_bytes()
        assert data == hashlib.sha256(f"p{i}".encode()).digest() * ((40_000 + i) // 32)
        assert job.attempts == 1 and job.worker
    assert not (queue.home / "outputs/paint").parent.parent.joinpath("w1").exists()
    assert not Job.select().where(Job.status == "RUNNING").exists()


def test_a_reprioritised_job_runs_once_on_a_worker_and_leaves_no_revoke_behind(tmp_path, redis_url, app_queue,
                                                                              plugin_path):
    queue = app_queue(redis_url)
    job = queue.submit("paint", {"name": "moved"})
    first_task = queue.get(job.id).task_id
    queue.prioritise(job.id, 5)  # no worker yet: the first task still waits in Redis, beside the new one
    conn = queue.huey.storage.conn
    routes = list(conn.keys(f"{queue.huey.storage.queue_key}.*"))
    assert sum(conn.zcard(k) for k in routes) == 2
    painter = worker(tmp_path, "painter", redis_url, plugin_path, queue.home, "--accept", "paint")
    try:
        assert wait(queue, job.id, "SUCCESS", procs=[painter]).task_id != first_task
        deadline = time.monotonic() + 20
        while sum(conn.zcard(k) for k in routes):  # the worker pops the first task too
            assert time.monotonic() < deadline, "the first task was never popped"
            time.sleep(0.05)
        time.sleep(1)  # time enough to have run it, had it not been dropped
    finally:
        stop(painter)
    assert (tmp_path / "painter/outputs/paint/runs.log").read_text() == "moved\n"
    assert not any(b"revoke" in key for key in conn.hkeys(queue.huey.storage.result_key))  # cleared as it was dropped


def test_a_job_cancelled_before_any_worker_took_it_leaves_no_input_file_in_redis(redis_url, app_queue):
    import zishu_test_cluster as jobs

    from zishu.cluster.relay import input_key

    queue = app_queue(redis_url)
    queue.register("weigh", jobs.paint, remote=True, inputs=lambda p: [p["file"]])  # a job that reads a file
    (queue.home / "inputs").mkdir()
    (queue.home / "inputs/song.wav").write_bytes(b"RIFF" + bytes(4000))
    job = queue.submit("weigh", {"name": "w", "file": "inputs/song.wav"})  # no worker: it waits
    conn = queue.huey.storage.conn
    key = input_key(queue.node, job.id, 0)
    assert conn.get(key) == b"RIFF" + bytes(4000)  # sent on for the worker that will take it
    assert queue.cancel(job.id).status == "CANCELLED"
    assert not conn.exists(key)  # nobody will take it now: the file is not left in Redis


def test_a_worker_takes_only_the_job_types_it_accepts_and_a_cancel_reaches_it(tmp_path, redis_url, app_queue,
                                                                            plugin_path):
    queue = app_queue(redis_url)
    painter = worker(tmp_path, "painter", redis_url, plugin_path, queue.home, "--accept", "paint")
    try:
        spin = queue.submit("spin", {"seconds": 60})
        paint = queue.submit("paint", {"name": "x"})
        assert wait(queue, paint.id, "SUCCESS", procs=[painter]).status == "SUCCESS"
        assert queue.get(spin.id).status == "PENDING"  # nobody accepts spin yet
        spinner = worker(tmp_path, "spinner", redis_url, plugin_path, queue.home, "--accept", "spin")
        try:
            running = wait(queue, spin.id, "RUNNING", procs=[spinner])
            assert running.worker.split(":")[1] == str(spinner.pid)
            deadline = time.monotonic() + 20
            while (queue.get(spin.id).done or 0) < 3:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            queue.cancel(spin.id)
            assert wait(queue, spin.id, "CANCELLED", timeout=20).message == "cancelled"
        finally:
            stop(spinner)
    finally:
        stop(painter)


def test_a_job_whose_worker_is_killed_is_requeued_and_finished_by_another(tmp_path, redis_url, app_queue,
                                                                         plugin_path):
    queue = app_queue(redis_url)
    fast = {"ZISHU_CLUSTER_CLAIM_TTL": "2"}
    first = worker(tmp_path, "w1", redis_url, plugin_path, queue.home, "--accept", "spin", env=fast)
    second = None
    try:
        job = queue.submit("spin", {"seconds": 1.5})
        wait(queue, job.id, "RUNNING", procs=[first])
        first.kill()  # SIGKILL: its claim is no longer refreshed
        first.wait()
        queue.start_relay()
        second = worker(tmp_path, "w2", redis_url, plugin_path, queue.home, "--accept", "spin", env=fast)
        back = wait(queue, job.id, "PENDING", "RUNNING", timeout=15)
        done = wait(queue, job.id, "SUCCESS", "FAILED", timeout=30, procs=[second])
        assert done.status == "SUCCESS" and done.attempts == 2, (back.message, done.error)
        assert done.worker.split(":")[1] == str(second.pid)
        assert done.as_dict()["result"]["pid"] == second.pid
    finally:
        stop(first, *([second] if second else []))


def test_a_redis_password_is_passed_through_and_never_shown(tmp_path, app_queue, plugin_path):
    proc, port = start_redis(tmp_path, "--requirepass", "hunter2-pass")
    try:
        url = f"redis://:hunter2-pass@127.0.0.1:{port}/0"
        queue = app_queue(url)
        assert "hunter2" not in queue.description and "***" in queue.description
        w = worker(tmp_path, "w1", url, plugin_path, queue.home, "--accept", "paint")
        try:
            job = queue.submit("paint", {"name": "secret"})
            assert wait(queue, job.id, "SUCCESS", "FAILED", procs=[w]).status == "SUCCESS"
        finally:
            stop(w)
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis.from_url(f"redis://127.0.0.1:{port}/0").zcard("huey.redis.zishu")
    finally:
        proc.terminate()
        proc.wait(10)


def test_nodes_advertise_themselves_and_vanish_when_killed(tmp_path, redis_url, app_queue, plugin_path):
    queue = app_queue(redis_url)
    env = {**os.environ, "ZISHU_QUEUE": redis_url}
    w = worker(tmp_path, "w1", redis_url, plugin_path, queue.home, "--accept", "paint,spin")
    try:
        deadline = time.monotonic() + 30
        while not (found := [n for n in nodes.status(redis_url) if n["worker"].split(":")[1] == str(w.pid)]):
            assert time.monotonic() < deadline and w.poll() is None
            time.sleep(0.1)
        (node,) = found
        assert node["accepts"] == ["paint", "spin"] and node["running"] == [] and node["ram_free"] > 0
        assert "models" in node and "engines" in node and time.time() - node["heartbeat"] < nodes.EXPIRES_AFTER
        shown = subprocess.run([sys.executable, "-m", "zishu.cli", "cluster", "status"], env=env,
                               capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0 and str(w.pid) in shown.stdout and "paint, spin" in shown.stdout
        w.kill()
        w.wait()
        deadline = time.monotonic() + nodes.EXPIRES_AFTER + 5
        while any(n["worker"] == node["worker"] for n in nodes.status(redis_url)):
            assert time.monotonic() < deadline, "the dead node's heartbeat did not expire"
            time.sleep(0.2)
    finally:
        stop(w)


def test_cluster_init_and_a_join_without_the_secret(tmp_path):
    env = {**os.environ, "ZISHU_HOME": str(tmp_path / "home")}
    env.pop("ZISHU_QUEUE", None)
    made = subprocess.run([sys.executable, "-m", "zishu.cli", "cluster", "init"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert made.returncode == 0 and "wrote a new secret" in made.stdout
    assert (tmp_path / "home/cluster.secret").stat().st_mode & 0o777 == 0o600
    env["ZISHU_HOME"] = str(tmp_path / "other")
    refused = subprocess.run([sys.executable, "-m", "zishu.cli", "worker", "--join", "redis://127.0.0.1:1/0"],
                             env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "--join needs the cluster secret" in refused.stderr


def test_a_rediss_url_runs_the_queue_over_tls(tmp_path, app_queue, plugin_path):
    if shutil.which("openssl") is None or shutil.which("redis-server") is None:
        pytest.skip("openssl and redis-server are needed to serve Redis over TLS")
    certs = tmp_path / "tls"
    certs.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(certs / "key.pem"),
                    "-out", str(certs / "cert.pem"), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
                             "--tls-cert-file", str(certs / "cert.pem"), "--tls-key-file", str(certs / "key.pem"),
                             "--tls-ca-cert-file", str(certs / "cert.pem"), "--tls-auth-clients", "no",
                             "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={certs / 'cert.pem'}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                assert redis.Redis.from_url(url).ping()
                break
            except redis.exceptions.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start with TLS"
                time.sleep(0.05)
        with pytest.raises(redis.exceptions.ConnectionError):  # plain text is refused on that port
            redis.Redis.from_url(f"redis://127.0.0.1:{port}/0", socket_timeout=2).ping()
        queue = app_queue(url)
        w = worker(tmp_path, "w1", url, plugin_path, queue.home, "--accept", "paint")
        try:
            job = queue.submit("paint", {"name": "over-tls"})
            assert wait(queue, job.id, "SUCCESS", "FAILED", procs=[w]).status == "SUCCESS"
            assert (queue.home / "outputs/paint/over-tls.bin").exists()
        finally:
            stop(w)
    finally:
        proc.terminate()
        proc.wait(10)


def test_workers_in_network_namespaces_reach_redis_only_over_a_veth_pair(tmp_path, app_queue, plugin_path):
    """Each worker in a network namespace of its own, with a veth pair to this one: Redis is the only
    thing they share (no folder, no loopback)."""
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("redis-server") is None:
        pytest.skip("network namespaces need root and iproute2 (`ip netns`); the same workers run with their "
                    "own ZISHU_HOME on 127.0.0.1 in test_two_workers_with_their_own_homes_…")
    tag = f"z{os.getpid() % 100000}"
    probe = subprocess.run(["ip", "netns", "add", f"{tag}a"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"this machine cannot create network namespaces: {probe.stderr.strip()}")
    made = [f"{tag}a"]

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    procs: list[subprocess.Popen] = []
    try:
        ip("netns", "add", f"{tag}b")
        made.append(f"{tag}b")
        for n, ns in enumerate(made):
            host_end, ns_end, net = f"{tag}h{n}", f"{tag}n{n}", f"10.{200 + n}.77"
            ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end)
            ip("link", "set", ns_end, "netns", ns)
            ip("addr", "add", f"{net}.1/24", "dev", host_end)
            ip("link", "set", host_end, "up")
            ip("netns", "exec", ns, "ip", "addr", "add", f"{net}.2/24", "dev", ns_end)
            ip("netns", "exec", ns, "ip", "link", "set", ns_end, "up")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        procs.append(subprocess.Popen(["redis-server", "--port", str(port), "--bind", "10.200.77.1", "10.201.77.1",
                                       "--protected-mode", "no", "--save", "", "--appendonly", "no",
                                       "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("10.200.77.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        queue = app_queue(f"redis://10.200.77.1:{port}/0")
        workers = []
        for n, ns in enumerate(made):
            url = f"redis://10.{200 + n}.77.1:{port}/0"
            probe = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c",
                                    f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=1)"],
                                   capture_output=True)
            assert probe.returncode != 0  # the host's loopback is out of reach: only the veth leads to Redis
            home, secret = worker_home(tmp_path, f"ns{n}", queue.home)
            environ = {**os.environ, "ZISHU_HOME": str(home), "PYTHONPATH": plugin_path}
            environ.pop("ZISHU_QUEUE", None)
            workers.append(subprocess.Popen(
                ["ip", "netns", "exec", ns, sys.executable, "-m", "zishu.cli", "worker", "--join", url,
                 "--secret-file", str(secret), "--accept", "paint"],
                env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        procs.extend(workers)
        jobs = [queue.submit("paint", {"name": f"ns{i}"}) for i in range(6)]
        done = [wait(queue, j.id, "SUCCESS", "FAILED", procs=workers) for j in jobs]
        assert all(j.status == "SUCCESS" for j in done), [j.error for j in done]
        assert all((queue.home / f"outputs/paint/ns{i}.bin").exists() for i in range(6))
    finally:
        stop(*procs)
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for n in range(len(made)):
            subprocess.run(["ip", "link", "del", f"{tag}h{n}"], capture_output=True)
