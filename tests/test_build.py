"""`zishu catalog build`: the JSON API, the site pages, incremental rebuilds, and refusals."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from catalog_sites import SITE, populate
from conftest import make_manifest, write_manifest
from zishu.cli import cli
from zishu.errors import ManifestError
from zishu_catalog.build import build_catalog
from zishu_catalog.build.pages import PAGE_SIZE


def _build(registry: Path, out: Path, work: Path, **kw):
    return build_catalog(registry, out, site=SITE, work=work, **kw)


@pytest.fixture
def built(registry: Path, tmp_path: Path):
    populate(registry, 130)
    out, work = tmp_path / "site", tmp_path / "work"
    report = _build(registry, out, work)
    return registry, out, work, report


def test_index_has_one_compact_entry_per_resource(built):
    _registry, out, _, report = built
    index = json.loads((out / "api/v1/index.json").read_text())
    assert report.resources == index["count"] == 131
    entry = next(e for e in index["resources"] if e["id"] == "zishu/moonlit-violinist")
    assert entry == {
        "id": "zishu/moonlit-violinist",
        "kind": "character",
        "name": "Moonlit Violinist",
        "summary": "A quiet musician who plays at night.",
        "tags": ["music", "night"],
        "license": "Apache-2.0",
        "latest": "1.0.0",
        "size": 123456,
        "size_exact": True,
        "install_size": 123456,
        "install_size_exact": True,
        "downloads": 0,
        "downloads_30d": 0,
        "updated": "2026-01-01",
    }


def test_detail_and_schema_are_published(built):
    _, out, _, _ = built
    detail = json.loads((out / "api/v1/resources/zishu/moonlit-violinist.json").read_text())
    assert detail["versions"][0]["files"][0]["sha256"] == "ab" * 32
    assert detail["downloads"] == {"total": 0, "last_30_days": 0}
    schema = json.loads((out / "schema/resource.schema.json").read_text())
    assert schema["title"] == "Zishu catalog resource manifest"
    assert set(schema["discriminator"]["mapping"]) == {"character", "live2d", "lora", "model", "voice", "plugin"}


def test_resource_page_shows_files_and_install_and_escapes_html(built):
    _, out, _, _ = built
    page = (out / "r/zishu/moonlit-violinist/index.html").read_text()
    assert "zishu://install/zishu/moonlit-violinist" in page
    assert "zishu install zishu/moonlit-violinist" in page
    assert "portrait.png" in page and "120.6 KiB" in page and "ab" * 32 in page  # 123,456 bytes (IEC)
    assert "<strong>violin</strong>" in page
    assert "alert('x')" not in page  # the description's <script> was removed


def test_resource_pages_stay_out_of_the_navigation(built):
    _, out, _, _ = built
    page = (out / "r/owner1/item-0001/index.html").read_text()
    assert "item-0002" not in page  # no page embeds links to every other resource
    assert len(page.encode()) < 30 * 1024


def test_listings_paginate_per_kind_and_tag(built):
    _, out, _, _ = built
    first = (out / "browse/all/popular/index.html").read_text()
    assert "page 1 of 2" in first and 'rel="next"' in first
    second = (out / "browse/all/popular/2/index.html").read_text()
    assert "page 2 of 2" in second and 'rel="prev"' in second
    assert first.count('class="zc-name"') == PAGE_SIZE
    assert second.count('class="zc-name"') == 131 - PAGE_SIZE
    assert (out / "browse/kind/voice/new/index.html").exists()
    assert (out / "browse/tag/music/popular/index.html").exists()
    newest = (out / "browse/all/new/index.html").read_text()
    assert "2026-12-" in newest and "2026-01-" not in newest  # newest first; January is on page 2


def test_rebuild_after_one_change_is_incremental_and_complete(built):
    registry, out, work, _ = built
    path = registry / "resources/zishu/moonlit-violinist.yaml"
    data = yaml.safe_load(path.read_text())
    data["summary"] = "Now also plays the cello."
    path.write_text(yaml.safe_dump(data))
    untouched = out / "r/owner1/item-0001/index.html"
    before = untouched.stat().st_mtime_ns
    (registry / "resources/owner3/item-0003.yaml").unlink()

    report = _build(registry, out, work)

    assert report.incremental
    assert "Now also plays the cello." in (out / "r/zishu/moonlit-violinist/index.html").read_text()
    assert untouched.stat().st_mtime_ns == before
    assert not (out / "r/owner3/item-0003/index.html").exists()
    assert not (out / "api/v1/resources/owner3/item-0003.json").exists()
    index = json.loads((out / "api/v1/index.json").read_text())
    assert index["count"] == 130


def test_a_bad_manifest_fails_the_build_and_keeps_the_published_site(built):
    registry, out, work, _ = built
    before = (out / "api/v1/index.json").read_bytes()
    write_manifest(registry, make_manifest("eve/broken", license="Not-A-License"))
    with pytest.raises(ManifestError) as err:
        _build(registry, out, work)
    assert "resources/eve/broken.yaml" in str(err.value) and "license" in str(err.value)
    assert (out / "api/v1/index.json").read_bytes() == before


def test_local_urls_need_the_flag(registry: Path, tmp_path: Path):
    data = make_manifest("alice/local")
    data["versions"][0]["files"][0]["url"] = "http://127.0.0.1:8000/model.bin"
    write_manifest(registry, data)
    with pytest.raises(ManifestError) as err:
        _build(registry, tmp_path / "a", tmp_path / "wa")
    assert "resources/alice/local.yaml" in str(err.value) and "versions[0].files[0].url" in str(err.value)
    report = _build(registry, tmp_path / "b", tmp_path / "wb", allow_local_urls=True)
    assert report.resources == 1


def test_cli_builds_and_reports(registry: Path, tmp_path: Path):
    write_manifest(registry, make_manifest("alice/one"))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        ["catalog", "build", str(registry), "--out", str(out), "--site", str(SITE), "--work-dir", str(tmp_path / "w")],
    )
    assert result.exit_code == 0, result.output
    assert "built 1 resources" in result.output
    assert (out / "index.html").exists() and (out / "search/index.html").exists()


def test_cli_build_failure_exits_4_with_file_and_field(registry: Path, tmp_path: Path):
    write_manifest(registry, make_manifest("alice/one", tags="not-a-list"))
    result = CliRunner().invoke(
        cli,
        ["catalog", "build", str(registry), "--out", str(tmp_path / "o"), "--site", str(SITE),
         "--work-dir", str(tmp_path / "w")],
    )
    assert result.exit_code == 4
    assert "resources/alice/one.yaml" in result.output and "tags" in result.output
    assert not (tmp_path / "o").exists()


def test_the_real_catalog_builds(tmp_path: Path):
    """registry_index/ itself must always build (hub files without hashes are allowed there)."""
    repo_registry = SITE.parent / "registry_index"
    report = build_catalog(repo_registry, tmp_path / "site", site=SITE, work=tmp_path / "w")
    assert report.resources == len(list((repo_registry / "resources").rglob("*.yaml")))
    assert os.path.exists(tmp_path / "site/r/live2d/hiyori/index.html")
