"""The brain's prompt: persona, lorebook triggering (SillyTavern rules), memories, history, emotion tags."""

from __future__ import annotations

import pytest

from conftest import make_manifest
from zishu.catalog import RESOURCE
from zishu.catalog.manifest import CharacterSpec, LoreEntry
from zishu.companion.brain import Character, build_turn, emotion_protocol, triggered_lore
from zishu.errors import ResourceNotAvailable, UsageError
from zishu.resources.versions import VersionStore


def lore(keys, content, **kw):
    return LoreEntry(keys=keys, content=content, **kw)


def test_lore_fires_on_keys_with_secondary_keys_case_and_constant():
    entries = [
        lore(["Dragon"], "Dragons sleep in the north.", priority=1),
        lore(["sword"], "The sword is cursed.", secondary_keys=["dragon", "king"]),
        lore(["Moon"], "The moon is red.", case_sensitive=True),
        lore(["never"], "World rule: magic costs memories.", constant=True, priority=-1),
        lore(["dragon"], "Disabled.", enabled=False),
    ]
    fired = triggered_lore(entries, ["I saw a DRAGON holding a sword", "the moon rose"])
    assert [e.content for e in fired] == ["Dragons sleep in the north.", "The sword is cursed.",
                                         "World rule: magic costs memories."]  # by priority; moon is case-sensitive
    assert [e.content for e in triggered_lore(entries, ["a sword alone"])] == ["World rule: magic costs memories."]
    assert "The moon is red." in [e.content for e in triggered_lore(entries, ["the Moon"])]


def test_lore_stays_within_its_budget_keeping_the_highest_priority():
    entries = [lore(["a"], "x" * 60, priority=0), lore(["a"], "y" * 60, priority=5), lore(["a"], "z" * 30)]
    assert [e.content[0] for e in triggered_lore(entries, ["a"], budget=100)] == ["y", "z"]


def test_the_turn_puts_everything_in_order():
    spec = CharacterSpec(persona="You are {{char}}, talking with {{User}}.", scenario="A tea house.",
                         example_dialogue="{{user}}: hi\n{{char}}: [开心] hello!",
                         lorebook=[lore(["tea"], "{{char}} brews oolong.")],
                         post_history_instructions="Stay in character.", emotions={"happy": {}, "sad": {}})
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "[happy] hello"}]
    turn = build_turn(Character("acme/mei", "Mei", spec), "Some tea?", history, memories=["likes jasmine"],
                      user_name="Lin")
    system = turn.messages[0]["content"]
    assert system.startswith("You are Mei, talking with Lin.\n\nScenario: A tea house.")
    assert "What you know:\nMei brews oolong." in system
    assert "What you remember about Lin:\n- likes jasmine" in system
    assert "Lin: hi\nMei: [开心] hello!" in system and "[happy] [sad]" in system
    assert turn.messages[1:3] == history
    assert turn.messages[-1] == {"role": "user", "content": "Some tea?\n\nStay in character."}
    assert [e.content for e in turn.lore] == ["{{char}} brews oolong."] and turn.memories == ["likes jasmine"]


def test_lore_scans_recent_history_not_only_the_new_message():
    spec = CharacterSpec(persona="p", lorebook=[lore(["castle"], "The castle fell.")])
    old = [{"role": "user", "content": "tell me of the castle"}] + [{"role": "assistant", "content": "..."}] * 5
    recent = [{"role": "user", "content": "tell me of the castle"}, {"role": "assistant", "content": "..."}]
    assert build_turn(Character("a/b", "B", spec), "go on", recent).lore
    assert not build_turn(Character("a/b", "B", spec), "go on", old).lore


def test_the_default_emotion_tags_when_the_character_has_none():
    protocol = emotion_protocol(Character("a/b", "B", CharacterSpec(persona="p")))
    assert "[开心] [生气] [悲伤] [惊讶] [撒娇] [平静]" in protocol


def test_installed_characters_load_and_other_kinds_are_refused(tmp_path):
    for rid, kind, spec in (("acme/mei", "character", {"persona": "You are Mei."}),
                            ("acme/voice", "voice", {"engine": "espeak-ng", "language": "en"})):
        folder = tmp_path / "resources" / rid / "1.0.0"
        folder.mkdir(parents=True)
        data = make_manifest(rid, kind=kind, spec=spec, name="Mei")
        (folder / "manifest.json").write_bytes(RESOURCE.dump_json(RESOURCE.validate_python(data)))
    mei = Character.installed(VersionStore(tmp_path), "acme/mei")
    assert (mei.id, mei.name, mei.spec.persona, mei.folder.name) == ("acme/mei", "Mei", "You are Mei.", "1.0.0")
    with pytest.raises(UsageError, match="acme/voice is a voice, not a character"):
        Character.installed(VersionStore(tmp_path), "acme/voice")
    with pytest.raises(ResourceNotAvailable, match="acme/nobody"):
        Character.installed(VersionStore(tmp_path), "acme/nobody")


# ---- SillyTavern's keyless constants and regex keys (issue 14) ------------------------------


def test_regex_keys_match_as_regexes_with_their_own_case_flag():
    entries = [
        lore(["/drag(on|ons)\\b/i"], "Dragons sleep."),
        lore(["/Moon/"], "The moon is red.", case_sensitive=False),  # no i flag: the regex decides case
        lore(["/a.c/"], "Literal would not match."),
    ]
    fired = [e.content for e in triggered_lore(entries, ["Two DRAGONS and the moon; abc"])]
    assert fired == ["Dragons sleep.", "Literal would not match."]
    assert [e.content for e in triggered_lore(entries, ["the Moon"])] == ["The moon is red."]
    assert not triggered_lore(entries, ["/drag(on|ons)\\b/i"])  # the key's text itself is no match


def test_a_key_that_does_not_compile_or_has_a_bare_slash_is_plain_text():
    entries = [lore(["/a(b/"], "Unbalanced."), lore(["/a/b/"], "Slash inside.")]
    assert [e.content for e in triggered_lore(entries, ["x /a(b/ y"])] == ["Unbalanced."]
    assert [e.content for e in triggered_lore(entries, ["x /A/B/ y"])] == ["Slash inside."]


def test_a_catastrophic_regex_key_matches_nothing_instead_of_hanging_the_turn():
    from zishu.companion import lore_keys

    entries = [lore(["/^(a+)+$/"], "Never."), lore(["dragon"], "Dragons sleep.")]
    text = "a" * 40 + "b dragon"
    assert [e.content for e in triggered_lore(entries, [text])] == ["Dragons sleep."]
    # without the regex package, the safe subset refuses the exponential shapes up front
    assert not lore_keys._is_safe_for_re("^(a+)+$")
    assert not lore_keys._is_safe_for_re("(a|aa)*b")
    assert not lore_keys._is_safe_for_re("(x)\\1")
    assert lore_keys._is_safe_for_re("drag(on|ons)\\b") and lore_keys._is_safe_for_re("(?:ab)+c")


def test_keyless_constant_entries_of_an_imported_card_are_always_injected():
    from zishu.catalog.cards import card_to_manifest

    entry = {"keys": [], "content": "Kiri always speaks politely.", "enabled": True, "constant": True,
             "insertion_order": 0, "extensions": {}}  # fmt: skip
    keyless_off = {**entry, "content": "Not constant, no keys: never.", "constant": False}
    disabled = {**entry, "content": "Disabled.", "enabled": False}
    card = {"spec": "chara_card_v2", "spec_version": "2.0", "data": {
        "name": "Kiri", "description": "Kiri.", "first_mes": "Hi", "extensions": {},
        "character_book": {"extensions": {}, "entries": [
            {**entry, "keys": ["tea"], "content": "Kiri likes tea.", "constant": False}, entry, keyless_off, disabled,
        ]},
    }}  # fmt: skip
    resource = card_to_manifest(card, owner="alice", license="MIT")
    character = Character(resource.id, resource.name, resource.spec)
    turn = build_turn(character, "hello", [])
    assert [e.content for e in turn.lore] == ["Kiri always speaks politely."]
    assert "Kiri always speaks politely." in turn.messages[0]["content"]
    assert [e.content for e in build_turn(character, "tea?", []).lore] == [
        "Kiri likes tea.", "Kiri always speaks politely.",
    ]  # fmt: skip


def test_the_opening_greeting_fills_placeholders_and_shows_the_emotion_not_the_tag():
    from zishu.companion.brain import opening_greeting

    spec = CharacterSpec(persona="You are {{char}}.", greetings=["[开心] 你好，{{user}}！我是{{Char}}。"])
    text, emotion = opening_greeting(Character("a/mei", "Mei", spec), "Lin")
    assert text == "你好，Lin！我是Mei。"
    assert emotion is not None and emotion.name == "happy" and emotion.tag == "开心"
    assert opening_greeting(Character("a/b", "B", CharacterSpec(persona="x")), "Lin") == ("", None)
