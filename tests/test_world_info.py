"""SillyTavern world-info files (lorebooks) imported into a character on a real registry: the
entries become lorebook entries (keys, secondary keys, comment, order, disable, case, constant),
a keyless constant entry is still injected, the import is a new version that Undo takes back, and
files that are not world info or have too many entries are refused; the JSON API over the same."""

from __future__ import annotations

import io
import json

import pytest

from zishu.catalog.cards import MAX_LORE_ENTRIES
from zishu.companion import characters as chars
from zishu.companion.brain import Character, build_turn
from zishu.companion.world_info import import_lorebook, read_world_info
from zishu.errors import UsageError


def st_entry(uid: int, **fields) -> dict:
    """An entry as SillyTavern's editor writes it (every field of newWorldInfoEntryDefinition)."""
    entry = {"uid": uid, "key": [], "keysecondary": [], "comment": "", "content": "", "constant": False,
             "vectorized": False, "selective": True, "selectiveLogic": 0, "addMemo": False, "order": 100,
             "position": 0, "disable": False, "excludeRecursion": False, "preventRecursion": False,
             "delayUntilRecursion": 0, "probability": 100, "useProbability": True, "depth": 4, "group": "",
             "groupOverride": False, "groupWeight": 100, "scanDepth": None, "caseSensitive": None,
             "matchWholeWords": None, "useGroupScoring": None, "automationId": "", "role": 0, "sticky": None,
             "cooldown": None, "delay": None, "displayIndex": uid}
    entry.update(fields)
    return entry


# A world written by hand in the shape SillyTavern saves (entries keyed by uid)
WORLD = {"entries": {
    "0": st_entry(0, key=["Eldoria", "the old forest"], keysecondary=["wolves"], comment="The forest",
                  content="Eldoria is an ancient forest where wolves hunt at night.", order=50),
    "1": st_entry(1, key=["Lantern"], comment="A lost lamp", content="The Lantern of Mist was lost.",
                  disable=True, caseSensitive=True, order=10),
    "2": st_entry(2, key=[], comment="Always", content="Magic has a price in this world.", constant=True),
    "3": st_entry(3, key=[], comment="Nothing", content="Never triggered: no keys, not constant."),
}}


def world_bytes(world: dict = WORLD) -> bytes:
    return json.dumps(world, ensure_ascii=False, indent=4).encode()


def test_entries_map_to_lorebook_entries_and_keyless_ones_are_kept_aside() -> None:
    lorebook, keyless = read_world_info(world_bytes(), "Eldoria.json")
    first, second = lorebook
    assert first["keys"] == ["Eldoria", "the old forest"] and first["secondary_keys"] == ["wolves"]
    assert first["name"] == "The forest" and first["priority"] == 50 and first["enabled"] is True
    assert first["content"].startswith("Eldoria is an ancient forest")
    assert first["extensions"]["sillytavern"]["world_info"]["depth"] == 4  # the rest is kept
    assert second["enabled"] is False and second["case_sensitive"] is True and second["priority"] == 10
    assert [k["entry"]["comment"] for k in keyless] == ["Always", "Nothing"]


def test_a_world_imports_into_a_character_as_a_new_version_with_undo(runtime) -> None:
    rid = chars.create_character(runtime, {"name": "Sera", "persona": "You are {{char}}.",
                                           "lorebook": [{"keys": ["home"], "content": "A glade."}]})
    result = import_lorebook(runtime, rid, world_bytes(), "Eldoria.json")
    assert result == {"id": rid, "version": "1.0.1", "changed": True, "forked_from": None, "added": 4}
    character = Character.installed(runtime.registry, rid)
    assert [e.keys[0] for e in character.spec.lorebook] == ["home", "Eldoria", "Lantern"]

    turn = build_turn(character, "We walk into Eldoria; wolves howl.", [])  # key + secondary key
    told = [e.content for e in turn.lore]
    assert "Eldoria is an ancient forest where wolves hunt at night." in told
    assert "Magic has a price in this world." in told  # keyless and constant: always, as in SillyTavern
    assert not any("Never triggered" in c or "Lantern" in c for c in told)

    chars.undo_character_edit(runtime, rid)
    assert [e.keys[0] for e in Character.installed(runtime.registry, rid).spec.lorebook] == ["home"]


@pytest.mark.parametrize(("data", "message"), [
    (b"not json at all", "Eldoria.json: is not a JSON file"),
    (b'{"name": "a card, not a world"}', 'has no "entries" object'),
    (b'[1, 2]', 'has no "entries" object'),
    (json.dumps({"entries": {"0": "text"}}).encode(), "entry 1 must be an object"),
    (json.dumps({"entries": {"0": st_entry(0, key=[1, 2])}}).encode(), "entry 1's key must be a list of words"),
    (json.dumps({"entries": {"0": st_entry(0, key=["a"], content=5)}}).encode(), "content must be text"),
    (json.dumps({"entries": {str(i): st_entry(i, key=["k"], content="c") for i in range(MAX_LORE_ENTRIES + 1)}})
     .encode(), f"has {MAX_LORE_ENTRIES + 1:,} entries; a lorebook may have at most {MAX_LORE_ENTRIES:,}"),
])
def test_files_that_are_not_world_info_are_refused_saying_why(data: bytes, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_world_info(data, "Eldoria.json")


def test_a_lorebook_that_would_grow_past_the_limit_is_refused_and_nothing_is_written(runtime) -> None:
    full = [{"keys": [f"k{i}"], "content": "x"} for i in range(MAX_LORE_ENTRIES - 1)]
    rid = chars.create_character(runtime, {"name": "Sera", "persona": "You are {{char}}.", "lorebook": full})
    with pytest.raises(UsageError, match=f"a lorebook may have at most {MAX_LORE_ENTRIES:,}"):
        import_lorebook(runtime, rid, world_bytes(), "Eldoria.json")
    assert runtime.registry.versions(rid) == ["1.0.0"]


def test_the_api_imports_a_world_file_and_refuses_a_bad_one(characters_client) -> None:
    made = characters_client.post("/api/characters", json={"name": "Sera", "persona": "You are {{char}}."})
    assert made.status_code == 201
    answer = characters_client.post("/api/characters/local/sera/lorebook",
                         data={"file": (io.BytesIO(world_bytes()), "Eldoria.json")}, content_type="multipart/form-data")
    assert answer.status_code == 200, answer.json
    assert answer.json["added"] == 4 and answer.json["character"]["version"] == "1.0.1"
    assert [e["name"] for e in answer.json["character"]["lorebook"]] == ["The forest", "A lost lamp"]
    bad = characters_client.post("/api/characters/local/sera/lorebook",
                      data={"file": (io.BytesIO(b"<html>"), "page.html")}, content_type="multipart/form-data")
    assert bad.status_code == 400 and "page.html: is not a JSON file" in bad.json["error"]["message"]
    missing = characters_client.post("/api/characters/local/sera/lorebook")
    assert missing.status_code == 400 and "multipart form field named 'file'" in missing.json["error"]["message"]
    assert characters_client.post("/api/characters/local/sera/undo").json["character"]["version"] == "1.0.0"
