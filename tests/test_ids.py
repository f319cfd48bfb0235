"""One id rule (zishu.ids): dotted names the manifest allows work through the API routes,
zishu:// links, the CLI's install path and --model; everything else is refused the same way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FileServer, install_resource, make_manifest, publish_catalog, serve_file, write_manifest
from zishu.catalog import RESOURCE
from zishu.errors import ResourceNotAvailable, UsageError
from zishu.ids import Request, is_id, parse_id, parse_request, split_request
from zishu.links import location

DOTTED = "qwen/qwen2.5-0.5b-instruct"


@pytest.mark.parametrize("rid", ["a/b", "alice/example", DOTTED, "owner-1/v1.0.2", "a0/b.c-d"])
def test_ids_the_manifest_allows_are_ids(rid):
    assert is_id(rid) and parse_id(rid) == rid
    RESOURCE.validate_python(make_manifest(rid))  # the manifest takes exactly these


@pytest.mark.parametrize("rid", ["Alice/x", "a/b/c", "a", "a/", "/b", "a/-b", "a/b-", "a/.b", "a/b.", "own.er/x",
                                 "a/b\n", "a/ b", "a/" + "x" * 65, "a/b@1.0.0", "a/..", 7, None])
def test_anything_else_is_refused_saying_the_rule(rid):
    assert not is_id(rid)
    with pytest.raises(UsageError, match=r"is not a resource id .*owner/name"):
        parse_id(rid)


def test_requests_split_and_parse():
    assert split_request(" Acme/Tiny@>=1,<2 ") == ("acme/tiny", ">=1,<2")
    assert parse_request(f"{DOTTED}@1.2.0-rc.1") == Request(DOTTED, "1.2.0-rc.1")
    assert str(parse_request(f"{DOTTED}@1.2.0")) == f"{DOTTED}@1.2.0"
    assert parse_request("acme/tiny@>=1,<2", exact=False).version == ">=1,<2"
    with pytest.raises(UsageError, match="not a version"):
        parse_request("acme/tiny@>=1,<2")
    with pytest.raises(UsageError, match="not a resource id"):
        parse_request("acme@1.0.0")


def test_a_dotted_id_through_a_zishu_link():
    assert location(f"zishu://resource/{DOTTED}") == f"/resources/{DOTTED}"
    assert location(f"zishu://install/{DOTTED}@1.0.0") == f"/resources/{DOTTED}?install={DOTTED}@1.0.0"
    assert location("zishu://install/Qwen/Qwen2.5-0.5B") == "/resources/qwen/qwen2.5-0.5b?install=qwen/qwen2.5-0.5b"
    for bad in ("zishu://install/qwen/qwen2.5.", "zishu://install/qwen/a/b", "zishu://install/qwen/x@",
                "zishu://install/qwen/x@1 0", "zishu://delete/qwen/x", "https://install/qwen/x"):
        with pytest.raises(UsageError):
            location(bad)


def test_a_dotted_id_through_the_api_route(runtime, tmp_path, registry, monkeypatch):
    from zishu.web.app import create_app

    write_manifest(registry, make_manifest(DOTTED, name="Qwen 2.5"))
    monkeypatch.setenv("ZISHU_CATALOG", publish_catalog(registry, tmp_path / "catalog"))
    install_resource(runtime.home, DOTTED, {"format": "gguf", "role": "llm"})
    client = create_app(runtime, "s3cret").test_client()
    client.environ_base.update(HTTP_X_ZISHU_TOKEN="s3cret")

    detail = client.get(f"/api/catalog/resources/{DOTTED}")
    assert detail.status_code == 200, detail.json
    assert detail.json["id"] == DOTTED and detail.json["installed"] == ["1.0.0"]
    assert client.get("/api/catalog/resources/Qwen/Qwen2.5-0.5B-Instruct").json["id"] == DOTTED
    opened = client.post("/api/open", json={"url": f"zishu://install/{DOTTED}@1.0.0"})
    assert opened.json == {"location": f"/resources/{DOTTED}?install={DOTTED}@1.0.0"}
    refused = client.get("/api/catalog/resources/qwen/qwen2.5.")
    assert refused.status_code == 400 and refused.json["error"]["code"] == "USAGE"
    assert "owner/name" in refused.json["error"]["message"]
    queued = client.post("/api/installs", json={"request": f"{DOTTED}@>=1,<2"})
    assert queued.status_code == 202, queued.json
    assert client.post("/api/installs", json={"request": "qwen/qwen2.5."}).status_code == 400


def test_a_dotted_id_through_the_cli_install_path(tmp_path: Path, registry: Path, file_server: FileServer):
    model = make_manifest(DOTTED, kind="model")
    model["versions"][0]["files"] = [serve_file(file_server, "qwen.gguf", 4_000)]
    write_manifest(registry, model)
    env = {**os.environ, "ZISHU_HOME": str(tmp_path / "home"),
           "ZISHU_CATALOG": publish_catalog(registry, tmp_path / "c")}
    env.pop("ZISHU_QUEUE", None)

    def zishu(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "zishu.cli", *args], env=env, capture_output=True, text=True,
                              timeout=120)

    done = zishu("install", f"{DOTTED}@1.0.0", "--json")
    assert done.returncode == 0, done.stderr
    assert [(r["id"], r["version"]) for r in json.loads(done.stdout)] == [(DOTTED, "1.0.0")]
    path = zishu("path", DOTTED)
    assert path.returncode == 0 and Path(path.stdout.strip(), "qwen.gguf").is_file()


def test_a_dotted_id_through_model_resolution(tmp_path):
    from zishu.engines.resolve import resolve_model
    from zishu.resources.versions import VersionStore

    install_resource(tmp_path, DOTTED, {"format": "gguf", "role": "llm"})
    assert resolve_model(f"{DOTTED}@1.0.0", VersionStore(tmp_path)).id == DOTTED
    with pytest.raises(ResourceNotAvailable, match="not a catalog id"):
        resolve_model("qwen/qwen2.5@1 0", VersionStore(tmp_path))
