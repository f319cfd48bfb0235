"""The .zpkg format: deterministic streaming pack, verified install, and every refusal (issue 17)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import FileServer, install_resource, serve_file
from zishu.errors import PackageError, RemoteError
from zishu.packaging import pack as pack_module
from zishu.packaging.format import MANIFEST
from zishu.packaging.install import undo_package_install
from zishu.packaging.packages import install_package_file, pack_character, read_package
from zishu.packaging.unpack import Limits, open_zpkg
from zishu.resources.install import Installer, installer_for
from zishu.resources.versions import VersionStore

HERE = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def _plugins():
    from zishu import plugins

    plugins.reset()
    plugins.load_plugins()
    yield
    plugins.reset()


def _resource(home: Path, server: FileServer, rid: str, kind: str, spec: dict, files: dict[str, int]) -> None:
    """A resource installed in ``home`` whose files ``server`` serves (so it can be referenced)."""
    entries, sources = [], {}
    src = home.parent / "src" / rid
    src.mkdir(parents=True, exist_ok=True)
    for name, size in files.items():
        entry = serve_file(server, f"{rid.replace('/', '-')}-{name}", size)
        entry["name"] = name
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(server.files[entry["url"].split(server.url, 1)[1]])
        entries.append(entry)
        top = name.split("/")[0]
        sources[top] = src / top  # a folder is copied whole
    versions = [{"version": "1.0.0", "released": "2026-01-01", "files": entries}]
    install_resource(home, rid, spec, kind=kind, files=sources, versions=versions)


def _world(home: Path, server: FileServer, *, base_model: bool = True) -> str:
    """An author's home: a base model, an image LoRA, a Live2D model, and local/aria using them."""
    from zishu.companion.characters import create_character

    if base_model:
        _resource(home, server, "qwen/tiny-llm", "model", {"format": "gguf", "role": "llm"}, {"model.gguf": 40_000})
    _resource(home, server, "alice/ink-lora", "lora", {"target": "image", "base_model": "sd15"},
              {"ink.safetensors": 30_000})
    _resource(home, server, "alice/aria-live2d", "live2d", {"cubism": 4, "entry": "aria.model3.json"},
              {"aria.model3.json": 2_000, "textures/t.png": 20_000})
    runtime = SimpleNamespace(home=home, registry=VersionStore(home))
    fields = {"name": "Aria", "persona": "You are Aria.", "avatar": {"live2d": "alice/aria-live2d"},
              "image_style": {"lora": "alice/ink-lora"}}
    if base_model:
        fields["llm"] = {"model": "qwen/tiny-llm"}
    return create_character(runtime, fields)


@pytest.fixture
def world(tmp_path):
    with FileServer() as server:
        home = tmp_path / "author"
        rid = _world(home, server)
        yield SimpleNamespace(home=home, store=VersionStore(home), rid=rid, server=server, tmp=tmp_path)


def _entries(path: Path) -> list[zipfile.ZipInfo]:
    with zipfile.ZipFile(path) as zf:
        return zf.infolist()


def _manifest(path: Path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read(MANIFEST))


def _installer(store: VersionStore) -> Installer:
    return installer_for(store)


# ---- pack ------------------------------------------------------------------------------------


def test_pack_is_deterministic_sorted_and_dated_1980(world):
    a = pack_character(world.store, world.rid, world.tmp / "a.zpkg")
    os.utime(world.store.path(world.rid) / "manifest.json")  # a new mtime must change nothing
    b = pack_character(world.store, world.rid, world.tmp / "b.zpkg")
    assert a.read_bytes() == b.read_bytes()
    infos = _entries(a)
    names = [i.filename for i in infos]
    assert names[-1] == MANIFEST and names[:-1] == sorted(names[:-1])
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}
    kinds = {i.filename: i.compress_type for i in infos}
    assert kinds["resources/alice/ink-lora/1.0.0/ink.safetensors"] == zipfile.ZIP_STORED
    assert kinds["resources/alice/aria-live2d/1.0.0/aria.model3.json"] == zipfile.ZIP_DEFLATED


def test_standalone_embeds_everything_but_the_base_model(world):
    out = pack_character(world.store, world.rid, world.tmp / "s.zpkg", mode="standalone")
    m = _manifest(out)
    assert m["format_version"] == 1 and m["mode"] == "standalone" and m["character"]["id"] == world.rid
    sources = {f["path"]: f["source"] for f in m["files"]}
    base = sources["resources/qwen/tiny-llm/1.0.0/model.gguf"]
    assert base["catalog"] == "qwen/tiny-llm@1.0.0" and base["url"].startswith(world.server.url)
    assert "fallback" not in base
    assert sources["resources/alice/ink-lora/1.0.0/ink.safetensors"] == {"embedded": True}
    assert sources["resources/alice/aria-live2d/1.0.0/textures/t.png"] == {"embedded": True}
    names = {i.filename for i in _entries(out)}
    assert "resources/qwen/tiny-llm/1.0.0/model.gguf" not in names  # never embedded
    assert {r["id"] for r in m["resources"]} == {"qwen/tiny-llm", "alice/ink-lora", "alice/aria-live2d"}


def test_reference_mode_holds_only_the_character(world):
    out = pack_character(world.store, world.rid, world.tmp / "r.zpkg", mode="reference")
    names = {i.filename for i in _entries(out)}
    assert all(n == MANIFEST or n.startswith("character/") for n in names)
    m = _manifest(out)
    assert all("catalog" in f["source"] for f in m["files"] if f["path"].startswith("resources/"))


def test_hybrid_embeds_small_parts_and_refers_big_ones_with_a_fallback(world, monkeypatch):
    monkeypatch.setattr(pack_module, "HYBRID_EMBED_LIMIT", 25_000)  # the LoRA (30 kB) counts as big
    out = pack_character(world.store, world.rid, world.tmp / "h.zpkg", mode="hybrid")
    sources = {f["path"]: f["source"] for f in _manifest(out)["files"]}
    lora = sources["resources/alice/ink-lora/1.0.0/ink.safetensors"]
    assert lora["catalog"] == "alice/ink-lora@1.0.0"
    assert lora["fallback"] == "resources/alice/ink-lora/1.0.0/ink.safetensors"
    assert sources["resources/alice/aria-live2d/1.0.0/aria.model3.json"] == {"embedded": True}
    assert "fallback" not in sources["resources/qwen/tiny-llm/1.0.0/model.gguf"]  # base model: never inside


def test_pack_reports_progress_in_bytes(world):
    seen = []
    pack_character(world.store, world.rid, world.tmp / "p.zpkg", progress=lambda d, t, m: seen.append((d, t)))
    total = seen[0][1]
    assert total and seen[-1] == (total, total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


# ---- install ---------------------------------------------------------------------------------


def test_standalone_installs_with_the_network_unreachable(tmp_path):
    with FileServer() as server:
        author = tmp_path / "author"
        rid = _world(author, server, base_model=False)
        out = pack_character(VersionStore(author), rid, tmp_path / "aria.zpkg")
    # the server is gone: any download would fail
    home = tmp_path / "friend"
    store = VersionStore(home)
    result = install_package_file(store, out, installer=_installer(store))
    assert result["character"] == {"id": rid, "version": "1.0.0", "new": True, "previous": None}
    assert {r["how"] for r in result["resources"]} == {"embedded"}
    assert store.versions("alice/aria-live2d") == ["1.0.0"]
    texture = store.path("alice/aria-live2d") / "textures" / "t.png"
    assert texture.read_bytes() == (author / "resources/alice/aria-live2d/1.0.0/textures/t.png").read_bytes()
    assert not any((home / "tmp").iterdir())  # the unpacked copy is gone


def test_referenced_parts_download_through_the_installer(world):
    out = pack_character(world.store, world.rid, world.tmp / "r.zpkg", mode="reference")
    home = world.tmp / "friend"
    store = VersionStore(home)
    result = install_package_file(store, out, installer=_installer(store))
    assert {r["how"] for r in result["resources"]} == {"downloaded"}
    fetched = {p for _, p, _ in world.server.requests}
    assert "/files/qwen-tiny-llm-model.gguf" in fetched and "/files/alice-ink-lora-ink.safetensors" in fetched
    record = store.load()["alice/ink-lora"]["1.0.0"]["files"]["ink.safetensors"]
    assert record["sha256"] == hashlib.sha256(world.server.files["/files/alice-ink-lora-ink.safetensors"]).hexdigest()
    assert store.versions(world.rid) == ["1.0.0"]


def test_hybrid_installs_from_its_fallback_when_the_catalog_cannot_serve(world, monkeypatch):
    monkeypatch.setattr(pack_module, "HYBRID_EMBED_LIMIT", 25_000)
    out = pack_character(world.store, world.rid, world.tmp / "h.zpkg", mode="hybrid")
    del world.server.files["/files/alice-ink-lora-ink.safetensors"]  # the release asset is gone (404)
    home = world.tmp / "friend"
    store = VersionStore(home)
    result = install_package_file(store, out, installer=_installer(store))
    how = {r["id"]: r["how"] for r in result["resources"]}
    assert how == {"qwen/tiny-llm": "downloaded", "alice/ink-lora": "fallback", "alice/aria-live2d": "embedded"}


def test_referenced_part_that_cannot_download_fails_without_a_fallback(world):
    out = pack_character(world.store, world.rid, world.tmp / "r.zpkg", mode="reference")
    world.server.files.clear()
    store = VersionStore(world.tmp / "friend")
    with pytest.raises(RemoteError):
        install_package_file(store, out, installer=_installer(store))
    assert world.rid not in store.load()  # the character never landed


def test_an_edited_character_is_never_overwritten_and_undo_takes_the_package_back(world):
    from zishu.companion.characters import update_character

    out = pack_character(world.store, world.rid, world.tmp / "s.zpkg")
    runtime = SimpleNamespace(home=world.home, registry=world.store)
    update_character(runtime, world.rid, {"persona": "You are Aria, edited by me."})  # 1.0.1, the user's
    result = install_package_file(world.store, out, installer=_installer(world.store))
    assert result["character"] == {"id": world.rid, "version": "1.0.2", "new": True, "previous": "1.0.1"}
    mine = json.loads((world.store.path(world.rid, "1.0.1") / "manifest.json").read_text())
    assert mine["spec"]["persona"] == "You are Aria, edited by me."
    assert undo_package_install(world.store, world.rid, "1.0.2")["version"] == "1.0.1"
    assert world.store.versions(world.rid) == ["1.0.1", "1.0.0"]
    # the same package again, over the very version it holds: nothing new
    again = install_package_file(world.store, pack_character(world.store, world.rid, world.tmp / "t.zpkg"),
                                 installer=_installer(world.store))
    assert again["character"]["new"] is False and world.store.versions(world.rid) == ["1.0.1", "1.0.0"]


def test_read_package_shows_the_plan_without_installing(world):
    out = pack_character(world.store, world.rid, world.tmp / "s.zpkg")
    home = world.tmp / "friend"
    summary = read_package(home, out)
    assert summary["character"]["name"] == "Aria" and summary["mode"] == "standalone"
    assert summary["download_bytes"] == 40_000
    needs, *tiers = summary["budget"]  # the whole character set against this machine and the tiers
    assert needs.startswith("needs  disk ") and "RAM" in needs and "VRAM" in needs
    assert tiers[0].startswith("tiers  CPU") or tiers[0].startswith("tiers  "), tiers
    assert tiers[1].startswith("here   ") and "this machine" in tiers[1]
    assert not (home / "resources").exists()


# ---- refusals --------------------------------------------------------------------------------


def _rewrite(src: Path, dst: Path, *, manifest=None, add=(), drop=(), replace=None, raw: list | None = None) -> Path:
    """A copy of the package ``src`` with its manifest edited, entries added, dropped or replaced."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        m = json.loads(zin.read(MANIFEST))
        if manifest:
            manifest(m)
        for info in zin.infolist():
            if info.filename in drop or info.filename == MANIFEST:
                continue
            data = (replace or {}).get(info.filename, zin.read(info))
            zout.writestr(info.filename, data)
        for name, data in add:
            zout.writestr(name, data)
        for info, data in raw or []:
            zout.writestr(info, data)
        zout.writestr(MANIFEST, json.dumps(m))
    return dst


@pytest.fixture
def package(world):
    return pack_character(world.store, world.rid, world.tmp / "good.zpkg")


def _refused(world, path: Path, *words: str, limits: Limits | None = None) -> str:
    workdir = world.tmp / "friend" / "tmp" / path.stem  # a fresh one, as packages.workdir makes
    with pytest.raises(PackageError) as e:
        open_zpkg(path, workdir, limits or Limits())
    message = str(e.value)
    for word in words:
        assert word in message, message
    assert not (world.tmp / "friend" / "resources").exists()
    assert e.value.code == "PACKAGE_INVALID" and e.value.exit_status == 4
    return message


def test_refuses_zip_slip(world, package):
    bad = _rewrite(package, world.tmp / "slip.zpkg", add=[("character/../../evil.txt", b"x")])
    _refused(world, bad, "character/../../evil.txt", "leaves the package folder")
    assert not (world.tmp / "friend" / "evil.txt").exists()


def test_refuses_absolute_paths(world, package):
    _refused(world, _rewrite(package, world.tmp / "abs.zpkg", add=[("/etc/evil", b"x")]), "absolute path")
    _refused(world, _rewrite(package, world.tmp / "drive.zpkg", add=[("C:/evil", b"x")]), "absolute path")


def test_refuses_symbolic_links(world, package):
    link = zipfile.ZipInfo("character/link")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    _refused(world, _rewrite(package, world.tmp / "link.zpkg", raw=[(link, b"/etc/passwd")]), "symbolic link")


def test_refuses_duplicate_names(world, package):
    first = "character/avatar.txt"
    with pytest.warns(UserWarning):  # zipfile itself warns about the duplicate it writes
        bad = _rewrite(package, world.tmp / "dup.zpkg", add=[(first, b"a"), (first, b"b")])
    _refused(world, bad, "appears twice")
    folded = [("character/A.txt", b"a"), ("character/a.txt", b"b")]
    _refused(world, _rewrite(package, world.tmp / "case.zpkg", add=folded), "appears twice")


def _bomb(world, package, size: int, declared: int | None = None) -> Path:
    data = b"\0" * size
    entry = {"path": "character/zeros.bin", "sha256": hashlib.sha256(data).hexdigest(),
             "size": size if declared is None else declared, "source": {"embedded": True}}
    return _rewrite(package, world.tmp / "bomb.zpkg", add=[("character/zeros.bin", data)],
                    manifest=lambda m: m["files"].append(entry))


def test_refuses_zip_bombs_by_ratio(world, package):
    _refused(world, _bomb(world, package, 20 * 2**20), "inflates more than 200×", "zip bomb")


def test_refuses_zip_bombs_by_total_size(world, package):
    _refused(world, _bomb(world, package, 600_000), "at most 500,000", limits=Limits(total=500_000))


def test_refuses_an_entry_bigger_than_its_manifest_says_while_streaming(world, package):
    _refused(world, _bomb(world, package, 3 * 2**20, declared=2**20), "inflates past the 1,048,576 bytes")


def test_refuses_an_unknown_format_version(world, package):
    bad = _rewrite(package, world.tmp / "v2.zpkg", manifest=lambda m: m.update(format_version=2))
    _refused(world, bad, "unknown format_version 2", "reads format_version 1")


def test_refuses_a_manifest_that_does_not_match_the_files(world, package):
    texture = "resources/alice/aria-live2d/1.0.0/textures/t.png"
    _refused(world, _rewrite(package, world.tmp / "missing.zpkg", drop=[texture]), texture, "does not hold")
    _refused(world, _rewrite(package, world.tmp / "extra.zpkg", add=[("character/notes.txt", b"hi")]),
             "character/notes.txt", "does not list")
    _refused(world, _rewrite(package, world.tmp / "hash.zpkg", replace={texture: b"\1" * 20_000}), texture,
             "sha256")
    _refused(world, _rewrite(package, world.tmp / "size.zpkg", replace={texture: b"\1" * 19_000}), texture,
             "19,000 bytes; the manifest says 20,000")


def test_a_refused_package_installs_nothing(world, package):
    bad = _rewrite(package, world.tmp / "hash.zpkg",
                   replace={"resources/alice/aria-live2d/1.0.0/textures/t.png": b"\1" * 20_000})
    store = VersionStore(world.tmp / "friend")
    with pytest.raises(PackageError):
        install_package_file(store, bad, installer=_installer(store))
    assert store.load() == {} and not any((world.tmp / "friend" / "tmp").iterdir())


# ---- formats through the hook ----------------------------------------------------------------


def test_formats_are_registered_through_the_hook_and_a_plugin_can_add_one(world):
    from zishu import plugins
    from zishu.hookspecs import hookimpl
    from zishu.packaging.formats import formats

    class TextFormat:
        @staticmethod
        @hookimpl
        def register_package_formats(register):
            register("persona-text", (".txt",), lambda parts, mode, out, progress: (
                out.write_text(parts.character.spec.persona) and out), modes=("standalone",))

    plugins.pm.register(TextFormat, name="persona-text")
    known = formats()
    assert {"zpkg", "sillytavern-card", "persona-text"} <= set(known)
    assert known["zpkg"].modes == ("standalone", "reference", "hybrid")
    out = pack_character(world.store, world.rid, world.tmp / "aria.txt", format="persona-text")
    assert out.read_text() == "You are Aria."


def test_the_sillytavern_card_format_writes_a_png_card(world):
    from zishu.catalog.cards import read_card_file

    out = pack_character(world.store, world.rid, world.tmp / "aria.png", format="sillytavern-card")
    card, is_png = read_card_file(out)
    assert is_png and card["data"]["name"] == "Aria" and card["data"]["description"] == "You are Aria."


# ---- the published schema --------------------------------------------------------------------


def test_the_package_schema_is_published_with_the_catalog_schema(tmp_path, registry):
    from conftest import publish_catalog
    from zishu_catalog.schema import package_schema_text

    committed = (HERE.parent / "registry_index" / "package.schema.json").read_text()
    assert committed == package_schema_text(), "run: zishu catalog schema --package --out " \
                                               "registry_index/package.schema.json"
    publish_catalog(registry, tmp_path / "site")
    schema = json.loads((tmp_path / "site" / "schema" / "package.schema.json").read_text())
    assert schema["$id"] == "package.schema.json" and "format_version" in schema["properties"]


def test_a_packed_manifest_is_valid_against_the_schema(world, package):
    import jsonschema

    from zishu.packaging.format import json_schema

    jsonschema.validate(_manifest(package), json_schema())
