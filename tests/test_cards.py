"""SillyTavern character cards: import (PNG and JSON, V1/V2/V3) into a valid manifest, export back
field for field, and refuse broken cards with a message naming the file and the problem."""

from __future__ import annotations

import base64
import copy
import io
import json
import tracemalloc
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from conftest import make_manifest
from zishu.catalog import cards, load_yaml, parse_manifest, read_manifest
from zishu.catalog.cards import (
    MAX_CHUNK_TEXT,
    MAX_FIELD_CHARS,
    MAX_JSON_BYTES,
    MAX_LIST_ITEMS,
    MAX_LORE_ENTRIES,
    MAX_PNG_BYTES,
    card_to_manifest,
    manifest_to_card,
    normalize_card,
    read_card,
    read_card_bytes,
    read_card_file,
    summary_for,
    write_card_png,
)
from zishu.catalog.manifest import CharacterResource
from zishu.cli import cli
from zishu.errors import CardError

V2_CARD = {
    "spec": "chara_card_v2",
    "spec_version": "2.0",
    "data": {
        "name": "Seraphina",
        "description": "Seraphina is the guardian of Eldoria's forest. She has pink hair and amber eyes.",
        "personality": "caring, protective, gentle",
        "scenario": "{{user}} wakes up in Seraphina's glade after a wolf attack.",
        "first_mes": "*You wake to soft light.* Easy now, you were hurt.",
        "mes_example": "<START>\n{{user}}: Who are you?\n{{char}}: I am Seraphina, this forest's keeper.",
        "creator_notes": "A gentle forest guardian. Works best with long replies!",
        "system_prompt": "Write {{char}}'s next reply in a fictional chat with {{user}}.",
        "post_history_instructions": "Stay in character as {{char}}.",
        "alternate_greetings": [
            "*Seraphina hums while tending the herbs.* Oh, you're awake.",
            "*A deer bolts; behind it stands Seraphina.* Are you lost?",
        ],
        "character_book": {
            "name": "Eldoria",
            "description": "The forest and its dangers.",
            "scan_depth": 4,
            "token_budget": 512,
            "recursive_scanning": False,
            "extensions": {"world_info_source": "st"},
            "entries": [
                {
                    "id": 0,
                    "keys": ["Eldoria", "forest"],
                    "secondary_keys": ["dark"],
                    "selective": True,
                    "comment": "The forest",
                    "content": "Eldoria is an ancient forest full of old magic.",
                    "constant": False,
                    "enabled": True,
                    "insertion_order": 100,
                    "case_sensitive": False,
                    "position": "before_char",
                    "extensions": {"probability": 100, "depth": 4, "selectiveLogic": 0},
                },
                {
                    "keys": ["Shadowfang"],
                    "content": "The Shadowfang are wolves corrupted by dark magic.",
                    "extensions": {},
                    "enabled": False,
                    "insertion_order": 50,
                    "priority": 7,
                    "name": "Wolves",
                    "comment": "hostile",
                    "mystery_field": [1, 2, 3],
                },
            ],
        },
        "tags": ["Fantasy", "Female", "Forest Guardian", "SFW", "魔法"],
        "creator": "seraphina-fan",
        "character_version": "1.2",
        "extensions": {
            "depth_prompt": {"prompt": "{{char}} is protective.", "depth": 4, "role": "system"},
            "talkativeness": "0.5",
            "fav": False,
            "world": "Eldoria",
        },
        "x_made_with": {"editor": "hand", "revision": 3},
    },
    # SillyTavern mirrors the V1 fields at the top level and adds a few of its own.
    "name": "Seraphina",
    "first_mes": "*You wake to soft light.* Easy now, you were hurt.",
    "chat": "Seraphina - 2024-5-1 @12h 00m 00s 000ms",
    "create_date": "2024-5-1 @12h 00m 00s 000ms",
}

V3_CARD = {
    "spec": "chara_card_v3",
    "spec_version": "3.0",
    "data": {
        "name": "Kiri",
        "nickname": "Kiri-chan",
        "description": "",
        "personality": "",
        "system_prompt": "",
        "scenario": "",
        "first_mes": "",
        "alternate_greetings": ["Hi!", "Hello again."],
        "group_only_greetings": ["Hi everyone!"],
        "mes_example": "",
        "creator_notes": "",
        "creator_notes_multilingual": {"ja": "キリです。", "en": "This is Kiri."},
        "post_history_instructions": "",
        "source": ["https://example.com/kiri"],
        "creation_date": 1714521600,
        "modification_date": 1714608000,
        "assets": [{"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}],
        "character_book": {
            "extensions": {},
            "entries": [
                {
                    "keys": ["^kiri$"],
                    "content": "@@depth 2\nKiri likes tea.",
                    "extensions": {},
                    "enabled": True,
                    "insertion_order": 10,
                    "use_regex": True,
                    "constant": False,
                },
                {
                    "keys": [],
                    "content": "Kiri always speaks politely.",
                    "extensions": {},
                    "enabled": True,
                    "insertion_order": 0,
                    "use_regex": False,
                    "constant": True,
                },
            ],
        },
        "tags": [],
        "creator": "Someone Anonymous",
        "character_version": "v2 final",
        "extensions": {},
    },
}


def png_card(path: Path, chunks: dict[str, str | bytes | dict]) -> Path:
    """A real PNG with tEXt chunks; a dict value is written the way SillyTavern does (base64 of JSON)."""
    info = PngInfo()
    for keyword, value in chunks.items():
        if isinstance(value, dict):
            value = base64.b64encode(json.dumps(value, ensure_ascii=False).encode("utf-8")).decode("ascii")
        info.add_text(keyword, value.decode("latin-1") if isinstance(value, bytes) else value)
    Image.new("RGB", (8, 12), (200, 120, 180)).save(path, pnginfo=info)
    return path


def zishu(*args: str) -> object:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def import_card(card_file: Path, out: Path, *extra: str) -> object:
    return zishu("catalog", "import-card", str(card_file), "--owner", "alice", "--license", "CC-BY-4.0",
                 "--out", str(out), *extra)  # fmt: skip


def export_card(manifest: Path, out: Path, *extra: str) -> object:
    return zishu("catalog", "export-card", str(manifest), "--out", str(out), *extra)


def load_manifest(path: Path) -> CharacterResource:
    resource = parse_manifest(load_yaml(path.read_bytes(), str(path)), str(path))
    assert isinstance(resource, CharacterResource)
    return resource


# ---- round trips -----------------------------------------------------------------------------


def test_v2_png_imports_into_a_valid_manifest_and_exports_back_field_for_field(tmp_path: Path) -> None:
    card_file = png_card(tmp_path / "seraphina.png", {"chara": V2_CARD})
    manifest = tmp_path / "seraphina.yaml"

    result = import_card(card_file, manifest)

    assert result.exit_code == 0, result.output
    assert "release asset" in result.stderr and "spec.avatar.image" in result.stderr
    resource = load_manifest(manifest)
    assert resource.id == "alice/seraphina"
    assert resource.name == "Seraphina"
    assert resource.summary == "A gentle forest guardian."
    assert resource.license == "CC-BY-4.0"
    assert resource.maintainers == ["alice"]  # the card's creator is credit, never a maintainer (issue 14)
    assert resource.spec.extensions["sillytavern"]["fields"]["creator"] == "seraphina-fan"
    assert "'seraphina-fan' is kept as credit" in result.stderr
    assert resource.tags == ["fantasy", "female", "forest-guardian", "sfw"]
    assert [v.version for v in resource.versions] == ["1.2.0"] and resource.versions[0].files == []
    spec = resource.spec
    data = V2_CARD["data"]
    assert spec.persona == "\n\n".join(
        [data["system_prompt"], data["description"], "{{char}}'s personality: " + data["personality"]]
    )
    assert spec.greetings == [data["first_mes"], *data["alternate_greetings"]]
    assert spec.example_dialogue == data["mes_example"]
    assert spec.scenario == data["scenario"]
    assert spec.creator_notes == data["creator_notes"]
    assert spec.post_history_instructions == data["post_history_instructions"]
    forest, wolves = spec.lorebook
    assert (forest.keys, forest.secondary_keys, forest.name, forest.priority) == (
        ["Eldoria", "forest"], ["dark"], "The forest", 100,
    )  # fmt: skip
    assert (wolves.keys, wolves.name, wolves.enabled, wolves.priority) == (["Shadowfang"], "Wolves", False, 7)
    kept = spec.extensions["sillytavern"]
    assert kept["fields"]["extensions"] == data["extensions"]
    assert kept["fields"]["x_made_with"] == data["x_made_with"]
    assert wolves.extensions["sillytavern"]["fields"]["mystery_field"] == [1, 2, 3]

    for out in (tmp_path / "back.json", tmp_path / "back.png"):
        result = export_card(manifest, out, "--spec", "v2")
        assert result.exit_code == 0, result.output
        assert read_card(out) == V2_CARD
    assert json.loads((tmp_path / "back.json").read_text(encoding="utf-8")) == V2_CARD


@pytest.mark.parametrize("container", ["json", "png"])
def test_v3_card_round_trips(tmp_path: Path, container: str) -> None:
    if container == "json":
        card_file = tmp_path / "kiri.json"
        card_file.write_text(json.dumps(V3_CARD, ensure_ascii=False), encoding="utf-8")
    else:  # a V3 PNG carries a V2 backfill too; ccv3 wins
        backfill = {**copy.deepcopy(V3_CARD), "spec": "chara_card_v2", "spec_version": "2.0"}
        backfill["data"]["name"] = "Kiri (V2 backfill)"
        card_file = png_card(tmp_path / "kiri.png", {"chara": backfill, "ccv3": V3_CARD})
    manifest = tmp_path / "kiri.yaml"

    result = import_card(card_file, manifest)

    assert result.exit_code == 0, result.output
    resource = load_manifest(manifest)
    assert resource.name == "Kiri"
    assert resource.summary == "This is Kiri."  # creator_notes is empty; the English multilingual note
    assert resource.maintainers == ["alice"]  # "Someone Anonymous" is no GitHub login
    assert resource.versions[0].version == "1.0.0"
    assert "not a semantic version" in result.stderr
    assert resource.spec.persona == "You are {{char}}."
    assert resource.spec.greetings == ["Hi!", "Hello again."]
    assert [e.keys for e in resource.spec.lorebook] == [["^kiri$"]]
    assert "keyless" in result.stderr  # the constant entry without keywords is kept aside

    out = tmp_path / f"back.{container}"
    result = export_card(manifest, out, "--spec", "v3")
    assert result.exit_code == 0, result.output
    assert read_card(out) == V3_CARD
    if container == "png":  # a V3 PNG gets both chunks, so V2-only readers work too
        chunks = Image.open(out).text
        assert set(chunks) >= {"chara", "ccv3"}
        assert json.loads(base64.b64decode(chunks["chara"]))["spec"] == "chara_card_v2"


def test_default_spec_is_the_one_the_card_came_in(tmp_path: Path) -> None:
    card_file = tmp_path / "kiri.json"
    card_file.write_text(json.dumps(V3_CARD), encoding="utf-8")
    assert import_card(card_file, tmp_path / "kiri.yaml").exit_code == 0
    assert export_card(tmp_path / "kiri.yaml", tmp_path / "back.json").exit_code == 0
    assert read_card(tmp_path / "back.json") == V3_CARD


def test_v1_card_is_read_as_v2(tmp_path: Path) -> None:
    fields = ("name", "description", "personality", "scenario", "first_mes", "mes_example")
    v1 = {key: V2_CARD["data"][key] for key in fields}
    card_file = tmp_path / "v1.json"
    card_file.write_text(json.dumps(v1), encoding="utf-8")
    card = read_card(card_file)
    assert card["spec"] == "chara_card_v2" and card["data"] == v1
    assert import_card(card_file, tmp_path / "v1.yaml").exit_code == 0
    back = manifest_to_card(load_manifest(tmp_path / "v1.yaml"))
    assert {key: back["data"][key] for key in v1} == v1


V2_REQUIRED = {  # the V2 spec's data fields (spec_v2.md) and their type
    "name": str, "description": str, "personality": str, "scenario": str, "first_mes": str, "mes_example": str,
    "creator_notes": str, "system_prompt": str, "post_history_instructions": str, "alternate_greetings": list,
    "tags": list, "creator": str, "character_version": str, "extensions": dict,
}  # fmt: skip


def test_a_v1_card_exports_as_a_complete_v2_card(tmp_path: Path) -> None:
    fields = ("name", "description", "personality", "scenario", "first_mes", "mes_example")
    v1 = {key: V2_CARD["data"][key] for key in fields}
    card_file = tmp_path / "v1.json"
    card_file.write_text(json.dumps(v1), encoding="utf-8")
    assert import_card(card_file, tmp_path / "v1.yaml").exit_code == 0
    out = tmp_path / "v2.json"
    assert export_card(tmp_path / "v1.yaml", out).exit_code == 0
    back = json.loads(out.read_text(encoding="utf-8"))
    assert (back["spec"], back["spec_version"]) == ("chara_card_v2", "2.0")
    assert {key: type(back["data"].get(key)) for key in V2_REQUIRED} == V2_REQUIRED
    assert back["data"]["extensions"] == {} and back["data"]["alternate_greetings"] == []
    assert {key: back["data"][key] for key in v1} == v1


def test_exported_cards_and_imported_manifests_are_readable_by_others(tmp_path: Path) -> None:
    card_file = tmp_path / "seraphina.json"
    card_file.write_text(json.dumps(V2_CARD), encoding="utf-8")
    manifest = tmp_path / "seraphina.yaml"
    assert import_card(card_file, manifest).exit_code == 0
    assert export_card(manifest, tmp_path / "back.json").exit_code == 0
    assert export_card(manifest, tmp_path / "back.png").exit_code == 0
    for path in (manifest, tmp_path / "back.json", tmp_path / "back.png"):
        assert path.stat().st_mode & 0o777 == 0o644, path


def test_edited_manifest_fields_win_over_the_kept_originals(tmp_path: Path) -> None:
    resource = card_to_manifest(V2_CARD, owner="alice", license="MIT")
    spec = resource.spec.model_copy(
        update={
            "persona": "You are Seraphina, rewritten.",
            "greetings": ["Hello."],
            "lorebook": [
                resource.spec.lorebook[0].model_copy(update={"content": "New lore."}),
                resource.spec.lorebook[1],
            ],
        }
    )
    edited = resource.model_copy(update={"spec": spec, "tags": ["fantasy"]})

    data = manifest_to_card(edited)["data"]

    assert data["description"] == "You are Seraphina, rewritten."
    assert (data["system_prompt"], data["personality"]) == ("", "")
    assert (data["first_mes"], data["alternate_greetings"]) == ("Hello.", [])
    assert data["tags"] == ["fantasy"]
    forest, wolves = data["character_book"]["entries"]
    assert forest["content"] == "New lore."
    assert forest["comment"] == "The forest" and forest["extensions"]["depth"] == 4  # what was not edited stays
    assert wolves == V2_CARD["data"]["character_book"]["entries"][1]
    assert data["extensions"] == V2_CARD["data"]["extensions"]


def test_a_manifest_written_by_hand_exports_to_a_complete_card(tmp_path: Path, registry: Path) -> None:
    data = make_manifest("alice/hand-made", "character", tags=["cozy"])
    data["spec"] = {
        "persona": "You are a calm librarian.",
        "greetings": ["Welcome to the library.", "Shh."],
        "lorebook": [{"keys": ["library"], "content": "The library has 3 floors.", "priority": 5}],
    }
    path = registry / "resources" / "alice" / "hand-made.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")

    result = export_card(path, tmp_path / "hand.png", "--spec", "v3")

    assert result.exit_code == 0, result.output
    card = read_card(tmp_path / "hand.png")
    assert (card["spec"], card["spec_version"]) == ("chara_card_v3", "3.0")
    assert card["data"] == {
        "name": "Example",
        "description": "You are a calm librarian.",
        "personality": "",
        "system_prompt": "",
        "scenario": "",
        "first_mes": "Welcome to the library.",
        "alternate_greetings": ["Shh."],
        "group_only_greetings": [],
        "mes_example": "",
        "creator_notes": "",
        "post_history_instructions": "",
        "tags": ["cozy"],
        "creator": "alice",
        "character_version": "1.0.0",
        "extensions": {},
        "character_book": {
            "extensions": {},
            "entries": [
                {
                    "keys": ["library"],
                    "content": "The library has 3 floors.",
                    "secondary_keys": [],
                    "selective": False,
                    "comment": "",
                    "enabled": True,
                    "constant": False,
                    "case_sensitive": False,
                    "insertion_order": 5,
                    "use_regex": False,
                    "extensions": {},
                }
            ],
        },
    }
    with Image.open(tmp_path / "hand.png") as im:
        assert im.size == (400, 600)  # the placeholder picture


def test_export_into_a_given_picture_replaces_its_old_card(tmp_path: Path) -> None:
    old_card = {"spec": "chara_card_v2", "data": {"name": "Old"}}
    picture = png_card(tmp_path / "picture.png", {"chara": old_card, "Title": "kept"})
    resource = card_to_manifest(V2_CARD, owner="alice", license="MIT")

    write_card_png(manifest_to_card(resource), tmp_path / "out.png", image=picture)

    assert read_card(tmp_path / "out.png") == V2_CARD
    with Image.open(tmp_path / "out.png") as im:
        assert im.size == (8, 12) and im.text["Title"] == "kept"


# ---- the import command's own behaviour -------------------------------------------------------


def test_import_writes_into_the_registry_and_refuses_to_overwrite(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    card_file = tmp_path / "seraphina.json"
    card_file.write_text(json.dumps(V2_CARD), encoding="utf-8")
    args = ["catalog", "import-card", str(card_file), "--owner", "Alice", "--license", "CC-BY-NC-4.0"]

    assert zishu(*args).exit_code == 0
    written = tmp_path / "registry_index" / "resources" / "alice" / "seraphina.yaml"
    assert read_manifest(written).id == "alice/seraphina"

    again = zishu(*args)
    assert again.exit_code == 2 and "already exists" in again.output and "--force" in again.output
    assert zishu(*args, "--force").exit_code == 0
    assert zishu(*args, "--name", "sera").exit_code == 0
    assert (tmp_path / "registry_index" / "resources" / "alice" / "sera.yaml").exists()
    assert zishu("catalog", "export-card", "alice/sera", "--out", "sera.json").exit_code == 0
    assert read_card(tmp_path / "sera.json") == V2_CARD


def test_import_prints_the_manifest_with_out_dash(tmp_path: Path) -> None:
    card_file = tmp_path / "seraphina.json"
    card_file.write_text(json.dumps(V2_CARD), encoding="utf-8")
    result = import_card(card_file, Path("-"))
    assert result.exit_code == 0
    assert parse_manifest(yaml.safe_load(result.stdout), "stdout").id == "alice/seraphina"


def test_license_is_required_because_cards_carry_none(tmp_path: Path) -> None:
    card_file = tmp_path / "seraphina.json"
    card_file.write_text(json.dumps(V2_CARD), encoding="utf-8")
    result = zishu("catalog", "import-card", str(card_file), "--owner", "alice")
    assert result.exit_code == 2
    assert "--license is required" in result.output and "SPDX" in result.output


def test_a_name_that_makes_no_slug_asks_for_name(tmp_path: Path) -> None:
    card_file = tmp_path / "qianxun.json"
    card_file.write_text(json.dumps({"spec": "chara_card_v2", "data": {"name": "千寻"}}), encoding="utf-8")
    result = import_card(card_file, tmp_path / "m.yaml")
    assert result.exit_code == 2 and "--name" in result.output
    assert import_card(card_file, tmp_path / "m.yaml", "--name", "qianxun").exit_code == 0
    assert load_manifest(tmp_path / "m.yaml").name == "千寻"


def test_summary_is_the_first_sentence_trimmed() -> None:
    assert summary_for({"name": "A", "creator_notes": "<b>Hi</b> there. More."}) == "Hi there."
    assert summary_for({"name": "A", "description": "{{char}} is a cat。她很可爱。"}) == "A is a cat。"
    assert len(summary_for({"name": "A", "description": "x" * 400})) == 300
    assert summary_for({"name": "A"}) == "A, a character imported from a SillyTavern card."


# ---- rejections: each names the file and the problem ----------------------------------------


def _b64(value: str | bytes) -> str:
    return base64.b64encode(value.encode("utf-8") if isinstance(value, str) else value).decode("ascii")


def _sparse(path: Path, head: bytes, size: int) -> Path:
    with path.open("wb") as f:
        f.write(head)
        f.truncate(size)
    return path


def _damage(path: Path, marker: bytes) -> None:
    raw = bytearray(path.read_bytes())
    raw[raw.index(marker) + len(marker) + 10] ^= 0x01  # one bit in the chunk's payload
    path.write_bytes(bytes(raw))


BROKEN = {
    "not-a-card.txt": (lambda p: p.write_text("hello, I am not a card"), "expected a PNG image"),
    "no-chunk.png": (lambda p: png_card(p, {"Title": "just a picture"}), "no tEXt chunk named 'chara' or 'ccv3'"),
    "bad-base64.png": (lambda p: png_card(p, {"chara": "not*base64!"}), "'chara' chunk is not valid base64"),
    "bad-json.png": (lambda p: png_card(p, {"chara": _b64('{"spec": ')}), "'chara' chunk holds invalid JSON"),
    "bad-json.json": (lambda p: p.write_text('{"spec": "chara_card_v2", }'), "invalid JSON"),
    "unknown-spec.json": (
        lambda p: p.write_text(json.dumps({"spec": "chara_card_v9", "data": {"name": "X"}})),
        "unknown spec 'chara_card_v9'",
    ),
    "no-name.json": (
        lambda p: p.write_text(json.dumps({"spec": "chara_card_v2", "data": {"description": "nameless"}})),
        "no character name",
    ),
    "no-name.png": (
        lambda p: png_card(p, {"ccv3": {"spec": "chara_card_v3", "data": {"name": "  "}}}),
        "no character name",
    ),
    "latin1.json": (
        lambda p: p.write_bytes('{"spec": "chara_card_v2", "data": {"name": "Café"}}'.encode("latin-1")),
        "not UTF-8",
    ),
    "latin1.png": (lambda p: png_card(p, {"chara": _b64("{\"name\": \"Café\"}".encode("latin-1"))}), "not UTF-8"),
    "huge.png": (lambda p: _sparse(p, b"\x89PNG\r\n\x1a\n", 21 * 2**20), "may be at most 20 MiB"),
    "huge.json": (lambda p: _sparse(p, b'{"name": "', 6 * 2**20), "may be at most 5 MiB"),
    "wrong-type.json": (
        lambda p: p.write_text(json.dumps({"spec": "chara_card_v2",
                                           "data": {"name": "X", "alternate_greetings": "hi"}})),
        "data.alternate_greetings must be a list of text",
    ),
    "lone-surrogate.json": (
        lambda p: p.write_text('{"spec": "chara_card_v2", "data": {"name": "\\ud800"}}'),
        "not valid Unicode",
    ),
    "list.json": (lambda p: p.write_text("[1, 2]"), "must be a JSON object"),
    "damaged.png": (lambda p: _damage(png_card(p, {"chara": V2_CARD}), b"tEXtchara"), "checksum does not match"),
    "truncated.png": (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00"), "truncated"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_cards_are_refused_naming_file_and_problem(tmp_path: Path, name: str) -> None:
    make, problem = BROKEN[name]
    card_file = tmp_path / name
    make(card_file)

    result = import_card(card_file, tmp_path / "out.yaml")

    assert result.exit_code == 4, result.output
    assert f"error: {card_file}: " in result.stderr
    assert problem in result.stderr
    assert not (tmp_path / "out.yaml").exists()


def test_bad_license_and_owner_are_refused(tmp_path: Path) -> None:
    card_file = tmp_path / "seraphina.json"
    card_file.write_text(json.dumps(V2_CARD), encoding="utf-8")
    result = zishu("catalog", "import-card", str(card_file), "--owner", "alice", "--license", "Nonsense License")
    assert result.exit_code == 4 and f"{card_file}: license:" in result.output and "SPDX" in result.output
    result = zishu("catalog", "import-card", str(card_file), "--owner", "not a login", "--license", "MIT")
    assert result.exit_code == 2 and "'not a login' is not a GitHub login" in result.output


def test_export_refuses_other_kinds_and_other_suffixes(tmp_path: Path, registry: Path) -> None:
    model = registry / "resources" / "alice" / "example.yaml"
    model.parent.mkdir(parents=True)
    model.write_text(yaml.safe_dump(make_manifest()), encoding="utf-8")
    result = export_card(model, tmp_path / "x.json")
    assert result.exit_code == 4 and "model manifest cannot become a character card" in result.output

    character = registry / "resources" / "alice" / "c.yaml"
    character.write_text(yaml.safe_dump(make_manifest("alice/c", "character")), encoding="utf-8")
    result = export_card(character, tmp_path / "x.txt")
    assert result.exit_code == 2 and ".json or .png" in result.output
    result = export_card(character, tmp_path / "x.json", "--image", str(character))
    assert result.exit_code == 2 and "--image is only for PNG" in result.output
    result = export_card(character, tmp_path / "x.png", "--image", str(character))
    assert result.exit_code == 4 and f"{character}: not an image" in result.output


# ---- limits: refused quickly, before the expensive step, naming the limit ---------------------


def _card_with(**data: object) -> dict:
    return {"spec": "chara_card_v2", "spec_version": "2.0", "data": {"name": "Big", **data}}


def _png_with_chunk(keyword: str, text_length: int) -> bytes:
    """A small real PNG with a ``tEXt`` card chunk holding ``text_length`` bytes of base64 text."""
    info = PngInfo()
    info.add_text(keyword, "A" * text_length)
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def _peak_bytes(work) -> int:
    """The most memory Python allocated while ``work()`` ran (it raises a CardError)."""
    tracemalloc.start()
    try:
        with pytest.raises(CardError):
            work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


LIMITS = {
    "entries.json": (_card_with(character_book={"entries": [{"keys": [f"k{i}"], "content": "x"}
                                                            for i in range(MAX_LORE_ENTRIES + 1)]}),
                     f"the lorebook has 2,001 entries; a card may have at most {MAX_LORE_ENTRIES:,}"),
    "field.json": (_card_with(description="x" * (MAX_FIELD_CHARS + 1)),
                   "data.description is 100,001 characters long; a card's text field may be at most 100,000"),
    "greeting.json": (_card_with(alternate_greetings=["hi", "y" * (MAX_FIELD_CHARS + 1)]),
                      "data.alternate_greetings[1] is 100,001 characters long"),
    "lore-text.json": (_card_with(character_book={"entries": [{"keys": ["k"],
                                                                "content": "z" * (MAX_FIELD_CHARS + 1)}]}),
                       "data.character_book.entries[0].content is 100,001 characters long"),
    "greetings.json": (_card_with(alternate_greetings=["hi"] * (MAX_LIST_ITEMS + 1)),
                       "data.alternate_greetings has 1,001 items; a card's list may have at most 1,000"),
    "keys.json": (_card_with(character_book={"entries": [{"keys": ["k"] * (MAX_LIST_ITEMS + 1), "content": "x"}]}),
                  "data.character_book.entries[0].keys has 1,001 items"),
}


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_a_card_over_a_limit_is_refused_by_the_cli_naming_the_limit(tmp_path: Path, name: str) -> None:
    card, problem = LIMITS[name]
    card_file = tmp_path / name
    card_file.write_text(json.dumps(card), encoding="utf-8")
    result = import_card(card_file, tmp_path / "out.yaml")
    assert result.exit_code == 4, result.output
    assert f"error: {card_file}: " in result.stderr and problem in result.stderr
    assert not (tmp_path / "out.yaml").exists()


def test_too_many_lorebook_entries_are_refused_before_any_manifest_is_built(tmp_path: Path, monkeypatch) -> None:
    built: list[object] = []
    monkeypatch.setattr(cards, "parse_manifest", lambda *a: built.append(a) or parse_manifest(*a))
    entries = [{"keys": [f"k{i}"], "content": "lore"} for i in range(100_000)]  # the attack run's 100k entries
    card_file = tmp_path / "lorebook.json"
    card_file.write_text(json.dumps(_card_with(character_book={"entries": entries})), encoding="utf-8")
    assert card_file.stat().st_size < MAX_JSON_BYTES  # small enough to pass the size check
    result = import_card(card_file, tmp_path / "out.yaml")
    assert result.exit_code == 4 and "the lorebook has 100,000 entries; a card may have at most 2,000" in result.stderr
    assert built == []


def test_an_oversized_file_is_refused_without_being_read(tmp_path: Path) -> None:
    huge = _sparse(tmp_path / "huge.json", b'{"name": "', MAX_JSON_BYTES + 1)
    assert _peak_bytes(lambda: read_card_file(huge)) < 256 * 1024  # the 5 MiB were never read


def test_an_oversized_card_chunk_is_refused_before_it_is_copied_or_decoded(tmp_path: Path) -> None:
    raw = _png_with_chunk("chara", MAX_CHUNK_TEXT + 1)
    assert len(raw) < MAX_PNG_BYTES  # the file itself is within its limit: the chunk is not
    peak = _peak_bytes(lambda: read_card_bytes(raw, "big-chunk.png"))
    assert peak < 256 * 1024  # the chunk (6.9 MB) was neither copied nor decoded

    card_file = tmp_path / "big-chunk.png"
    card_file.write_bytes(raw)
    result = import_card(card_file, tmp_path / "out.yaml")
    assert result.exit_code == 4
    assert (f"{card_file}: the 'chara' chunk holds {MAX_CHUNK_TEXT + 1:,} bytes of text; a card's chunk may hold "
            f"at most {MAX_CHUNK_TEXT:,}") in result.stderr


def test_a_card_at_the_limits_still_imports(tmp_path: Path) -> None:
    entries = [{"keys": [f"k{i}"], "content": "lore"} for i in range(MAX_LORE_ENTRIES)]
    card = _card_with(description="d" * MAX_FIELD_CHARS, alternate_greetings=["hi"] * MAX_LIST_ITEMS,
                      character_book={"entries": entries})
    resource = card_to_manifest(normalize_card(card), owner="alice", license="MIT")
    assert len(resource.spec.lorebook) == MAX_LORE_ENTRIES and len(resource.spec.greetings) == MAX_LIST_ITEMS
