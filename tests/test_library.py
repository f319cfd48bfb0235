"""The library service (zishu.resources.library) on a real ZISHU_HOME: what is installed, the
Library panel's listing, catalog entries marked with the versions installed, uninstall and folders;
and the catalog's facets (zishu.catalog.search.facets)."""

from __future__ import annotations

import pytest

from conftest import install_resource
from zishu.catalog.search import facets
from zishu.errors import NotFound, ResourceNotAvailable
from zishu.resources.library import Library
from zishu.resources.versions import VersionStore


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"w" * 1000)
    install_resource(home, "acme/talker", {"format": "gguf", "role": "llm"}, files={"m.gguf": weights},
                     name="Talker", summary="A tiny talker.")
    install_resource(home, "acme/mei", {"persona": "You are {{char}}."}, kind="character", name="Mei")
    return home


def test_the_listing_names_each_resource_from_its_manifest_with_sizes(home):
    library = Library(VersionStore(home))
    listing = library.listing()
    assert listing["home"] == str(home)
    assert [r["id"] for r in listing["resources"]] == ["acme/mei", "acme/talker"]
    talker = listing["resources"][1]
    assert (talker["name"], talker["summary"], talker["kind"]) == ("Talker", "A tiny talker.", "model")
    [version] = talker["versions"]
    assert version["version"] == "1.0.0" and version["path"] == str(home / "resources" / "acme" / "talker" / "1.0.0")
    assert talker["size_bytes"] == version["size_bytes"] and listing["size_bytes"] == sum(
        r["size_bytes"] for r in listing["resources"])


def test_sizes_are_what_the_version_folder_holds_so_a_character_without_files_is_never_0_b(home):
    listing = {r["id"]: r for r in Library(VersionStore(home)).listing()["resources"]}
    mei = home / "resources" / "acme" / "mei" / "1.0.0"
    assert listing["acme/mei"]["size_bytes"] == sum(p.stat().st_size for p in mei.rglob("*") if p.is_file()) > 0
    assert listing["acme/talker"]["size_bytes"] > 1000  # the weights and the manifest beside them


def test_a_version_whose_manifest_is_unreadable_is_still_listed_with_its_kind(home):
    registry = VersionStore(home)
    registry.load()  # the registry records the kinds now, from the manifests
    (home / "resources" / "acme" / "mei" / "1.0.0" / "manifest.json").write_text("{broken", encoding="utf-8")
    mei = Library(registry).listing()["resources"][0]
    assert (mei["id"], mei["name"], mei["kind"]) == ("acme/mei", "acme/mei", "character")


def test_catalog_entries_are_marked_with_the_versions_installed(home):
    library = Library(VersionStore(home))
    assert library.installed() == {"acme/mei": ["1.0.0"], "acme/talker": ["1.0.0"]}
    marked = library.mark_installed([{"id": "acme/mei", "name": "Mei"}, {"id": "acme/other"}])
    assert marked == [{"id": "acme/mei", "name": "Mei", "installed": ["1.0.0"]}, {"id": "acme/other", "installed": []}]


def test_uninstall_and_folder_refuse_what_is_not_installed(home):
    library = Library(VersionStore(home))
    assert library.folder("acme/talker") == home / "resources" / "acme" / "talker" / "1.0.0"
    with pytest.raises(NotFound, match="acme/nobody is not installed"):
        library.uninstall("acme/nobody")
    with pytest.raises(ResourceNotAvailable):
        library.folder("acme/nobody")
    assert library.uninstall("acme/talker") == ["1.0.0"]
    assert "acme/talker" not in library.installed()
    assert not (home / "resources" / "acme" / "talker" / "1.0.0").exists()


def test_facets_list_kinds_licenses_base_models_and_the_most_used_tags():
    entries = [
        {"id": "a/x", "kind": "model", "tags": ["chat", "small"], "license": "MIT", "base_model": "qwen2"},
        {"id": "a/y", "kind": "lora", "tags": ["chat"], "license": "Apache-2.0", "base_model": None},
        {"id": "a/z", "kind": "model", "tags": ["anime", "chat", "small"], "license": ""},
    ]
    assert facets(entries) == {"kinds": ["lora", "model"], "tags": ["chat", "small", "anime"],
                               "licenses": ["Apache-2.0", "MIT"], "base_models": ["qwen2"]}
    assert facets(entries, top_tags=1)["tags"] == ["chat"]
    assert facets([]) == {"kinds": [], "tags": [], "licenses": [], "base_models": []}


def test_nothing_installed_is_an_empty_library(tmp_path):
    library = Library(VersionStore(tmp_path / "empty"))
    assert library.listing() == {"resources": [], "size_bytes": 0, "home": str(tmp_path / "empty")}
    assert library.installed() == {} and library.mark_installed([{"id": "a/b"}]) == [{"id": "a/b", "installed": []}]
