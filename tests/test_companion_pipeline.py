"""A turn through the real pipeline: a tiny GGUF on llama.cpp → sentences and emotion tags → espeak-ng
speech per sentence, overlapped with generation; barge-in keeps only what was heard."""

from __future__ import annotations

import pytest

from tiny_gguf import write_tiny_gguf
from zishu.catalog.manifest import CharacterSpec, EmotionTarget
from zishu.companion.brain import Character
from zishu.companion.pipeline import INTERRUPTED, Conversation
from zishu.engines import ChatOptions, use


@pytest.fixture(scope="module")
def ggufs(tmp_path_factory):
    root = tmp_path_factory.mktemp("llm")
    return {"talker": write_tiny_gguf(root / "talker.gguf", dim=256, layers=4, heads=4, ffn=512, context=2048),
            "scripted": write_tiny_gguf(root / "scripted.gguf", script="[joy]Hi,cat.", context=2048)}


def character(**emotions):
    return Character("acme/mei", "Mei", CharacterSpec(persona="You are {{char}}.", emotions=emotions))


def conversation(runtime, ggufs, which="talker", tts=True, **emotions):
    llm = use(runtime, "llm", str(ggufs[which])).handle
    voice = use(runtime, "tts", None).handle if tts else None  # espeak-ng, the offline default
    return Conversation(character(**emotions), llm, voice, options=ChatOptions(max_tokens=200, temperature=0.0, seed=1))


def test_speech_starts_while_the_reply_is_still_being_generated(runtime, ggufs):
    events = list(conversation(runtime, ggufs).reply("tell me a story"))
    kinds = [e["type"] for e in events]
    assert kinds[0] == "turn" and kinds[-1] == "done"
    first_audio = kinds.index("audio")
    last_token = len(kinds) - 1 - kinds[::-1].index("token")
    assert first_audio < last_token  # audio of sentence 0 went out before generation ended
    sentences = [e for e in events if e["type"] == "sentence"]
    assert [s["index"] for s in sentences] == list(range(len(sentences))) and len(sentences) > 1
    for event in (e for e in events if e["type"] == "audio"):  # each chunk after its own sentence
        assert kinds[: events.index(event)].count("sentence") > event["index"]
    latency = events[-1]["latency"]
    assert latency["first_token"] <= latency["first_sentence"] <= latency["first_audio"]


def test_an_emotion_tag_becomes_an_expression_event_before_its_sentence(runtime, ggufs):
    talk = conversation(runtime, ggufs, "scripted", joy=EmotionTarget(expression="smile", motion="wave"))
    events = list(talk.reply("hello"))
    shown = [e for e in events if e["type"] in ("emotion", "sentence")]
    assert shown[0] == {"type": "emotion", "name": "happy", "tag": "joy", "expression": "smile", "motion": "wave"}
    assert shown[1]["text"] == "Hi,cat." and shown[1]["emotion"] == "happy"  # joy is happy, canonically
    assert "".join(e["text"] for e in events if e["type"] == "token") == "[joy]Hi,cat."
    assert events[-1]["text"] == "Hi,cat." and not events[-1]["interrupted"]
    assert talk.history[-1] == {"role": "assistant", "content": "Hi,cat."}


def test_barge_in_keeps_only_what_was_heard(runtime, ggufs):
    talk = conversation(runtime, ggufs)
    events = []
    for event in talk.reply("tell me a story"):
        events.append(event)
        if event["type"] == "audio" and event["index"] == 0:
            talk.interrupt(1)  # the listener heard the first sentence, then started speaking
    done = events[-1]
    first = next(e["text"] for e in events if e["type"] == "sentence")
    assert done["interrupted"] and done["text"] == f"{first} {INTERRUPTED}"
    assert talk.history[-1] == {"role": "assistant", "content": f"{first} {INTERRUPTED}"}
    assert sum(e["type"] == "token" for e in events) < 200  # generation stopped early


def test_text_only_when_there_is_no_voice_and_the_history_grows(runtime, ggufs):
    talk = conversation(runtime, ggufs, "scripted", tts=False)
    first = list(talk.reply("hello"))
    second = list(talk.reply("again"))
    assert not any(e["type"] == "audio" for e in first + second)
    assert [m["role"] for m in talk.history] == ["user", "assistant", "user", "assistant"]
    assert second[-1]["text"] == "Hi,cat."


def test_a_fact_told_in_one_turn_is_recalled_in_a_later_one(runtime, ggufs, tmp_path):
    from zishu.companion.memory import MemoryStore

    embed = use(runtime, "embedding", str(ggufs["talker"])).handle.embed
    talk = conversation(runtime, ggufs, "scripted", tts=False)
    talk.memory = MemoryStore(tmp_path / "home", embed, embedder="llama-cpp-embed:talker")
    first = list(talk.reply("My name is Lin. I like green tea."))
    assert first[0]["memories"] == []
    later = list(talk.reply("What should we drink?"))
    assert {"My name is Lin", "I like green tea"} <= {m["text"] for m in later[0]["memories"]}
    turns = talk.memory.history("acme/mei", 10)
    assert [(t.role, t.text) for t in turns] == [
        ("user", "My name is Lin. I like green tea."), ("assistant", "Hi,cat."),
        ("user", "What should we drink?"), ("assistant", "Hi,cat."),
    ]
    assert turns[-1].latency["first_token"] >= 0


def test_a_text_reply_adds_each_sentence_once_and_ctrl_c_keeps_what_was_shown(runtime, ggufs):
    """``zishu chat``'s reply (``TextReply``): the printed pieces add up to the reply; Ctrl-C while
    the second sentence is being printed keeps only the first."""
    from zishu.companion.text_chat import TextReply

    whole = TextReply(conversation(runtime, ggufs, tts=False), "tell me a story")
    events = list(whole)
    pieces = [e["text"] for e in events if e["type"] == "text"]
    assert len(pieces) > 1 and not any(e["type"] == "sentence" for e in events)
    assert "".join(pieces) == whole.said == events[-1]["text"] and whole.shown == len(pieces)

    talk = conversation(runtime, ggufs, tts=False)
    cut = TextReply(talk, "tell me a story")
    events = iter(cut)
    first = next(e for e in events if e["type"] == "text")
    next(e for e in events if e["type"] == "text")
    cut.interrupt()  # Ctrl-C while the second sentence is being printed
    assert cut.shown == 1
    done = list(events)[-1]
    assert done["interrupted"] and done["text"] == f"{first['text']} {INTERRUPTED}"
    assert talk.history[-1] == {"role": "assistant", "content": f"{first['text']} {INTERRUPTED}"}
