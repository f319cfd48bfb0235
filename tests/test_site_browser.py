"""The built catalog site in headless Chromium: search, resource pages, pagination."""

from __future__ import annotations

import re
import shutil

import pytest

from catalog_sites import SITE, SiteServer, populate
from zishu_catalog.build import build_catalog

pytestmark = pytest.mark.browser

@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("catalog")
    registry = root / "registry_index"
    (registry / "resources").mkdir(parents=True)
    (registry / "retired.yaml").write_text("retired: []\n")
    shutil.copy(SITE.parent / "registry_index" / "policy.yaml", registry / "policy.yaml")
    populate(registry, 230)
    build_catalog(registry, root / "site", site=SITE, work=root / "work")
    with SiteServer(root / "site") as server:
        yield server.url


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()


def test_search_finds_a_resource_by_name(site, page):
    page.goto(site + "search/")
    page.fill("form.zc-search input", "moonlit")
    results = page.locator(".zc-search-results li")
    results.first.wait_for()
    assert results.count() == 1
    assert "Moonlit Violinist" in results.first.inner_text()
    assert "1 found" in page.inner_text(".zc-search-status")


def test_search_finds_resources_by_tag(site, page):
    page.goto(site + "search/?q=tag:music")
    page.locator(".zc-search-results li").first.wait_for()
    assert page.locator(".zc-search-results li").count() == 1
    page.fill("form.zc-search input", "group-3")
    page.wait_for_function("document.querySelector('.zc-search-status').textContent.startsWith('46 found')")
    assert page.locator(".zc-search-results li").count() == 46


def test_search_from_the_home_page_and_nothing_found(site, page):
    page.goto(site)
    page.fill("form.zc-search input", "no-such-thing-anywhere")
    page.wait_for_function("document.querySelector('.zc-search-status').textContent.includes('Nothing found')")
    assert page.locator(".zc-search-results li").count() == 0


def test_resource_page_shows_files_sizes_and_install_command(site, page):
    page.goto(site + "search/?q=moonlit")
    page.click(".zc-search-results a.zc-name")
    page.wait_for_url(re.compile(r".*/r/zishu/moonlit-violinist/$"))
    assert page.inner_text("h1") == "Moonlit Violinist"
    files = page.inner_text("table.zc-files")
    assert "portrait.png" in files and "120.6 KiB" in files and "ab" * 32 in files  # 123,456 bytes (IEC)
    assert page.inner_text("pre.zc-cli") == "zishu install zishu/moonlit-violinist"
    install = page.get_attribute("a[href^='zishu://']", "href")
    assert install == "zishu://install/zishu/moonlit-violinist"


def test_pagination_moves_through_a_listing(site, page):
    page.goto(site + "browse/all/popular/")
    assert "page 1 of 3" in page.inner_text(".zc-count")
    first_names = page.locator(".zc-results a.zc-name").all_inner_texts()
    page.click(".zc-pages a[rel=next]")
    page.wait_for_url(re.compile(r".*/browse/all/popular/2/$"))
    assert "page 2 of 3" in page.inner_text(".zc-count")
    second_names = page.locator(".zc-results a.zc-name").all_inner_texts()
    assert len(first_names) == len(second_names) == 100
    assert not set(first_names) & set(second_names)
    page.click(".zc-pages a:text('3')")
    page.wait_for_url(re.compile(r".*/browse/all/popular/3/$"))
    assert page.locator(".zc-results a.zc-name").count() == 31
    page.click(".zc-sorts a:text('New')")
    page.wait_for_url(re.compile(r".*/browse/all/new/$"))
    assert "page 1 of 3" in page.inner_text(".zc-count")
