"""Shared test fixtures: manifest factories and a real HTTP server on 127.0.0.1 with fault injection."""

from __future__ import annotations

import copy
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

import pytest
import yaml

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
    "plugin": {"distribution": "zishu-example", "wheel": "zishu_example-1.0.0-py3-none-any.whl", "entry_point": "example"},
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
                    try:
                        self.wfile.write(chunk)
                    except (BrokenPipeError, ConnectionResetError):
                        pass

        super().__init__(Handler)


@pytest.fixture
def file_server():
    with FileServer() as server:
        yield server
