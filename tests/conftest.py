"""Shared test fixtures: manifest factories and a real HTTP server on 127.0.0.1 with fault injection."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

# Under pytest-xdist every worker runs torch (diffusers, FunASR) and llama.cpp side by side: one
# math thread per worker keeps them from fighting over the cores (10x slower steps otherwise).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

BASE_MANIFEST = {
    "name": "Example",
    "summary": "An example resource for tests.",
    "license": "Apache-2.0",
    "maintainers": ["alice"],
    "tags": ["test"],
}

SPECS = {
    "character": {"persona": "You are a friendly test character."},
    "live2d": {"cubism": 4, "entry": "model.model3.json"},
    "lora": {"target": "image", "base_model": "sd15"},
    "model": {"format": "gguf", "role": "llm"},
    "voice": {"engine": "espeak-ng", "language": "en"},
    "plugin": {"distribution": "zishu-example", "wheel": "zishu_example-1.0.0-py3-none-any.whl",
               "entry_point": "example"},
}

FILES = {
    "live2d": "model.model3.json",
    "plugin": "zishu_example-1.0.0-py3-none-any.whl",
}


def make_manifest(id: str = "alice/example", kind: str = "model", **overrides) -> dict:
    """A valid manifest as plain data; override any top-level field."""
    data = {"id": id, "kind": kind, **copy.deepcopy(BASE_MANIFEST)}
    name = FILES.get(kind, "model.bin")
    data["versions"] = [
        {
            "version": "1.0.0",
            "released": "2026-01-01",
            "files": [
                {
                    "name": name,
                    "url": f"https://github.com/{id}/releases/download/v1.0.0/{name}",
                    "sha256": "0" * 64,
                    "size": 1,
                }
            ],
        }
    ]
    data["spec"] = copy.deepcopy(SPECS[kind])
    data.update(overrides)
    return data


def write_manifest(root: Path, data: dict) -> Path:
    """Write ``data`` at ``root/resources/<id>.yaml``, where a pull request would put it."""
    path = root / "resources" / f"{data['id']}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def install_resource(home: Path, rid: str, spec: dict, kind: str = "model", files: dict[str, Path] | None = None,
                     **fields) -> Path:
    """Put a version folder in place the way the installer leaves it (its files, then manifest.json);
    ``fields`` override the manifest's top level (name, versions, …). Returns the folder."""
    from zishu.catalog import RESOURCE

    folder = Path(home) / "resources" / rid / "1.0.0"
    folder.mkdir(parents=True)
    for name, source in (files or {}).items():
        (shutil.copytree if Path(source).is_dir() else shutil.copy)(source, folder / name)
    data = make_manifest(rid, kind=kind, spec=spec, **fields)
    (folder / "manifest.json").write_bytes(RESOURCE.dump_json(RESOURCE.validate_python(data)))
    (Path(home) / "registry.json").unlink(missing_ok=True)  # rebuilt from the folders when next read
    return folder


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    """An empty registry_index/ with an empty retired list and the project's policy."""
    root = tmp_path / "registry_index"
    (root / "resources").mkdir(parents=True)
    (root / "retired.yaml").write_text("retired: []\n")
    policy = Path(__file__).resolve().parent.parent / "registry_index" / "policy.yaml"
    (root / "policy.yaml").write_text(policy.read_text())
    return root


class LoopbackServer:
    """A threaded HTTP server on a free port of 127.0.0.1, running while the ``with`` block runs."""

    def __init__(self, handler) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        # A short poll keeps shutdown quick: the default half second adds up over the suite.
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class FileServer(LoopbackServer):
    """A threaded HTTP server on 127.0.0.1 serving in-memory files, with per-path fault hooks.

    ``files[path] = bytes`` serves a file (with Range support); ``faults[path] = fn(handler)``
    takes over the request (return True when it answered). ``requests`` records (method, path, headers).
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.faults: dict[str, Callable[[BaseHTTPRequestHandler], bool]] = {}
        self.requests: list[tuple[str, str, dict]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_HEAD(self) -> None:
                self.do_GET(head=True)

            server_files = server.files

            def do_GET(self, head: bool = False) -> None:
                path = self.path.split("?", 1)[0]
                server.requests.append((self.command, self.path, dict(self.headers)))
                fault = server.faults.get(path)
                if fault and fault(self):
                    return
                body = server.files.get(path)
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start, end, status = 0, len(body) - 1, 200
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes="):
                    a, _, b = rng[6:].partition("-")
                    start = int(a) if a else 0
                    end = int(b) if b else len(body) - 1
                    status = 206
                chunk = body[start : end + 1]
                self.send_response(status)
                self.send_header("Content-Length", str(len(chunk)))
                self.send_header("Accept-Ranges", "bytes")
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(body)}")
                self.end_headers()
                if not head:
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        self.wfile.write(chunk)

        super().__init__(Handler)


@pytest.fixture
def file_server():
    with FileServer() as server:
        yield server


def serve_file(server: FileServer, name: str, size: int, seed: int = 0) -> dict:
    """Put ``size`` deterministic bytes at ``/files/<name>`` on ``server``; return the manifest's file entry."""
    body = hashlib.sha256(f"{name}{seed}".encode()).digest() * (size // 32 + 1)
    body = body[:size]
    server.files[f"/files/{name}"] = body
    return {"name": name, "url": f"{server.url}/files/{name}", "sha256": hashlib.sha256(body).hexdigest(), "size": size}


def publish_catalog(registry: Path, out: Path, *, validated: bool = True) -> str:
    """Write the catalog's JSON API (validated like CI does, or as-is to simulate a broken catalog)."""
    from zishu.catalog import read_manifest
    from zishu_catalog.build.index import index_entries, write_api
    from zishu_catalog.schema import schema_text
    from zishu_catalog.validate import load_catalog

    if validated:
        resources = load_catalog(registry, allow_local_urls=True)
    else:
        resources = {m.id: m for m in (read_manifest(p) for p in (registry / "resources").glob("*/*.yaml"))}
    write_api(out, resources, index_entries(resources, {}), {}, schema_text())
    return out.as_uri()


class AppProcess:
    """``zishu serve`` in its own process: ``url`` (no secret), ``secret``, ``login_url`` (sets the cookie)."""

    def __init__(self, env: dict, *args: str) -> None:
        self.env = env
        self.proc = subprocess.Popen([sys.executable, "-m", "zishu.cli", "serve", *args], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if "?token=" not in line:
            self.proc.kill()
            raise AssertionError(f"zishu serve printed {line!r}; stderr:\n{self.proc.stderr.read()}")
        self.login_url = line
        self.url, _, self.secret = line.partition("?token=")
        self.url = self.url.rstrip("/")

    def api(self, method: str, path: str, **kwargs):
        """A request to the API with the secret in a header (as an API client sends it)."""
        import requests

        headers = {"X-Zishu-Token": self.secret, **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", 30)
        return requests.request(method, self.url + path, headers=headers, **kwargs)

    def wait_job(
        self, job_id: int, until=("SUCCESS", "FAILED", "CANCELLED", "INTERRUPTED"), timeout: float = 60
    ) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            job = self.api("GET", f"/api/jobs/{job_id}").json()["job"]
            if job["status"] in until:
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} still {job['status']} after {timeout}s: {job}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@pytest.fixture
def app_env(tmp_path: Path, registry: Path, file_server: FileServer):
    """Environment for a ``zishu serve`` over a catalog of three resources whose files ``file_server``
    serves: zishu/hero (character) requires zishu/base-model; zishu/big-model is 8 MiB. Returns
    ``(env, file_server, home)``."""
    base = make_manifest("zishu/base-model", kind="model", name="Base Model", tags=["llm", "test"])
    base["versions"][0]["files"] = [serve_file(file_server, "base.gguf", 300_000)]
    hero = make_manifest("zishu/hero", kind="character", name="Hero", summary="A brave test character.",
                         tags=["anime", "test"])
    hero["versions"][0]["files"] = [serve_file(file_server, "portrait.png", 10_000)]
    hero["versions"][0]["requires"] = [{"id": "zishu/base-model", "version": ">=1.0.0"}]
    big = make_manifest("zishu/big-model", kind="model", name="Big Model", tags=["llm"])
    big["versions"][0]["files"] = [serve_file(file_server, "big.bin", 8 * 1024 * 1024, seed=1)]
    for m in (base, hero, big):
        write_manifest(registry, m)
    home = tmp_path / "home"
    env = {**os.environ, "ZISHU_HOME": str(home), "ZISHU_CATALOG": publish_catalog(registry, tmp_path / "catalog")}
    env.pop("ZISHU_QUEUE", None)
    return env, file_server, home


def trickle(rate: int):
    """A FileServer fault that serves the file at about ``rate`` bytes/s (Range supported), so a test
    can watch a download in flight, cancel it or kill the app during it."""

    def fault(handler) -> bool:
        path = handler.path.split("?", 1)[0]
        body = handler.server_files[path]
        start = 0
        rng = handler.headers.get("Range")
        if rng and rng.startswith("bytes="):
            start = int(rng[6:].partition("-")[0] or 0)
        chunk = body[start:]
        handler.send_response(206 if start else 200)
        handler.send_header("Content-Length", str(len(chunk)))
        handler.send_header("Accept-Ranges", "bytes")
        if start:
            handler.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        handler.end_headers()
        if handler.command == "HEAD":
            return True
        step = max(1024, rate // 20)
        try:
            for i in range(0, len(chunk), step):
                handler.wfile.write(chunk[i : i + step])
                handler.wfile.flush()
                time.sleep(step / rate)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return True

    return fault


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium driven by Playwright (its own browser download can't work here)."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    assert executable, "Chromium is missing: run `make setup` (it installs Debian's chromium)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextlib.contextmanager
def watched_page(browser, url: str):
    """A new page opened at ``url`` (a login URL sets the app's cookie) that fails the test, when it
    closes, on any console error or uncaught exception (a Content-Security-Policy violation among them)."""
    context = browser.new_context()
    page = context.new_page()
    problems: list[str] = []
    page.on("console",
            lambda m: m.type == "error" and "Failed to load resource" not in m.text and problems.append(m.text))
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(url)
    try:
        yield page
    finally:
        context.close()
    assert not problems, problems


def app_origin(page) -> str:
    """Where a logged-in page shows the app: the launch's own ``zishu-<random>.localhost:PORT`` (the
    login on 127.0.0.1 hops there; the cookie lives only on that name)."""
    from urllib.parse import urlsplit

    where = urlsplit(page.url)
    return f"{where.scheme}://{where.netloc}"


PLUGINS = Path(__file__).parent / "plugins"


def install_test_plugins(site: Path) -> str:
    """Write the dist-info of a distribution ``zishu-test-plugins`` whose entry points are the modules
    in tests/plugins/; return a PYTHONPATH that makes it installed."""
    info = site / "zishu_test_plugins-1.0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: zishu-test-plugins\nVersion: 1.0.0\n")
    (info / "entry_points.txt").write_text(
        "[zishu]\nbroken = zishu_test_broken\nangry = zishu_test_angry\npanel = zishu_test_panel\n"
        "grumpy = zishu_test_grumpy\n")
    return os.pathsep.join([str(site), str(PLUGINS), os.environ.get("PYTHONPATH", "")])


@pytest.fixture(scope="session")
def companion_models(tmp_path_factory) -> dict[str, Path]:
    """The companion's tiny models (tests/tiny_companion.py), built once per test process."""
    from tiny_companion import write_companion_models

    return write_companion_models(tmp_path_factory.mktemp("companion-models"))


@pytest.fixture
def companion_home(tmp_path, companion_models) -> Path:
    """``tmp_path/home`` (the ``runtime`` fixture's home too) with those models and Mei installed."""
    from tiny_companion import install_companion

    install_companion(tmp_path / "home", companion_models)
    return tmp_path / "home"


@pytest.fixture
def runtime(tmp_path, monkeypatch):
    """A Runtime for ``tmp_path/home`` (in-app queue), its loaded models unloaded afterwards."""
    from zishu.runtime import Runtime

    monkeypatch.setenv("ZISHU_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ZISHU_QUEUE", raising=False)
    rt = Runtime(tmp_path / "home")
    yield rt
    rt.models.unload()
    rt.close()


def zishu(environ: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the zishu CLI in a subprocess with ``environ``; an unexpected exit status fails the test with its output."""
    result = subprocess.run([sys.executable, "-m", "zishu.cli", *args], env=environ, capture_output=True, text=True,
                            timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"zishu {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture
def characters_client(runtime):
    """The app in this process as a Flask test client with the secret (the Characters blueprint
    registered when the built-in panels do not yet)."""
    from zishu.web.app import create_app
    from zishu.web.characters import characters

    app = create_app(runtime, "s3cret")
    if "characters" not in app.blueprints:
        app.register_blueprint(characters)
    client = app.test_client()
    client.environ_base.update(HTTP_X_ZISHU_TOKEN="s3cret")
    return client
