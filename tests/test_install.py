"""`zishu install` end to end: a built catalog and its files on a real local server, the real CLI."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import FileServer, make_manifest, write_manifest, zishu
from conftest import publish_catalog as _publish
from conftest import serve_file as _file


@pytest.fixture
def env(tmp_path: Path, registry: Path, file_server: FileServer):
    """A catalog of four resources (three levels of requires) served by a local server."""
    base = make_manifest("zishu/base-model", kind="model")
    base["versions"][0]["files"] = [_file(file_server, "base.gguf", 300_000)]
    lora = make_manifest("zishu/style-lora", kind="lora")
    lora["versions"][0]["files"] = [_file(file_server, "style.safetensors", 50_000)]
    lora["versions"][0]["requires"] = [{"id": "zishu/base-model", "version": ">=1.0.0"}]
    char = make_manifest("zishu/hero", kind="character")
    char["versions"][0]["files"] = [_file(file_server, "portrait.png", 10_000)]
    char["versions"][0]["requires"] = [{"id": "zishu/style-lora", "version": "*"}]
    big = make_manifest("zishu/big-model", kind="model")
    big["versions"][0]["files"] = [_file(file_server, "big.bin", 6 * 1024 * 1024, seed=1)]
    for m in (base, lora, char, big):
        write_manifest(registry, m)
    catalog = _publish(registry, tmp_path / "catalog")
    environ = {**os.environ, "ZISHU_HOME": str(tmp_path / "home"), "ZISHU_CATALOG": catalog}
    return environ, file_server, tmp_path / "home"


def test_three_levels_of_requires_install_in_one_command(env):
    environ, server, _home = env
    result = zishu(environ, "install", "zishu/hero", "--json")
    installed = {r["id"] for r in json.loads(result.stdout)}
    assert installed == {"zishu/hero", "zishu/style-lora", "zishu/base-model"}
    for rid, name in (("zishu/hero", "portrait.png"), ("zishu/style-lora", "style.safetensors"),
                      ("zishu/base-model", "base.gguf")):
        folder = Path(zishu(environ, "path", rid).stdout.strip())
        assert (folder / name).read_bytes() == server.files[f"/files/{name}"]
        assert (folder / "manifest.json").exists()
    listed = json.loads(zishu(environ, "list", "--json").stdout)
    assert set(listed) == installed

    before = len(server.requests)
    again = json.loads(zishu(environ, "install", "zishu/hero", "--json").stdout)
    assert all(r["downloaded"] == 0 for r in again)
    assert len(server.requests) == before  # never twice


def test_missing_dependency_fails_before_any_download(env, registry: Path, tmp_path: Path):
    environ, server, _ = env
    orphan = make_manifest("zishu/orphan", kind="character")
    orphan["versions"][0]["files"] = [_file(server, "o.png", 100)]
    orphan["versions"][0]["requires"] = [{"id": "zishu/base-model", "version": ">=9"}]
    write_manifest(registry, orphan)
    environ = {**environ, "ZISHU_CATALOG": _publish(registry, tmp_path / "catalog2", validated=False)}
    result = zishu(environ, "install", "zishu/orphan", check=False)
    assert result.returncode == 7
    assert "zishu/base-model" in result.stderr and ">=9" in result.stderr
    assert not [r for r in server.requests if r[1].startswith("/files/")]


def test_path_of_something_not_installed_exits_3(env):
    environ, _, _ = env
    result = zishu(environ, "path", "zishu/hero", check=False)
    assert result.returncode == 3 and "not installed" in result.stderr


def test_wrong_sha256_names_file_and_digests_and_installs_nothing(env, registry: Path, tmp_path: Path):
    environ, server, home = env
    bad = make_manifest("zishu/bad", kind="model")
    entry = _file(server, "bad.bin", 4096)
    real = entry["sha256"]
    entry["sha256"] = "f" * 64
    bad["versions"][0]["files"] = [entry]
    write_manifest(registry, bad)
    environ = {**environ, "ZISHU_CATALOG": _publish(registry, tmp_path / "catalog3")}
    result = zishu(environ, "install", "zishu/bad", check=False)
    assert result.returncode == 6
    assert "bad.bin" in result.stderr and "f" * 64 in result.stderr and real in result.stderr
    assert not (home / "resources/zishu/bad/1.0.0").exists()
    assert not list((home / "partials").glob("*.part")) if (home / "partials").exists() else True
    assert zishu(environ, "path", "zishu/bad", check=False).returncode == 3


def test_uninstall_and_versions_side_by_side(env):
    environ, _, home = env
    zishu(environ, "install", "zishu/base-model@1.0.0", "-q")
    assert (home / "resources/zishu/base-model/1.0.0/base.gguf").exists()
    zishu(environ, "uninstall", "zishu/base-model")
    assert zishu(environ, "path", "zishu/base-model", check=False).returncode == 3
    assert not (home / "resources/zishu/base-model/1.0.0").exists()


def test_kill_9_mid_transfer_then_rerun_completes_with_little_extra(env):
    environ, server, _home = env
    size = len(server.files["/files/big.bin"])
    sent = {"bytes": 0}
    body = server.files["/files/big.bin"]

    def throttled(handler) -> bool:
        start = 0
        rng = handler.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
        chunk = body[start:]
        handler.send_response(206 if rng else 200)
        handler.send_header("Content-Length", str(len(chunk)))
        handler.send_header("Accept-Ranges", "bytes")
        handler.send_header("ETag", '"big-v1"')
        if rng:
            handler.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        handler.end_headers()
        try:
            for i in range(0, len(chunk), 64 * 1024):
                handler.wfile.write(chunk[i : i + 64 * 1024])
                sent["bytes"] += len(chunk[i : i + 64 * 1024])
                time.sleep(0.02)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return True

    server.faults["/files/big.bin"] = throttled
    proc = subprocess.Popen([sys.executable, "-m", "zishu.cli", "install", "zishu/big-model", "-q"], env=environ,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while sent["bytes"] < size // 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 0 < sent["bytes"] < size, "the kill should land mid-transfer"

    server.faults.pop("/files/big.bin")  # the rest at full speed
    server.files["/files/big.bin"] = body
    before_rerun = sent["bytes"]
    zishu(environ, "install", "zishu/big-model", "-q")
    folder = Path(zishu(environ, "path", "zishu/big-model").stdout.strip())
    assert hashlib.sha256((folder / "big.bin").read_bytes()).hexdigest() == hashlib.sha256(body).hexdigest()
    ranged = [r for r in server.requests if r[1] == "/files/big.bin" and "Range" in r[2]]
    assert ranged, "the rerun should resume with a Range request"
    resumed_from = int(ranged[-1][2]["Range"].split("=")[1].split("-")[0])
    served_total = before_rerun + (size - resumed_from)
    assert served_total <= size + 1024 * 1024


def test_install_from_a_file_the_user_already_has_links_it(env, tmp_path: Path):
    environ, server, home = env
    mine = tmp_path / "my-models" / "base.gguf"
    mine.parent.mkdir()
    mine.write_bytes(server.files["/files/base.gguf"])
    result = json.loads(zishu(environ, "install", "zishu/base-model", "--from", str(mine), "--json").stdout)
    assert result[0]["downloaded"] == 0 and result[0]["reused"] == mine.stat().st_size
    installed = home / "resources/zishu/base-model/1.0.0/base.gguf"
    assert installed.stat().st_ino == mine.stat().st_ino  # a hard link: no second copy on disk
    assert not [r for r in server.requests if r[1] == "/files/base.gguf"]


def test_install_from_a_wrong_file_is_refused(env, tmp_path: Path):
    environ, _, _home = env
    wrong = tmp_path / "wrong.gguf"
    wrong.write_bytes(b"not the model")
    result = zishu(environ, "install", "zishu/base-model", "--from", str(wrong), check=False)
    assert result.returncode == 6 and "base.gguf" in result.stderr and "bytes" in result.stderr
    assert zishu(environ, "path", "zishu/base-model", check=False).returncode == 3


def test_model_dirs_are_searched_before_downloading(env, tmp_path: Path):
    environ, server, _home = env
    shelf = tmp_path / "shelf" / "deep"
    shelf.mkdir(parents=True)
    (shelf / "renamed-by-user.bin").write_bytes(server.files["/files/base.gguf"])
    (shelf / "other.bin").write_bytes(b"x" * 300_000)  # same size, other bytes: not taken
    environ = {**environ, "ZISHU_MODEL_DIRS": str(tmp_path / "shelf")}
    result = json.loads(zishu(environ, "install", "zishu/base-model", "--json").stdout)
    assert result[0]["downloaded"] == 0
    assert not [r for r in server.requests if r[1] == "/files/base.gguf"]


def test_gc_removes_half_installed_versions(env):
    environ, _, home = env
    zishu(environ, "install", "zishu/base-model", "-q")
    leftover = home / "resources/zishu/base-model/.2.0.0.staging"
    leftover.mkdir()
    (leftover / "junk").write_bytes(b"x" * 1000)
    result = zishu(environ, "gc")
    assert "freed" in result.stderr and not leftover.exists()
    assert zishu(environ, "path", "zishu/base-model").returncode == 0


def test_ten_concurrent_installs_make_one_transfer_and_path_never_blocks(env):
    """Seed §7.3: ten clicks on Install → one transfer; five path() calls meanwhile → no deadlock."""
    import threading

    from zishu.catalog.client import CatalogClient
    from zishu.errors import ResourceNotAvailable
    from zishu.resources.downloader import Downloader
    from zishu.resources.install import Installer
    from zishu.resources.versions import VersionStore

    environ, server, home = env
    client = CatalogClient(environ["ZISHU_CATALOG"], cache_dir=home / "cache")
    resource = client.resource("zishu/big-model")
    results, answers, errors = [], [], []

    def install() -> None:
        try:
            registry = VersionStore(home)
            installer = Installer(registry, Downloader(home / "partials"))
            results.append(installer.install_version(resource, resource.versions[0]))
        except Exception as e:
            errors.append(e)

    def look() -> None:
        try:
            answers.append(VersionStore(home).path("zishu/big-model"))
        except ResourceNotAvailable:
            answers.append(None)

    threads = [threading.Thread(target=install) for _ in range(10)] + [threading.Thread(target=look) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread is stuck"
    assert not errors and len(results) == 10 and len(answers) == 5
    body_requests = [r for r in server.requests if r[0] == "GET" and r[1] == "/files/big.bin"]
    assert sum(r.transferred for r in results) == len(server.files["/files/big.bin"])  # one transfer in all
    assert body_requests, "the file was fetched"
    assert VersionStore(home).path("zishu/big-model") == home / "resources/zishu/big-model/1.0.0"


def test_the_cli_and_the_install_button_use_the_catalog_set_in_settings(env, monkeypatch):
    """Issue 12: ``zishu search|install`` read the catalog URL saved in the Settings panel, the one
    the app's Install button reads (the CLI used to ignore it and read the bundled snapshot)."""
    from click.testing import CliRunner

    from zishu.cli import cli
    from zishu.jobs import Status
    from zishu.runtime import Runtime
    from zishu.web.app import create_app

    environ, _server, home = env
    catalog = environ.pop("ZISHU_CATALOG")  # nothing in the environment: only the setting names it
    snapshot = {e["id"] for e in json.loads(zishu(environ, "search", "--json", "--limit", "500").stdout)}
    assert "zishu/hero" not in snapshot  # without the setting: the bundled catalog

    monkeypatch.setenv("ZISHU_HOME", str(home))
    monkeypatch.delenv("ZISHU_CATALOG", raising=False)
    monkeypatch.delenv("ZISHU_QUEUE", raising=False)
    runtime = Runtime(home)
    try:
        client = create_app(runtime, "s3cret").test_client()
        saved = client.put("/api/settings", json={"catalog_url": catalog}, headers={"X-Zishu-Token": "s3cret"})
        assert saved.status_code == 200, saved.json

        runtime.jobs.start_consumer(1)  # the Install button: an install job in the app
        job = runtime.jobs.submit("install", {"request": "zishu/base-model"})
        deadline = time.monotonic() + 60
        while runtime.jobs.get(job.id).status not in (Status.SUCCESS, Status.FAILED) and time.monotonic() < deadline:
            time.sleep(0.05)
        done = runtime.jobs.get(job.id)
        assert done.status == Status.SUCCESS, done.error

        in_app = CliRunner().invoke(cli, ["search", "hero", "--json"])  # the app's database open here
        assert in_app.exit_code == 0, in_app.output
        assert "zishu/hero" in {e["id"] for e in json.loads(in_app.stdout)}
    finally:
        runtime.close()

    found = {e["id"] for e in json.loads(zishu(environ, "search", "--json").stdout)}  # a process of its own
    assert found == {"zishu/hero", "zishu/style-lora", "zishu/base-model", "zishu/big-model"}
    installed = {r["id"]: r for r in json.loads(zishu(environ, "install", "zishu/hero", "--json").stdout)}
    assert set(installed) == {"zishu/hero", "zishu/style-lora", "zishu/base-model"}
    assert installed["zishu/base-model"]["downloaded"] == 0  # the job installed it from the same catalog
    assert (Path(zishu(environ, "path", "zishu/hero").stdout.strip()) / "portrait.png").exists()
