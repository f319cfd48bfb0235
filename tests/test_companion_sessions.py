"""The companion session registry (zishu.companion.sessions): a calibration saved for a character
changes the expression events of every caller: the text requests of /v1/chat/completions, the
companion `zishu chat` opens, and the window's sessions; sessions are found, closed and evicted.
Tiny real models (tests/tiny_companion.py): Mei's scripted LLM always answers "[joy]Hugs, cat.",
and her manifest maps joy to the expression "smile" with the motion "wave"."""

from __future__ import annotations

import pytest

from zishu.companion.expressions import save_emotion_map
from zishu.companion.sessions import CompanionSessions, companion_character, open_text_companion
from zishu.engines.kinds import ChatOptions
from zishu.errors import NotFound

OPTIONS = ChatOptions(max_tokens=40, temperature=0.0, seed=1)
GRIN = {"joy": {"expression": "grin", "motion": None}}  # the user's calibration of Mei's joy


@pytest.fixture
def sessions(runtime, companion_home):
    registry = CompanionSessions(runtime)
    yield registry
    registry.close_all()


def emotion(events) -> dict:
    return next(e for e in events if e["type"] == "emotion")


def calibrate(mapping: dict) -> None:
    save_emotion_map("acme/mei", mapping, ["smile", "grin"], ["wave"])


def test_a_calibration_changes_the_expression_of_chat_completions_requests(sessions):
    before = emotion(sessions.text_chat("acme/mei", OPTIONS).reply("hello"))
    assert (before["tag"], before["expression"], before["motion"]) == ("joy", "smile", "wave")
    calibrate(GRIN)
    # the LLM stays loaded between requests; the character and its calibration are read for each one
    after = emotion(sessions.text_chat("acme/mei", OPTIONS).reply("hello"))
    assert (after["tag"], after["expression"], after["motion"]) == ("joy", "grin", None)
    calibrate({})
    assert emotion(sessions.text_chat("acme/mei", OPTIONS).reply("hello"))["expression"] == "smile"


def test_a_calibration_changes_the_expression_in_zishu_chat(runtime, companion_home):
    calibrate(GRIN)
    mei = companion_character(runtime.registry, "acme/mei")  # what `zishu chat acme/mei` opens
    assert mei.spec.emotions["joy"].expression == "grin"
    talk = open_text_companion(runtime, mei, memory=False).conversation
    talk.options = OPTIONS
    shown = emotion(talk.reply("hello"))
    assert (shown["name"], shown["expression"], shown["motion"]) == ("happy", "grin", None)


def test_a_calibration_changes_the_expression_in_the_window(sessions):
    calibrate(GRIN)
    session = sessions.open("acme/mei")
    session.talk.options = OPTIONS
    session.say("hello")
    seen = []
    for event in session.events(timeout=120):
        assert event is not None, f"no reply; saw {[e['type'] for e in seen]}"
        seen.append(event)
        if event["type"] == "done":
            break
    assert (emotion(seen)["expression"], emotion(seen)["motion"]) == ("grin", None)


def test_sessions_are_found_closed_and_the_oldest_evicted(runtime, companion_home):
    sessions = CompanionSessions(runtime, limit=1)
    try:
        first = sessions.open("acme/mei")
        assert sessions.find(first.id) is first
        second = sessions.open("acme/mei")  # over the limit: the first closes
        with pytest.raises(NotFound, match=f"no companion session {first.id}"):
            sessions.find(first.id)
        assert list(first.events(timeout=1)) == []  # its event stream ended
        assert sessions.close(second.id) is True and sessions.close(second.id) is False
        with pytest.raises(NotFound):
            sessions.find(second.id)
    finally:
        sessions.close_all()
