"""The user's own characters on a real registry: create, edit (a new version each time) and undo,
a local copy of a catalog character that leaves the installed one alone, SillyTavern cards (PNG V2
and V3, JSON V1 and V3) imported with their picture as the avatar, delete and restore; every bad
input refused naming the field or the card's problem; and the JSON API over the same functions."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import struct
import tracemalloc
import zlib
from pathlib import Path

import pytest
from PIL import Image

from conftest import make_manifest
from zishu.catalog import RESOURCE
from zishu.catalog.cards import card_png_bytes, manifest_to_card
from zishu.companion import characters as chars
from zishu.companion.brain import Character, build_turn
from zishu.errors import CardError, NotFound, UsageError
from zishu.resources.install import Installer, manifest_of

SERA_V2 = {
    "spec": "chara_card_v2",
    "spec_version": "2.0",
    "data": {
        "name": "Seraphina",
        "description": "{{char}} guards the forest of Eldoria.",
        "personality": "gentle",
        "first_mes": "*You wake in a glade.* Easy now, {{user}}.",
        "alternate_greetings": ["Are you lost?"],
        "mes_example": "<START>\n{{user}}: Who are you?\n{{char}}: The keeper of this forest.",
        "scenario": "{{user}} was hurt by wolves.",
        "tags": ["Fantasy", "Kind"],
        "character_book": {"entries": [
            {"keys": ["Eldoria"], "content": "Eldoria is an ancient forest.", "insertion_order": 10,
             "extensions": {"depth": 4}},
        ]},
        "extensions": {"talkativeness": "0.5"},
    },
}
SERA_V3 = {**SERA_V2, "spec": "chara_card_v3", "spec_version": "3.0",
           "data": {**SERA_V2["data"], "name": "Seraphina Three", "group_only_greetings": ["Hi, all."]}}


def fields(**more) -> dict:
    return {"name": "Mio", "persona": "You are {{char}}, a cheerful cat who loves fish.", **more}


def character_folder(runtime, rid: str, version: str) -> Path:
    return runtime.registry.version_dir(rid, version)


def picture(size=(24, 32), noise: bool = False) -> bytes:
    """A PNG picture (random pixels when ``noise``, so it does not compress)."""
    image = (Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)) if noise
             else Image.new("RGB", size, (200, 120, 80)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def png_card(card: dict, image: bytes | None = None, tmp: Path | None = None) -> bytes:
    if image is None:
        return card_png_bytes(card)
    path = tmp / "picture.png"
    path.write_bytes(image)
    return card_png_bytes(card, path)


def png_with_text(keyword: str, text: bytes) -> bytes:
    """A plain picture with one tEXt chunk (the way a broken card tool might write it)."""
    raw = picture()
    body = keyword.encode("latin-1") + b"\0" + text
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    end = raw.rindex(b"IEND") - 4
    return raw[:end] + chunk + raw[end:]


@pytest.fixture
def hero(runtime, tmp_path: Path) -> Path:
    """A catalog character installed the way the installer does it (zishu/hero 1.2.0, with a
    portrait as its avatar and an LLM it requires); returns its version folder."""
    source = tmp_path / "hero-files"
    source.mkdir()
    (source / "portrait.png").write_bytes(picture())
    data = make_manifest("zishu/hero", kind="character", name="Hero", summary="A brave test character.")
    data["versions"][0].update(version="1.2.0", requires=[{"id": "zishu/base-model", "version": ">=1.0.0"}])
    data["versions"][0]["files"][0].update(name="portrait.png", size=(source / "portrait.png").stat().st_size,
                                          sha256=hashlib.sha256((source / "portrait.png").read_bytes()).hexdigest())
    data["spec"] = {"persona": "You are Hero, brave and kind.", "greetings": ["Hail, {{user}}!"],
                    "emotions": {"happy": {"expression": "smile"}}, "avatar": {"image": "portrait.png"}}
    resource = RESOURCE.validate_python(data)
    done = Installer(runtime.registry, fetcher=None).install_version(resource, resource.versions[0], source=source)
    return done.path


# ---- create, list, read ----------------------------------------------------------------------


def test_a_created_character_is_stored_like_an_installed_one(runtime) -> None:
    rid = chars.create_character(runtime, fields(greetings=["Nya, {{user}}!"], scenario="A cat cafe.",
                                                 emotions={"开心": {"expression": "smile", "motion": "wave"}}))
    assert rid == "local/mio"
    folder = character_folder(runtime, rid, "1.0.0")
    manifest = manifest_of(folder)
    assert manifest.id == rid and manifest.spec.scenario == "A cat cafe."
    assert manifest.license == chars.LOCAL_LICENSE and manifest.maintainers == ["local"]
    assert runtime.registry.load()[rid]["1.0.0"]["kind"] == "character"

    character = Character.installed(runtime.registry, rid)  # what the companion reads
    assert character.name == "Mio" and character.emotion_names == ["开心"]
    assert "You are Mio, a cheerful cat" in build_turn(character, "hi", []).messages[0]["content"]

    [listed] = chars.list_characters(runtime)
    assert listed == {
        "id": rid, "name": "Mio", "summary": "You are Mio, a cheerful cat who loves fish.", "version": "1.0.0",
        "versions": ["1.0.0"], "local": True, "greeting": "Nya, you!", "avatar": {"image": None, "live2d": None},
        "derived_from": None, "imported_from": None, "greeting_emotion": None,
    }
    one = chars.get_character(runtime, rid)
    assert one["greetings"] == ["Nya, {{user}}!"]
    assert one["emotions"] == {"开心": {"expression": "smile", "motion": "wave"}}


def test_ids_are_made_from_the_name_and_kept_unique(runtime) -> None:
    assert chars.create_character(runtime, fields(name="Xiao Xue")) == "local/xiao-xue"
    assert chars.create_character(runtime, fields(name="Xiao  Xue!")) == "local/xiao-xue-2"
    assert chars.create_character(runtime, fields(name="小雪")) == "local/character"
    assert chars.create_character(runtime, fields(name="雪")) == "local/character-2"
    chars.delete_character(runtime, "local/xiao-xue")  # a name in the trash stays taken: it can come back
    assert chars.create_character(runtime, fields(name="Xiao Xue")) == "local/xiao-xue-3"


def test_the_list_has_catalog_and_local_characters_by_name(runtime, hero) -> None:
    chars.create_character(runtime, fields(name="Zoe"))
    chars.create_character(runtime, fields(name="abby"))
    listed = chars.list_characters(runtime)
    assert [c["id"] for c in listed] == ["local/abby", "zishu/hero", "local/zoe"]
    catalog = listed[1]
    assert catalog["local"] is False and catalog["version"] == "1.2.0" and catalog["greeting"] == "Hail, you!"
    assert catalog["avatar"] == {"image": "portrait.png", "live2d": None}
    assert chars.avatar_file(runtime, "zishu/hero") == hero / "portrait.png"


BAD_FIELDS = [
    ({"persona": "x"}, "name: is required"),
    ({"name": "Mio"}, "persona: is required"),
    (fields(persona="   \n"), "persona: must not be empty"),
    (fields(name=" "), "name: must not be empty"),
    (fields(name="x" * 101), "name: must be at most 100 characters"),
    (fields(persona=5), "persona: input should be a valid string"),
    (fields(greetings="hello"), "greetings: input should be a valid list"),
    (fields(lorebook=[{"keys": ["a"], "content": "x"}, {"keys": [], "content": "y"}]),
     "lorebook entry 2.keys: must not be empty"),
    (fields(lorebook=[{"keys": [""], "content": "x"}]), "lorebook entry 1.keys entry 1: must not be empty"),
    (fields(lorebook=[{"keys": ["a"]}]), "lorebook entry 1.content: is required"),
    (fields(emotions={"happy": {"expresion": "smile"}}), "emotions [happy].expresion: is not a known field"),
    (fields(emotions={"x" * 33: {}}), f"emotions [{'x' * 33}] tag: must be at most 32 characters"),
    (fields(voice={"engine": "espeak-ng", "voice": "Not An Id"}), "voice.voice: 'Not An Id' is not a catalog id"),
    (fields(voice={"engine": " "}), "voice.engine: must not be empty"),
    (fields(voice={"voice": "zishu/v"}), "voice.engine: is required"),
    (fields(llm={"model": "nope"}), "llm.model: 'nope' is not a catalog id"),
    (fields(tags=["Bad Tag"]), "tags entry 1: 'Bad Tag' is not a tag"),
    (fields(avatar={"image": "face.png"}), "avatar.image: 'face.png' is not a file of this character"),
    (fields(avatar={"image": "../x.png"}), "avatar.image: file name '../x.png' has an empty, '.' or '..' part"),
    (fields(avatar={}), "avatar: avatar needs exactly one of 'live2d' or 'image'"),
    (fields(colour="red"), "unknown field colour (known: name, summary"),
    (fields(extensions={}), "unknown field extensions"),
    (["not", "an", "object"], "a character's fields must be an object"),
]


@pytest.mark.parametrize("bad, message", BAD_FIELDS, ids=[m.split(":")[0] for _, m in BAD_FIELDS])
def test_bad_fields_are_refused_naming_the_field(runtime, bad, message) -> None:
    with pytest.raises(UsageError) as e:
        chars.create_character(runtime, bad)
    assert message in str(e.value)
    assert chars.list_characters(runtime) == []
    assert not [p for p in (runtime.home / "resources").rglob("*") if p.is_file()]  # nothing half written


# ---- edit and undo ---------------------------------------------------------------------------


def test_an_edit_is_a_new_version_and_undo_goes_back_to_the_one_before(runtime) -> None:
    rid = chars.create_character(runtime, fields())
    result = chars.update_character(runtime, rid, {"scenario": "Rainy day.",
                                                   "lorebook": [{"keys": ["fish"], "content": "Mio loves tuna."}]})
    assert result == {"id": rid, "version": "1.0.1", "changed": True, "forked_from": None}
    assert runtime.registry.versions(rid) == ["1.0.1", "1.0.0"]
    assert manifest_of(character_folder(runtime, rid, "1.0.0")).spec.scenario == ""  # the old one is kept
    newest = manifest_of(character_folder(runtime, rid, "1.0.1"))
    assert [v.version for v in newest.versions] == ["1.0.0", "1.0.1"] and newest.spec.persona == fields()["persona"]
    character = Character.installed(runtime.registry, rid)
    assert [e.content for e in build_turn(character, "any fish today?", []).lore] == ["Mio loves tuna."]

    same = chars.update_character(runtime, rid, {"scenario": "Rainy day."})
    assert same == {"id": rid, "version": "1.0.1", "changed": False, "forked_from": None}
    assert runtime.registry.versions(rid) == ["1.0.1", "1.0.0"]

    assert chars.undo_character_edit(runtime, rid) == {"id": rid, "removed": "1.0.1", "version": "1.0.0",
                                                       "deleted": False}
    assert runtime.registry.versions(rid) == ["1.0.0"]
    assert not character_folder(runtime, rid, "1.0.1").exists()
    assert Character.installed(runtime.registry, rid).spec.scenario == ""
    assert chars.update_character(runtime, rid, {"name": "Mio II"})["version"] == "1.0.1"  # the number is free again


def test_the_summary_follows_the_persona_until_one_is_written(runtime) -> None:
    rid = chars.create_character(runtime, fields())
    chars.update_character(runtime, rid, {"persona": "You are {{char}}. A sleepy dog. Snores."})
    assert chars.get_character(runtime, rid)["summary"] == "You are Mio."
    chars.update_character(runtime, rid, {"summary": "My dog."})
    chars.update_character(runtime, rid, {"persona": "Something else entirely."})
    assert chars.get_character(runtime, rid)["summary"] == "My dog."


def test_undoing_the_only_version_moves_it_to_the_trash(runtime) -> None:
    rid = chars.create_character(runtime, fields())
    assert chars.undo_character_edit(runtime, rid) == {"id": rid, "removed": "1.0.0", "version": None, "deleted": True}
    assert chars.list_characters(runtime) == []
    assert chars.restore_character(runtime, rid) == rid
    assert chars.get_character(runtime, rid)["version"] == "1.0.0"


def test_a_bad_edit_writes_nothing(runtime) -> None:
    rid = chars.create_character(runtime, fields())
    with pytest.raises(UsageError, match="persona: must not be empty"):
        chars.update_character(runtime, rid, {"persona": ""})
    with pytest.raises(UsageError, match=re.escape("lorebook entry 1.priority: input should be a valid integer")):
        chars.update_character(runtime, rid, {"lorebook": [{"keys": ["a"], "content": "b", "priority": "high"}]})
    assert runtime.registry.versions(rid) == ["1.0.0"]
    assert sorted(p.name for p in (runtime.home / "resources" / rid).iterdir()) == ["1.0.0"]


def test_unknown_and_malformed_ids_are_refused(runtime) -> None:
    with pytest.raises(NotFound, match="local/ghost is not installed"):
        chars.update_character(runtime, "local/ghost", {"scenario": "x"})
    with pytest.raises(NotFound, match="local/ghost is not installed"):
        chars.undo_character_edit(runtime, "local/ghost")
    with pytest.raises(NotFound, match="local/ghost is not installed"):
        chars.delete_character(runtime, "local/ghost")
    with pytest.raises(NotFound, match="local/ghost is not in the trash"):
        chars.restore_character(runtime, "local/ghost")
    for bad in ("../etc", "local/../x", "Local/Mio", "local/mio\n", "local"):
        with pytest.raises(UsageError, match="is not a character id"):
            chars.get_character(runtime, bad)


def test_a_model_is_not_a_character(runtime, tmp_path) -> None:
    source = tmp_path / "m"
    source.mkdir()
    (source / "model.bin").write_bytes(b"x")
    data = make_manifest("zishu/model")
    data["versions"][0]["files"][0].update(sha256=hashlib.sha256(b"x").hexdigest(), size=1)
    resource = RESOURCE.validate_python(data)
    Installer(runtime.registry, fetcher=None).install_version(resource, resource.versions[0], source=source)
    assert chars.list_characters(runtime) == []
    with pytest.raises(UsageError, match="zishu/model is a model, not a character"):
        chars.update_character(runtime, "zishu/model", {"persona": "x"})


# ---- catalog characters ----------------------------------------------------------------------


def test_editing_a_catalog_character_makes_a_local_copy_and_leaves_the_original(runtime, hero) -> None:
    before = {p.name: p.read_bytes() for p in hero.iterdir()}
    result = chars.update_character(runtime, "zishu/hero", {"persona": "You are Hero, tired but brave."})
    assert result == {"id": "local/hero", "version": "1.2.1", "changed": True, "forked_from": "zishu/hero"}
    assert {p.name: p.read_bytes() for p in hero.iterdir()} == before
    assert runtime.registry.versions("zishu/hero") == ["1.2.0"]

    copy = manifest_of(character_folder(runtime, "local/hero", "1.2.1"))
    assert copy.spec.extensions["zishu"] == {"derived_from": "zishu/hero@1.2.0"}
    assert copy.spec.emotions["happy"].expression == "smile"
    assert copy.license == "Apache-2.0" and copy.versions[0].requires[0].id == "zishu/base-model"
    assert chars.avatar_file(runtime, "local/hero").read_bytes() == (hero / "portrait.png").read_bytes()
    assert chars.get_character(runtime, "local/hero")["derived_from"] == "zishu/hero@1.2.0"
    assert Character.installed(runtime.registry, "local/hero").spec.persona == "You are Hero, tired but brave."

    assert chars.update_character(runtime, "local/hero", {"scenario": "A tavern."})["version"] == "1.2.2"
    assert chars.update_character(runtime, "zishu/hero", {"scenario": "Elsewhere."})["id"] == "local/hero-2"

    chars.undo_character_edit(runtime, "local/hero")
    assert chars.undo_character_edit(runtime, "local/hero")["deleted"] is True  # the copy's only version
    assert runtime.registry.versions("local/hero") == [] and runtime.registry.versions("zishu/hero") == ["1.2.0"]


def test_catalog_characters_are_not_deleted_or_undone_here(runtime, hero) -> None:
    for action in (chars.delete_character, chars.undo_character_edit, chars.restore_character):
        with pytest.raises(UsageError, match="zishu/hero came from the catalog: uninstall it in the Library"):
            action(runtime, "zishu/hero")
    assert runtime.registry.versions("zishu/hero") == ["1.2.0"]


# ---- SillyTavern cards -----------------------------------------------------------------------


def test_a_v2_png_card_becomes_a_character_with_its_picture_as_avatar(runtime, tmp_path) -> None:
    image = picture((40, 60))
    data = png_card(SERA_V2, image, tmp_path)
    rid = chars.import_card(runtime, data, "C:\\Users\\me\\Downloads\\sera.png")
    assert rid == "local/seraphina"
    character = chars.get_character(runtime, rid)
    assert character["imported_from"] == "sera.png" and character["version"] == "1.0.0"
    assert character["greetings"] == ["*You wake in a glade.* Easy now, {{user}}.", "Are you lost?"]
    assert character["greeting"] == "*You wake in a glade.* Easy now, you."
    assert character["tags"] == ["fantasy", "kind"]
    assert [(e["keys"], e["priority"]) for e in character["lorebook"]] == [(["Eldoria"], 10)]
    assert character["avatar"] == {"image": "avatar.png", "live2d": None}
    assert chars.avatar_file(runtime, rid).read_bytes() == data  # the card's own picture, as it was
    assert Image.open(chars.avatar_file(runtime, rid)).size == (40, 60)
    assert "Eldoria" in Character.installed(runtime.registry, rid).spec.persona.replace("{{char}}", "")

    # edited, it exports with the edit and keeps what the card had besides
    chars.update_character(runtime, rid, {"persona": "You are {{char}}, keeper of the glade."})
    card = manifest_to_card(manifest_of(runtime.registry.path(rid)))
    assert card["data"]["description"] == "You are {{char}}, keeper of the glade."
    assert card["data"]["extensions"] == {"talkativeness": "0.5"}
    assert card["data"]["character_book"]["entries"][0]["extensions"] == {"depth": 4}
    assert chars.avatar_file(runtime, rid).read_bytes() == data  # carried into the new version


def test_a_v3_png_card_is_read_from_its_ccv3_chunk(runtime) -> None:
    rid = chars.import_card(runtime, png_card(SERA_V3), "three.png")
    assert rid == "local/seraphina-three"
    extensions = manifest_of(runtime.registry.path(rid)).spec.extensions
    assert extensions["sillytavern"]["spec"] == "chara_card_v3"
    assert extensions["sillytavern"]["fields"]["group_only_greetings"] == ["Hi, all."]


@pytest.mark.parametrize("card, name", [
    (SERA_V3, "Seraphina Three"),
    ({"name": "Old Timer", "description": "A V1 card.", "first_mes": "Howdy."}, "Old Timer"),
], ids=["v3", "v1"])
def test_json_cards_import_without_an_avatar(runtime, card, name) -> None:
    rid = chars.import_card(runtime, json.dumps(card).encode(), "card.json")
    character = chars.get_character(runtime, rid)
    assert character["name"] == name and character["avatar"] == {"image": None, "live2d": None}
    assert chars.avatar_file(runtime, rid) is None
    assert not (runtime.registry.path(rid) / "avatar.png").exists()


def _damaged_png() -> bytes:
    data = bytearray(card_png_bytes(SERA_V2))
    at = data.index(b"tEXtchara") + 20
    data[at] ^= 0x01
    return bytes(data)


BAD_CARDS = {
    "text": (b"hello, I am not a card", "not a character card: expected a PNG image with a card in it, or a JSON file"),
    "no-chara": (picture(), "this PNG image has no character card in it (no tEXt chunk named 'chara' or 'ccv3')"),
    "bad-base64": (png_with_text("chara", b"%%% not base64 %%%"), "the 'chara' chunk is not valid base64"),
    "bad-json-in-png": (png_with_text("chara", base64.b64encode(b"{nope")), "the 'chara' chunk holds invalid JSON"),
    "truncated": (card_png_bytes(SERA_V2)[:200], "the PNG image is truncated"),
    "damaged": (_damaged_png(), "the 'chara' chunk is damaged (its checksum does not match)"),
    "no-name": (json.dumps({"spec": "chara_card_v2", "data": {"description": "x"}}).encode(),
                "the card has no character name (data.name is missing or empty)"),
    "unknown-spec": (json.dumps({"spec": "chara_card_v9", "data": {"name": "x"}}).encode(),
                     "unknown spec 'chara_card_v9'"),
    "bad-json": (b'{"name": "x",', "the file holds invalid JSON"),
    "not-an-object": (b"[1, 2]", "a character card must be a JSON object"),
    "not-utf8": (b'{"name": "\xff"}', "the file is not UTF-8 text"),
    "wrong-types": (json.dumps({"name": "x", "first_mes": 5}).encode(), "data.first_mes must be text, not int"),
    "empty": (b"", "the file holds invalid JSON"),
    "too-big-json": (b"{" + b" " * (5 * 2**20), "a JSON card may be at most 5 MiB"),
}


@pytest.mark.parametrize("name", BAD_CARDS)
def test_bad_cards_are_refused_saying_what_is_wrong(runtime, name) -> None:
    data, message = BAD_CARDS[name]
    with pytest.raises(CardError) as e:  # CARD_INVALID, not USAGE: the file is wrong, not the call
        chars.import_card(runtime, data, f"{name}.png")
    assert str(e.value).startswith(f"{name}.png: ") and message in str(e.value)
    assert chars.list_characters(runtime) == []


def test_a_card_over_20_mib_is_refused(runtime) -> None:
    data = b"\x89PNG\r\n\x1a\n" + bytes(20 * 2**20)
    too_big = "big.png: the file is 20,971,528 bytes; a PNG card may be at most 20 MiB"
    with pytest.raises(CardError, match=re.escape(too_big)):
        chars.import_card(runtime, data, "big.png")


# ---- delete and restore ----------------------------------------------------------------------


def test_delete_moves_every_version_to_the_trash_and_restore_brings_it_back(runtime) -> None:
    rid = chars.import_card(runtime, png_card(SERA_V2), "sera.png")
    chars.update_character(runtime, rid, {"scenario": "Night."})
    record = runtime.registry.load()[rid]

    assert chars.delete_character(runtime, rid) == {"id": rid, "versions": ["1.0.1", "1.0.0"], "deleted": True}
    assert rid not in runtime.registry.load() and not (runtime.home / "resources" / rid).exists()
    assert (runtime.home / "trash" / "characters" / rid / "1.0.1" / "manifest.json").is_file()

    assert chars.restore_character(runtime, rid) == rid
    assert runtime.registry.versions(rid) == ["1.0.1", "1.0.0"]
    files_now = {v: r["files"] for v, r in runtime.registry.load()[rid].items()}
    assert files_now == {v: r["files"] for v, r in record.items()}
    assert Character.installed(runtime.registry, rid).spec.scenario == "Night."
    assert chars.avatar_file(runtime, rid) is not None
    assert not (runtime.home / "trash" / "characters" / rid).exists()
    with pytest.raises(NotFound, match="is not in the trash"):
        chars.restore_character(runtime, rid)


def test_restore_without_its_notes_reads_the_files(runtime) -> None:
    rid = chars.import_card(runtime, png_card(SERA_V2), "sera.png")
    size = (runtime.registry.path(rid) / "avatar.png").stat().st_size
    chars.delete_character(runtime, rid)
    (runtime.home / "trash" / "characters" / rid / "deleted.json").unlink()  # as if the app died right there
    chars.restore_character(runtime, rid)
    assert runtime.registry.load()[rid]["1.0.0"]["files"]["avatar.png"]["size"] == size


# ---- the JSON API ----------------------------------------------------------------------------


def test_the_api_creates_edits_undoes_deletes_and_restores(characters_client) -> None:
    made = characters_client.post("/api/characters", json=fields(greetings=["Hi!"]))
    assert made.status_code == 201
    assert made.json["character"]["id"] == "local/mio" and made.json["character"]["greeting"] == "Hi!"
    assert [c["id"] for c in characters_client.get("/api/characters").json["characters"]] == ["local/mio"]

    big = [{"keys": [f"k{i}"], "content": "lore " * 400} for i in range(600)]  # about 1.2 MB of JSON
    edited = characters_client.put("/api/characters/local/mio", json={"lorebook": big})
    assert edited.status_code == 200, edited.json
    assert edited.json["changed"] is True and edited.json["character"]["version"] == "1.0.1"
    assert len(characters_client.get("/api/characters/local/mio").json["character"]["lorebook"]) == 600

    undone = characters_client.post("/api/characters/local/mio/undo")
    assert undone.json["undone"]["removed"] == "1.0.1" and undone.json["character"]["version"] == "1.0.0"

    assert characters_client.delete("/api/characters/local/mio").json["deleted"]["versions"] == ["1.0.0"]
    assert characters_client.get("/api/characters/local/mio").status_code == 404
    assert characters_client.post("/api/characters/local/mio/restore").json["character"]["name"] == "Mio"


def test_the_api_imports_a_card_bigger_than_the_usual_body_limit(characters_client, tmp_path) -> None:
    data = png_card(SERA_V2, picture((700, 700), noise=True), tmp_path)
    assert len(data) > 1024 * 1024
    answer = characters_client.post("/api/characters/import", data={"file": (io.BytesIO(data), "sera.png")},
                         content_type="multipart/form-data")
    assert answer.status_code == 201, answer.json
    character = answer.json["character"]
    assert character["avatar"]["url"] == "/api/characters/local/seraphina/avatar?v=1.0.0"
    image = characters_client.get(character["avatar"]["url"])
    assert image.status_code == 200 and image.mimetype == "image/png" and image.data == data


def test_the_api_refuses_with_clear_messages(characters_client) -> None:
    def error(answer, status):
        assert answer.status_code == status, answer.data
        return answer.json["error"]["message"]

    empty = characters_client.post("/api/characters", json=fields(persona=""))
    assert "persona: must not be empty" in error(empty, 400)
    assert error(characters_client.post("/api/characters", data="{", content_type="application/json"), 400) == \
        "the request body is not JSON"
    no_file = characters_client.post("/api/characters/import")
    assert "send the card as a multipart form field named 'file'" in error(no_file, 400)
    empty = characters_client.post("/api/characters/import", data={"file": (io.BytesIO(b""), "e.json")},
                        content_type="multipart/form-data")
    assert "e.json: the file is empty" in error(empty, 400)
    text = characters_client.post("/api/characters/import", data={"file": (io.BytesIO(b"hello"), "notes.txt")},
                       content_type="multipart/form-data")
    assert error(text, 422).startswith("notes.txt: not a character card")  # a bad card: 422 CARD_INVALID
    assert text.json["error"]["code"] == "CARD_INVALID"
    assert "is not a character id" in error(characters_client.get("/api/characters/Local/Mio"), 400)
    assert "local/ghost is not installed" in error(characters_client.put("/api/characters/local/ghost", json={}), 404)
    characters_client.post("/api/characters", json=fields())
    assert "local/mio has no avatar image" in error(characters_client.get("/api/characters/local/mio/avatar"), 404)
    too_big = characters_client.put("/api/characters/local/mio", data=b"{" + b" " * (6 * 2**20) + b"}",
                         content_type="application/json")
    assert error(too_big, 413) == "the character is more than 5 MiB of JSON"
    huge = characters_client.post("/api/characters/import", data={"file": (io.BytesIO(bytes(21 * 2**20)), "huge.png")},
                       content_type="multipart/form-data")
    assert error(huge, 413).startswith("the card file is too big: a PNG card may be at most 20 MiB")


def test_the_pages_render(characters_client, runtime) -> None:
    chars.create_character(runtime, fields())
    listing = characters_client.get("/characters")
    assert listing.status_code == 200 and b'"local/mio"' in listing.data
    assert b'data-testid="character-form"' in characters_client.get("/characters/new").data
    edit = characters_client.get("/characters/local/mio/edit")
    assert edit.status_code == 200 and b"Edit Mio" in edit.data
    assert characters_client.get("/characters/local/ghost/edit").status_code == 404


# ---- big imports stay cheap: limits at the app's upload, and a list that reads an index -----------


def _upload(characters_client, data: bytes, name: str):
    return characters_client.post("/api/characters/import", data={"file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def test_the_upload_refuses_cards_over_the_limits_naming_them(characters_client, runtime) -> None:
    from zishu.catalog.cards import MAX_CHUNK_TEXT, MAX_FIELD_CHARS, MAX_LORE_ENTRIES

    def refused(answer) -> str:
        assert answer.status_code == 422, answer.data
        assert answer.json["error"]["code"] == "CARD_INVALID"
        return answer.json["error"]["message"]

    big_json = b'{"name": "' + b"x" * (5 * 2**20) + b'"}'
    assert refused(_upload(characters_client, big_json, "big.json")) == \
        "big.json: the file is 5,242,892 bytes; a JSON card may be at most 5 MiB"
    entries = [{"keys": [f"k{i}"], "content": "lore"} for i in range(100_000)]
    lorebook = json.dumps({"name": "Many", "character_book": {"entries": entries}}).encode()
    assert refused(_upload(characters_client, lorebook, "many.json")) == \
        f"many.json: the lorebook has 100,000 entries; a card may have at most {MAX_LORE_ENTRIES:,}"
    long_field = json.dumps({"name": "Long", "first_mes": "x" * (MAX_FIELD_CHARS + 1)}).encode()
    assert "data.first_mes is 100,001 characters long; a card's text field may be at most 100,000" in \
        refused(_upload(characters_client, long_field, "long.json"))
    chunk = png_with_text("chara", b"A" * (MAX_CHUNK_TEXT + 1))
    big_chunk = _upload(characters_client, chunk, "chunk.png")
    assert f"a card's chunk may hold at most {MAX_CHUNK_TEXT:,}" in refused(big_chunk)
    assert characters_client.get("/api/characters").json["characters"] == []
    assert not (runtime.home / "resources").exists() or not list((runtime.home / "resources").rglob("*.json"))


def test_the_editor_refuses_a_lorebook_over_the_limit(runtime) -> None:
    from zishu.catalog.cards import MAX_LORE_ENTRIES

    lorebook = [{"keys": ["k"], "content": "x"}] * (MAX_LORE_ENTRIES + 1)
    with pytest.raises(UsageError, match="lorebook: has 2,001 entries; a character may have at most 2,000"):
        chars.create_character(runtime, fields(lorebook=lorebook))


def _peak_while(work) -> tuple[object, int]:
    tracemalloc.start()
    try:
        result = work()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_list_reads_the_index_not_the_manifests(runtime) -> None:
    lorebook = [{"keys": [f"k{i}"], "content": "lore " * 400} for i in range(1_000)]  # a 2 MB manifest
    rid = chars.create_character(runtime, fields(lorebook=lorebook))
    assert (runtime.registry.path(rid) / "manifest.json").stat().st_size > 2_000_000
    index = json.loads((runtime.home / "characters.json").read_text(encoding="utf-8"))
    assert index["characters"][rid]["summary"]["name"] == "Mio"  # the save wrote its entry

    listed, peak = _peak_while(lambda: chars.list_characters(runtime))
    assert [c["id"] for c in listed] == [rid]
    assert peak < 500_000  # reading the manifest alone would take 2 MB


def test_the_index_is_rebuilt_when_missing_corrupt_or_stale(runtime, hero) -> None:
    rid = chars.create_character(runtime, fields(greetings=["Hi!"]))
    chars.create_character(runtime, fields(name="Zoe"))
    expected = chars.list_characters(runtime)
    index_file = runtime.home / "characters.json"

    for broken in (None, "{not json", '{"format": 1, "characters": []}',
                   json.dumps({"format": 1, "characters": {rid: {"key": 5, "summary": None}}}),
                   json.dumps({"format": 1, "characters": {rid: {"key": ["1.0.0", 0, 0], "summary": {"id": 1}}}})):
        if broken is None:
            index_file.unlink()
        else:
            index_file.write_text(broken, encoding="utf-8")
        assert chars.list_characters(runtime) == expected
        assert set(json.loads(index_file.read_text(encoding="utf-8"))["characters"]) == {rid, "local/zoe", "zishu/hero"}

    # a manifest changed behind the index's back (by hand, by an installer) is read again
    manifest = runtime.registry.path(rid) / "manifest.json"
    manifest.write_text(manifest.read_text(encoding="utf-8").replace('"Mio"', '"Mio Renamed"'), encoding="utf-8")
    assert [c["name"] for c in chars.list_characters(runtime)] == ["Hero", "Mio Renamed", "Zoe"]

    # an edit, an undo and a delete each show at once; a deleted character leaves the index
    chars.update_character(runtime, "local/zoe", {"name": "Zed"})
    assert [c["name"] for c in chars.list_characters(runtime)] == ["Hero", "Mio Renamed", "Zed"]
    chars.undo_character_edit(runtime, "local/zoe")
    assert [c["name"] for c in chars.list_characters(runtime)] == ["Hero", "Mio Renamed", "Zoe"]
    chars.delete_character(runtime, "local/zoe")
    assert [c["id"] for c in chars.list_characters(runtime)] == ["zishu/hero", rid]
    assert "local/zoe" not in json.loads(index_file.read_text(encoding="utf-8"))["characters"]
    chars.restore_character(runtime, "local/zoe")
    assert [c["name"] for c in chars.list_characters(runtime)] == ["Hero", "Mio Renamed", "Zoe"]


def test_the_list_shows_a_greetings_emotion_not_its_tag(runtime) -> None:
    chars.create_character(runtime, fields(greetings=["[开心] Nya, {{user}}! [害羞]"]))
    [listed] = chars.list_characters(runtime)
    assert listed["greeting"] == "Nya, you!"
    assert listed["greeting_emotion"] == {"name": "happy", "tag": "开心"}


def test_the_list_shows_the_start_of_a_long_greeting(runtime) -> None:
    chars.create_character(runtime, fields(greetings=["{{char}} " + "n" * 2_000]))
    [listed] = chars.list_characters(runtime)
    assert len(listed["greeting"]) == chars.MAX_LISTED_GREETING and listed["greeting"].endswith("…")
    assert listed["greeting"].startswith("Mio nnn")


def test_a_greeting_is_shown_without_its_tags_with_its_first_emotion() -> None:
    from zishu.companion.stream_text import shown_greeting

    text, emotion = shown_greeting("[开心] 你好呀！（害羞）", {"开心": {"expression": "smile"}})
    assert text == "你好呀！" and emotion is not None
    assert (emotion.name, emotion.tag, emotion.target) == ("happy", "开心", {"expression": "smile"})
    assert shown_greeting("Hello [not a feeling].") == ("Hello [not a feeling].", None)
