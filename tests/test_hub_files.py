"""Hub files are verified or clearly unverified, never silently trusted, and no size shows as "0 B".

A catalog on a local server plays the hub: a file with no sha256 in the catalog is checked against
the hash the hub publishes (``X-Linked-Etag`` / ``X-Linked-Size``), and its measured sha256 and size
are recorded; ``install --from`` refuses a file it cannot verify unless ``--trust-unverified``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import AppProcess, FileServer, make_manifest, publish_catalog, write_manifest, zishu
from conftest import serve_file as _file
from zishu.catalog.client import SNAPSHOT
from zishu.sizes import download_size
from zishu_catalog.build.index import Downloads

ROOT = Path(__file__).resolve().parents[1]
SIZES_JS = ROOT / "host" / "zishu" / "web" / "static" / "sizes.js"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hub_file(server: FileServer, name: str, body: bytes, published: dict) -> dict:
    """Serve ``body`` the way Hugging Face does: the resolve URL answers 302 to a CDN and names the
    LFS object's sha256 (``published["sha"]``) and size; the catalog entry gives neither."""
    cdn = f"/cdn/{name}"
    server.files[cdn] = body

    def resolve(h) -> bool:
        h.send_response(302)
        h.send_header("Location", cdn)
        h.send_header("X-Repo-Commit", "0" * 40)
        h.send_header("X-Linked-Etag", f'"{published["sha"]}"')
        h.send_header("X-Linked-Size", str(len(body)))
        h.send_header("Content-Length", "0")
        h.end_headers()
        return True

    path = f"/org/m/resolve/{'1' * 40}/{name}"
    server.faults[path] = resolve
    return {"name": name, "url": server.url + path}


@pytest.fixture
def hub(tmp_path: Path, registry: Path, file_server: FileServer):
    """A catalog with a hub model (no sha256/size), a model with both, and a character needing both."""
    body = os.urandom(64 * 1024)
    published = {"sha": sha(body)}
    hubbed = make_manifest("zishu/hub-model", kind="model")
    hubbed["versions"][0]["files"] = [hub_file(file_server, "weights.gguf", body, published)]
    pinned = make_manifest("zishu/pinned-model", kind="model")
    pinned["versions"][0]["files"] = [_file(file_server, "pinned.gguf", 300_000)]
    char = make_manifest("zishu/hero", kind="character")
    char["versions"][0]["files"] = [_file(file_server, "portrait.png", 10_000)]
    char["versions"][0]["requires"] = [{"id": "zishu/hub-model", "version": ">=1.0.0"},
                                       {"id": "zishu/pinned-model", "version": "*"}]
    for m in (hubbed, pinned, char):
        write_manifest(registry, m)
    # as read, not validated: the validator accepts a checksum-less file only from a real hub URL
    catalog = publish_catalog(registry, tmp_path / "catalog", validated=False)
    environ = {**os.environ, "ZISHU_HOME": str(tmp_path / "home"), "ZISHU_CATALOG": catalog, "COLUMNS": "250"}
    return environ, body, published, tmp_path / "home"


# ---- downloads of hub files -------------------------------------------------------------------


def test_a_hub_file_is_verified_against_the_hubs_hash_and_its_measurements_are_recorded(hub):
    environ, body, _published, home = hub
    zishu(environ, "install", "zishu/hub-model")
    folder = home / "resources/zishu/hub-model/1.0.0"
    assert (folder / "weights.gguf").read_bytes() == body
    manifest = json.loads((folder / "manifest.json").read_text())
    entry = manifest["versions"][0]["files"][0]
    assert (entry["sha256"], entry["size"]) == (sha(body), len(body))  # shown from then on
    record = json.loads(zishu(environ, "list", "--json").stdout)["zishu/hub-model"]["1.0.0"]
    assert record["files"]["weights.gguf"] == {"sha256": sha(body), "size": len(body)}
    info = zishu(environ, "info", "zishu/hub-model").stdout
    assert sha(body) in info and "measured at install" in info and "64.0 KiB" in info


def test_a_hub_file_whose_bytes_are_not_the_published_ones_is_not_installed(hub):
    environ, _body, published, _home = hub
    published["sha"] = sha(b"other bytes")
    result = zishu(environ, "install", "zishu/hub-model", check=False)
    assert result.returncode != 0 and published["sha"] in result.stderr
    assert zishu(environ, "path", "zishu/hub-model", check=False).returncode == 3


# ---- --from -----------------------------------------------------------------------------------


def test_from_refuses_a_file_it_cannot_verify_unless_trusted(hub, tmp_path: Path):
    environ, _body, _published, home = hub
    mine = tmp_path / "random.gguf"
    mine.write_bytes(os.urandom(4096))
    refused = zishu(environ, "install", "zishu/hub-model", "--from", str(mine), check=False)
    assert refused.returncode != 0
    assert "no sha256" in refused.stderr and "cannot be verified" in refused.stderr
    assert "--trust-unverified" in refused.stderr
    assert zishu(environ, "path", "zishu/hub-model", check=False).returncode == 3

    zishu(environ, "install", "zishu/hub-model", "--from", str(mine), "--trust-unverified")
    manifest = json.loads((home / "resources/zishu/hub-model/1.0.0/manifest.json").read_text())
    assert manifest["versions"][0]["files"][0]["sha256"] == sha(mine.read_bytes())


def test_from_refuses_a_file_whose_hash_does_not_match(hub, tmp_path: Path):
    environ, *_ = hub
    wrong = tmp_path / "pinned.gguf"
    wrong.write_bytes(b"\0" * 300_000)  # the right size, other bytes
    result = zishu(environ, "install", "zishu/pinned-model", "--from", str(wrong), "--trust-unverified",
                   check=False)
    assert result.returncode == 6 and "sha256" in result.stderr
    assert zishu(environ, "path", "zishu/pinned-model", check=False).returncode == 3


def test_trust_unverified_goes_only_with_from(hub):
    environ, *_ = hub
    result = zishu(environ, "install", "zishu/hub-model", "--trust-unverified", check=False)
    assert result.returncode != 0 and "--from" in result.stderr


# ---- sizes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("known", "exact", "shown"), [
    (0, False, "size unknown"), (None, False, "size unknown"), (0, True, "nothing to download"),
    (400 * 2**20, False, "at least 400.0 MiB"), (400 * 2**20, True, "400.0 MiB"), (1023, True, "1023 B"),
])
def test_download_size_says_unknown_or_at_least(known, exact, shown):
    assert download_size(known, exact=exact) == shown


def test_the_javascript_mirror_says_the_same(tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed; run `make setup` (Node 20 is needed for the JS tests)")
    module = tmp_path / "sizes.mjs"
    module.write_text(SIZES_JS.read_text(encoding="utf-8"), encoding="utf-8")
    cases = [(0, False), (None, False), (0, True), (400 * 2**20, False), (400 * 2**20, True), (123_456, False)]
    script = (f"import {{ formatDownloadSize }} from {json.dumps(module.as_uri())};\n"
              f"const cases = {json.dumps(cases)};\n"
              "console.log(JSON.stringify(cases.map(([n, exact]) => formatDownloadSize(n, exact))));\n")
    done = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [download_size(n, exact=e) for n, e in cases]


def test_the_cli_never_shows_0_b_for_an_unknown_size(hub):
    environ, *_ = hub
    listing = zishu(environ, "search", "--json").stdout
    entries = {e["id"]: e for e in json.loads(listing)}
    assert entries["zishu/hub-model"]["size_exact"] is False
    assert entries["zishu/hero"]["install_size"] == 310_000 and not entries["zishu/hero"]["install_size_exact"]
    assert entries["zishu/pinned-model"]["install_size_exact"] is True
    table = zishu(environ, "search", "--limit", "10").stdout
    assert "0 B" not in table and "size unknown" in table and "at least 302.7 KiB" in table
    info = zishu(environ, "info", "zishu/hub-model").stdout
    assert "0 B" not in info and "size unknown" in info
    plan = zishu(environ, "install", "zishu/hero").stderr
    assert "zishu/hub-model@1.0.0  size unknown" in plan and "total  at least 302.7 KiB" in plan


def test_the_bundled_catalog_carries_qwens_published_hash_and_xiaoyus_whole_size():
    """Qwen2.5-0.5B q4_k_m at hub commit 9217f5db…: the LFS sha256 and size other projects pin."""
    index = json.loads((SNAPSHOT / "api/v1/index.json").read_text())
    entries = {e["id"]: e for e in index["resources"]}
    qwen = json.loads((SNAPSHOT / "api/v1/resources/qwen/qwen2-5-0-5b-instruct-gguf.json").read_text())
    gguf = qwen["versions"][0]["files"][0]
    assert gguf["sha256"] == "74a4da8c9fdbcd15bd1f6d01d621410d31c6fc00986f5eb687824e7b93d7a9db"
    assert gguf["size"] == 491_400_032
    xiaoyu = entries["zishu/xiaoyu"]
    assert xiaoyu["install_size_exact"] and xiaoyu["install_size"] > 491_400_032
    for e in entries.values():  # never "0 B": unknown, at least, or nothing to download
        assert "0 B" not in download_size(e["install_size"], exact=e["install_size_exact"])


# ---- the app's resource page and the catalog site ----------------------------------------------


def test_the_resource_page_says_size_unknown_and_at_least(hub):
    environ, *_ = hub
    with AppProcess(environ) as app:
        model = app.api("GET", "/resources/zishu/hub-model").text
        hero = app.api("GET", "/resources/zishu/hero").text
    assert '<span class="muted" data-testid="file-size">size unknown</span>' in model
    assert '<td class="num" data-testid="version-size">size unknown</td>' in model
    assert 'data-testid="install-size">Download: at least 302.7 KiB with what it needs<' in hero
    assert '<td class="num" data-testid="version-size">9.8 KiB</td>' in hero
    assert ">0 B<" not in model + hero


def test_the_catalog_site_says_at_least_for_a_character_whose_models_are_partly_unknown(hub, registry):
    from zishu.catalog import read_manifest
    from zishu_catalog.build.index import index_entries
    from zishu_catalog.build.pages import resource_page

    resources = {m.id: m for m in (read_manifest(p) for p in (registry / "resources").glob("*/*.yaml"))}
    entries = {e["id"]: e for e in index_entries(resources, {})}
    hero = entries["zishu/hero"]
    page = resource_page(resources["zishu/hero"], Downloads(), (hero["install_size"], hero["install_size_exact"]))
    assert ">at least 302.7 KiB</span>" in page
    model = resource_page(resources["zishu/hub-model"], Downloads())
    assert ">size unknown</span>" in model and "size unknown (checked against the hub at download)" in model
    assert ">0 B<" not in page + model
