"""A character's page on the built catalog site, in headless Chromium: the full download list
(every resource it pulls, transitively, with sizes and the total), the base model's hub link, the
install command, and the hardware budget against the tiers."""

from __future__ import annotations

import shutil

import pytest

from catalog_sites import SITE, SiteServer
from conftest import make_manifest, write_manifest
from zishu_catalog.build import build_catalog

pytestmark = pytest.mark.browser

MiB = 2**20
HUB = "https://huggingface.co/tiny-org/tiny-llm-gguf"


def _file(name: str, size: int, url: str | None = None) -> dict:
    return {"name": name, "url": url or f"https://github.com/zishu/parts/releases/download/v1.0.0/{name}",
            "sha256": "c" * 64, "size": size}


def needs_catalog(registry) -> None:
    """zishu/starlit requires a LoRA (which requires the LLM) and a Live2D model: three levels."""
    llm = make_manifest("tiny-org/tiny-llm", "model", name="Tiny LLM",
                        spec={"format": "gguf", "role": "llm", "base_model": "tiny-org/tiny-llm",
                              "ram_mb": 3072, "vram_mb": 2048})
    llm["versions"][0]["files"] = [_file("tiny.gguf", 2000 * MiB, f"{HUB}/resolve/0123abc/tiny.gguf")]
    lora = make_manifest("zishu/starlit-lora", "lora", name="Starlit LoRA",
                         spec={"target": "llm", "base_model": "tiny-org/tiny-llm"})
    lora["versions"][0]["files"] = [_file("starlit.gguf", 100 * MiB)]
    lora["versions"][0]["requires"] = [{"id": "tiny-org/tiny-llm", "version": ">=1.0.0"}]
    live2d = make_manifest("zishu/starlit-model", "live2d", name="Starlit Live2D")
    live2d["versions"][0]["files"] = [_file("model.model3.json", 4 * MiB)]
    star = make_manifest("zishu/starlit", "character", name="Starlit Singer",
                         spec={"persona": "You sing.", "llm": {"model": "tiny-org/tiny-llm"}})
    star["versions"][0]["files"] = [_file("portrait.png", MiB)]
    star["versions"][0]["requires"] = [{"id": "zishu/starlit-lora", "version": "*"},
                                       {"id": "zishu/starlit-model", "version": ">=1.0.0"}]
    for data in (llm, lora, live2d, star):
        write_manifest(registry, data)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("catalog")
    registry = root / "registry_index"
    (registry / "resources").mkdir(parents=True)
    (registry / "retired.yaml").write_text("retired: []\n")
    shutil.copy(SITE.parent / "registry_index" / "policy.yaml", registry / "policy.yaml")
    needs_catalog(registry)
    build_catalog(registry, root / "site", site=SITE, work=root / "work")
    with SiteServer(root / "site") as server:
        yield server.url


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()


def test_character_page_lists_every_download_with_sizes_and_total(site, page):
    page.goto(site + "r/zishu/starlit/")
    rows = page.locator("table.zc-downloads tbody tr")
    ids = [rows.nth(i).locator("code").inner_text() for i in range(rows.count())]
    assert ids == ["tiny-org/tiny-llm", "zishu/starlit-lora", "zishu/starlit-model", "zishu/starlit"]  # deps first
    sizes = page.locator("table.zc-downloads tbody td.zc-size").all_inner_texts()
    assert sizes == ["2.0 GiB", "100.0 MiB", "4.0 MiB", "1.0 MiB"]
    assert page.inner_text("table.zc-downloads td.zc-total") == "2.1 GiB"  # 2,105 MiB
    assert "4 resources" in page.inner_text("table.zc-downloads tfoot")
    assert page.get_attribute("a.zc-hub", "href") == HUB
    assert "Tiny LLM" in page.inner_text(".zc-base-model")
    assert page.inner_text("pre.zc-install-all") == "zishu install zishu/starlit"


def test_character_page_shows_the_hardware_budget_against_the_tiers(site, page):
    page.goto(site + "r/zishu/starlit/")
    budget = page.inner_text("table.zc-budget")
    assert "2.1 GiB" in budget  # disk: every file
    assert "3.1 GiB" in budget  # RAM: the model's 3,072 MiB + the LoRA's 100 MiB
    assert "2.1 GiB" in budget.split("VRAM")[1]  # VRAM: 2,048 MiB + 100 MiB
    fits = {t: page.inner_text(f"table.zc-tiers tr[data-tier={t}] td.zc-fits")
            for t in ("minimum", "recommended", "best")}
    assert fits == {"minimum": "✓ yes", "recommended": "✓ yes", "best": "✓ yes"}
    assert page.locator(".zc-estimated").count() == 1  # the LoRA's memory comes from its file size


def test_a_resource_without_requirements_has_no_download_list(site, page):
    page.goto(site + "r/zishu/starlit-model/")
    assert page.locator("table.zc-files").count() == 1
    assert page.locator("table.zc-downloads").count() == 0
