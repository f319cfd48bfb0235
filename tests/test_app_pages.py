"""Server-rendered pages: a manifest's Markdown description is shown formatted and can't inject script."""

from __future__ import annotations

from conftest import AppProcess, make_manifest, publish_catalog, serve_file, write_manifest


def test_descriptions_render_markdown_without_scripts(app_env, registry, tmp_path):
    env, server, _ = app_env
    sly = make_manifest("zishu/sly", kind="model", name="Sly",
                        description="**Bold** claim.\n\n<script>alert(1)</script><img src=x onerror=alert(2)>")
    sly["versions"][0]["files"] = [serve_file(server, "sly.bin", 100)]
    write_manifest(registry, sly)
    env = {**env, "ZISHU_CATALOG": publish_catalog(registry, tmp_path / "catalog-sly")}
    with AppProcess(env) as app:
        page = app.api("GET", "/resources/zishu/sly").text
    assert "<strong>Bold</strong> claim." in page
    assert "<script>alert" not in page and "onerror" not in page
