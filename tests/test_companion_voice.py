"""The companion end to end, by voice: speech made offline by espeak-ng, fed as microphone audio
in 100 ms pieces → end-of-turn detection (the tiny FSMN VAD) → the tiny SenseVoice → the brain with
memory (ChromaDB, embeddings from the tiny GGUF) → a tiny GGUF on llama.cpp → sentences and emotion
tags → espeak-ng speech, through ``Session`` exactly as the window drives it.

The tiny ASR has random weights, so what it hears is random words: the fact the character must
remember is typed, and the spoken turn after it must recall it."""

from __future__ import annotations

import time

import pytest

from tiny_funasr import speech_wav
from zishu.companion.brain import Character
from zishu.companion.pipeline import INTERRUPTED
from zishu.companion.session import Session, choose_models, open_companion, percentiles
from zishu.db import set_setting
from zishu.engines.kinds import ChatOptions
from zishu.errors import UsageError

PIECE = 3200  # bytes: 100 ms of 16 kHz int16, what the window sends at a time
SILENCE = bytes(16000 * 2)  # one second


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    root = tmp_path_factory.mktemp("speech")
    return speech_wav("hello there, how are you", root / "hello.wav", voice="en")


@pytest.fixture
def home(runtime, companion_home):
    return companion_home


def session(runtime, llm: str | None = None, max_tokens: int = 60) -> Session:
    mei = Character.installed(runtime.registry, "acme/mei")
    companion = open_companion(runtime, mei, models={"llm": llm})
    companion.conversation.options = ChatOptions(max_tokens=max_tokens, temperature=0.0, seed=1)
    return Session(companion)


def talk(s: Session, pcm: bytes) -> None:
    """Speak into the session as the window's microphone does: silence, the speech, silence."""
    audio = SILENCE[: len(SILENCE) // 2] + pcm + SILENCE
    for at in range(0, len(audio), PIECE):
        s.hear(audio[at:at + PIECE])


def until(s: Session, last: str = "latency", wait: float = 120.0) -> list[dict]:
    """The session's events up to and including the first of type ``last``."""
    seen, deadline = [], time.monotonic() + wait
    for event in s.events(timeout=1.0):
        if event is not None:
            seen.append(event)
            if event["type"] == last:
                return seen
        if event is None and time.monotonic() > deadline:
            break
    raise AssertionError(f"no {last!r} event; saw {[e['type'] for e in seen]}")


def test_the_models_come_from_the_character_then_what_is_installed(runtime, home):
    mei = Character.installed(runtime.registry, "acme/mei")
    assert choose_models(runtime, mei) == {"llm": "acme/scripted", "asr": "acme/ear", "vad": "acme/vad",
                                           "embedding": None}
    assert choose_models(runtime, mei, {"llm": "acme/talker"})["llm"] == "acme/talker"
    set_setting("companion.models", {"llm": "acme/talker", "asr": "acme/other-ear"})  # the user's choice
    assert choose_models(runtime, mei) == {"llm": "acme/scripted", "asr": "acme/other-ear", "vad": "acme/vad",
                                           "embedding": None}
    with pytest.raises(UsageError, match="unknown model roles: tts"):
        choose_models(runtime, mei, {"tts": "acme/x"})


def test_a_spoken_turn_passes_every_stage_in_order_and_speaks_before_generation_ends(runtime, home, speech):
    s = session(runtime, "acme/talker", max_tokens=200)
    try:
        talk(s, speech)
        events = until(s)
    finally:
        s.close()
    kinds = [e["type"] for e in events]
    assert kinds[:3] == ["speech_start", "transcript", "turn"] and kinds[-2:] == ["done", "latency"]
    assert events[1]["text"]  # the tiny SenseVoice heard something (random words)
    first_audio, last_token = kinds.index("audio"), len(kinds) - 1 - kinds[::-1].index("token")
    assert first_audio < last_token  # sentence 0 was spoken while the reply was still being generated
    latency = events[-1]["latency"]
    stages = ["endpoint", "transcript", "first_token", "first_sentence", "first_audio"]
    assert all(stage in latency for stage in stages)
    assert [latency[k] for k in stages] == sorted(latency[k] for k in stages)  # from the end of speech, in order
    assert events[-1]["summary"]["first_audio"]["n"] == 1


def test_an_emotion_tag_in_the_reply_sets_the_expression(runtime, home, speech):
    s = session(runtime)
    try:
        talk(s, speech)
        events = until(s)
    finally:
        s.close()
    shown = [e for e in events if e["type"] in ("emotion", "sentence")]
    assert shown[0] == {"type": "emotion", "name": "happy", "tag": "joy", "expression": "smile", "motion": "wave"}
    assert [e["text"] for e in shown[1:]] == ["Hugs,", "cat."]  # the first cut at its comma


def test_a_fact_told_in_one_turn_is_recalled_in_a_later_spoken_turn(runtime, home, speech):
    s = session(runtime)
    try:
        s.say("My name is Lin.")
        first = until(s)
        assert first[0] == {"type": "turn", "memories": [], "lore": [], "history_dropped": 0, "message_cut": 0}
        talk(s, speech)
        later = until(s)
    finally:
        s.close()
    turn = next(e for e in later if e["type"] == "turn")
    assert "My name is Lin" in [m["text"] for m in turn["memories"]]
    assert s.talk.memory.memories("acme/mei")[0].text == "My name is Lin"


def test_speaking_over_the_reply_keeps_only_what_was_played(runtime, home, speech):
    s = session(runtime)
    try:
        talk(s, speech)
        until(s)
        s.playing()  # the window started playing the reply…
        assert "playback" in until(s)[-1]["latency"]
        s.heard(1)  # …finished its first sentence, "Hugs,", then the user spoke over "cat."
        talk(s, speech)
        events = until(s)
    finally:
        s.close()
    assert events[0]["type"] == "speech_start"
    history = [(t.role, t.text, t.interrupted) for t in s.talk.memory.history("acme/mei", 10)]
    assert history[1] == ("assistant", f"Hugs, {INTERRUPTED}", True)  # not "Hugs, cat."
    assert history[3] == ("assistant", "Hugs, cat.", False)  # the second reply, heard in full so far
    assert "playback" in s.talk.memory.history("acme/mei", 10)[1].latency


def test_latency_percentiles_are_nearest_rank():
    turns = [{"first_audio": float(v)} for v in range(1, 101)]
    assert percentiles(turns) == {"first_audio": {"p50": 50.0, "p95": 95.0, "n": 100}}
    assert percentiles([{"transcript": 7.0}]) == {"transcript": {"p50": 7.0, "p95": 7.0, "n": 1}}
    assert percentiles([]) == {}
