"""Work a companion takes on is bounded (issue 13): a message has a length limit on every caller,
the prompt never holds more than the model's context (counted with its own tokenizer: history cut
oldest first, lorebook and memories within their share, the user told when their message was cut),
a turn has a time budget and stops when its session closes, and a busy llama.cpp model queues
replies with a bound and a clear error, while a session on another model answers meanwhile. Real
llama.cpp on the tiny GGUFs of tests/tiny_gguf.py; the web half drives a real ``zishu serve``."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from tiny_gguf import write_tiny_gguf
from zishu.catalog.manifest import CharacterSpec, LoreEntry
from zishu.companion.brain import Character, PromptBudget, build_turn, cut_to_tokens
from zishu.companion.limits import MESSAGE_CHARS
from zishu.companion.pipeline import Conversation
from zishu.engines import ChatOptions, ModelRef
from zishu.engines.kinds import DEFAULT_CONTEXT_TOKENS, estimate_tokens, token_counter
from zishu.errors import EngineError, UsageError
from zishu_llama import LlamaChatEngine

HELLO = [{"role": "user", "content": "Hello there!"}]
GREEDY = ChatOptions(max_tokens=24, temperature=0.0, seed=1)
RAMBLER = {"persona": "You are {{char}}.", "llm": {"model": "acme/talker"}}  # the random talker rambles on


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A random tiny model with a 256-token context (byte tokens: one token per byte)."""
    path = write_tiny_gguf(tmp_path_factory.mktemp("small") / "small.gguf", context=256)
    handle = LlamaChatEngine().load(ModelRef(key=str(path), path=path, format="gguf"))
    yield handle
    handle.close()


def mei(**spec) -> Character:
    return Character("acme/mei", "Mei", CharacterSpec(persona="You are {{char}}.", **spec))


# -- counting tokens ---------------------------------------------------------------------------------


def test_the_llama_engine_counts_with_its_tokenizer_and_says_its_context(small):
    counter = token_counter(small)
    assert counter.exact and counter.context_length == 256
    assert counter.count("") == 0
    assert 100 <= counter.count("x" * 100) <= 104  # byte tokens (and the tokenizer's leading space)
    assert 300 <= counter.count("中" * 100) <= 304  # three UTF-8 bytes each


def test_an_engine_without_a_tokenizer_gets_an_estimate_and_a_default_context():
    class Plain:
        def chat(self, messages, options=None):
            yield "hi"

    counter = token_counter(Plain())
    assert not counter.exact and counter.context_length == DEFAULT_CONTEXT_TOKENS
    assert counter.count is estimate_tokens
    assert estimate_tokens("a" * 300) == 101 and estimate_tokens("中" * 100) == 101


# -- prompt assembly ---------------------------------------------------------------------------------


def chars(text: str) -> int:  # a tokenizer where every character is a token: easy to reason about
    return len(text)


def test_the_history_is_cut_oldest_first_to_fit_the_budget():
    history = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i:02d} " + "x" * 88}
               for i in range(20)]
    turn = build_turn(mei(), "hi", history, budget=PromptBudget(chars, 1200))
    kept = turn.messages[1:-1]
    assert kept == history[-len(kept):] and 0 < len(kept) < 20  # the newest, in order
    assert turn.history_dropped == 20 - len(kept) and turn.message_cut == 0
    assert sum(len(m["content"]) for m in turn.messages) <= 1200
    assert build_turn(mei(), "hi", history).messages[1:-1] == history  # no budget: all of it


def test_lorebook_and_memories_stay_within_their_share_of_the_budget():
    lore = [LoreEntry(keys=["cat"], content=f"lore {i} " + "l" * 200, priority=10 - i) for i in range(6)]
    memories = [f"memory {i} " + "m" * 100 for i in range(8)]
    spec = {"lorebook": lore}
    turn = build_turn(mei(**spec), "my cat", [], memories, budget=PromptBudget(chars, 2000))
    assert sum(len(e.content) for e in turn.lore) <= 2000 // 4 and turn.lore == lore[:len(turn.lore)]
    assert sum(len(m) + 2 for m in turn.memories) <= 2000 // 8 and turn.memories == memories[:len(turn.memories)]
    assert turn.lore and turn.memories
    unbounded = build_turn(mei(**spec), "my cat", [], memories)
    assert len(unbounded.lore) > len(turn.lore) and unbounded.memories == memories


def test_a_message_the_context_cannot_hold_is_cut_and_the_turn_says_by_how_much():
    text = "".join(f"{i:04d}" for i in range(1000))  # 4,000 characters
    turn = build_turn(mei(post_history_instructions="Stay in character."), text, [],
                      budget=PromptBudget(chars, 1000))
    said = turn.messages[-1]["content"]
    assert said.endswith("\n\nStay in character.")  # the character's last word survives the cut
    kept = said.removesuffix("\n\nStay in character.")
    assert text.startswith(kept) and turn.message_cut == len(text) - len(kept) > 0
    assert sum(len(m["content"]) for m in turn.messages) <= 1000


def test_cut_to_tokens_keeps_the_longest_beginning_that_fits():
    assert cut_to_tokens("abcdef", 4, chars) == "abcd"
    assert cut_to_tokens("abc", 10, chars) == "abc" and cut_to_tokens("abc", 0, chars) == ""


def test_a_long_message_and_history_reach_the_model_within_its_context(small):
    """Before the budget, llama.cpp refused: 'Requested tokens (...) exceed context window of 256'."""
    history = [{"role": "user", "content": "y" * 300}, {"role": "assistant", "content": "z" * 300}] * 5
    talk = Conversation(mei(), small, options=ChatOptions(max_tokens=16, temperature=0.0, seed=1))
    events = list(talk.reply("x" * MESSAGE_CHARS, history=history))
    kinds = [e["type"] for e in events]
    assert kinds[0] == "turn" and kinds[-1] == "done"
    note = next(e for e in events if e["type"] == "note")
    assert note["code"] == "MESSAGE_CUT" and "context of 256 tokens" in note["message"]
    assert events[0]["message_cut"] > 3000 and events[0]["history_dropped"] == 10


# -- limits and time -----------------------------------------------------------------------------------


def test_a_message_over_the_limit_is_refused_naming_it(small):
    talk = Conversation(mei(), small)
    with pytest.raises(UsageError, match="4,001 characters long; the limit is 4,000 characters"):
        next(talk.reply("x" * (MESSAGE_CHARS + 1)))


def test_a_turn_stops_at_its_time_budget_and_says_so(small):
    talk = Conversation(mei(), small, options=ChatOptions(max_tokens=16, temperature=0.0), turn_seconds=0)
    events = list(talk.reply("hello"))
    note = next(e for e in events if e["type"] == "note")
    assert note == {"type": "note", "code": "TURN_TIME",
                    "message": "the reply stopped at the turn's time budget of 0 s"}
    assert not any(e["type"] == "token" for e in events) and events[-1]["type"] == "done"


def test_a_reply_past_its_deadline_or_cancelled_ends_at_once(small):
    assert list(small.chat(HELLO, ChatOptions(max_tokens=50, deadline=time.monotonic() - 1))) == []
    assert list(small.chat(HELLO, ChatOptions(max_tokens=50, cancelled=lambda: True))) == []
    assert "".join(small.chat(HELLO, GREEDY))  # and the model answers afterwards


def wait_until(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def test_replies_for_a_busy_model_queue_with_a_bound_and_a_clear_error(small):
    held = small.chat(HELLO, GREEDY)
    next(held)  # this thread holds the model
    try:
        late: list[BaseException] = []

        def too_late() -> None:
            try:
                list(small.chat(HELLO, ChatOptions(deadline=time.monotonic() + 0.2)))
            except EngineError as e:
                late.append(e)

        waiter = threading.Thread(target=too_late)
        waiter.start()
        waiter.join(30)
        assert len(late) == 1 and "was busy with other replies" in str(late[0])
        assert "until this reply's time budget ran out; try again when it is free" in str(late[0])
        leave = threading.Event()
        results: list[str] = []
        waiters = [threading.Thread(target=lambda: results.append("".join(small.chat(
            HELLO, ChatOptions(deadline=time.monotonic() + 60, cancelled=leave.is_set))))) for _ in range(4)]
        for waiter in waiters:
            waiter.start()
        wait_until(lambda: small.llama._waiting == 4)
        late.clear()
        fifth = threading.Thread(target=too_late)  # a fifth waiter is refused at once
        fifth.start()
        fifth.join(30)
        assert "is busy: 4 replies are already waiting for it (at most 4)" in str(late[0])
        leave.set()  # their sessions closed: they leave the queue without an answer
        for waiter in waiters:
            waiter.join(30)
        assert results == [""] * 4 and small.llama._waiting == 0
    finally:
        held.close()
    assert "".join(small.chat(HELLO, GREEDY))


# -- sessions ------------------------------------------------------------------------------------------


def test_a_session_answers_while_another_waits_for_its_busy_model_and_closing_that_one_ends_its_turn(
        runtime, companion_home):
    """Session A (the talker model) waits behind a reply that holds its model; session B (Mei's
    scripted model) answers meanwhile; closing A ends A's turn without waiting for the model."""
    from conftest import install_resource
    from zishu.companion.sessions import CompanionSessions
    from zishu.engines import use

    install_resource(companion_home, "acme/rambler", RAMBLER, kind="character", name="Rambler")
    sessions = CompanionSessions(runtime)
    try:
        a, b = sessions.open("acme/rambler"), sessions.open("acme/mei")
        talker = use(runtime, "llm", "acme/talker").handle
        assert a.talk.llm is talker
        held = talker.chat(HELLO, GREEDY)
        next(held)  # the model is busy with another reply
        a_events, b_events = a.events(timeout=60), b.events(timeout=60)
        a.say("x" * MESSAGE_CHARS)  # a message at the limit
        assert next(e for e in a_events if e and e["type"] == "turn")
        wait_until(lambda: talker.llama._waiting == 1)  # A's turn is waiting for the model
        b.say("hello")
        done = next(e for e in b_events if e and e["type"] in ("done", "error"))
        assert done["type"] == "done" and done["text"] == "Hugs, cat."
        assert talker.llama._waiting == 1  # A is still waiting: B never waited for it
        sessions.close(a.id)
        wait_until(lambda: talker.llama._waiting == 0)  # A's turn ended with its session
        held.close()
    finally:
        sessions.close_all()


# -- the web and the terminal --------------------------------------------------------------------------


@pytest.fixture
def app(companion_home):
    from conftest import AppProcess, install_resource

    install_resource(companion_home, "acme/rambler", RAMBLER, kind="character", name="Rambler")
    env = {**os.environ, "ZISHU_HOME": str(companion_home)}
    env.pop("ZISHU_QUEUE", None)
    with AppProcess(env) as app:
        yield app


def test_say_refuses_a_message_over_the_limit_and_cuts_one_at_it_with_a_note(app):
    from test_companion_web import Events

    opened = app.api("POST", "/api/companion/sessions", json={"character": "acme/mei"}, timeout=180).json()
    sid, events = opened["id"], Events(app, opened["id"])
    refused = app.api("POST", f"/api/companion/sessions/{sid}/say", json={"text": "x" * (MESSAGE_CHARS + 1)})
    assert refused.status_code == 400
    assert refused.json()["error"] == {"code": "USAGE", "message": "a message is 4,001 characters long; the limit "
                                       "is 4,000 characters (shorten it, or send it in parts)"}
    other = app.api("POST", "/api/companion/sessions", json={"character": "acme/mei"}, timeout=180).json()
    other_events = Events(app, other["id"])
    assert app.api("POST", f"/api/companion/sessions/{sid}/say", json={"text": "x" * MESSAGE_CHARS}).ok
    assert app.api("POST", f"/api/companion/sessions/{other['id']}/say", json={"text": "hello"}).ok
    seen = events.until("done")
    note = next(e for e in seen if e["type"] == "note")
    assert note["code"] == "MESSAGE_CUT" and "context of 2,048 tokens" in note["message"]
    assert next(e for e in seen if e["type"] == "done")["text"] == "Hugs, cat."
    assert next(e for e in other_events.until("done") if e["type"] == "done")["text"] == "Hugs, cat."


def completion(app, **body):
    import requests

    return requests.post(f"{app.url}/v1/chat/completions", json=body, timeout=120, stream=body.get("stream", False),
                         headers={"Authorization": f"Bearer {app.secret}"})


def test_the_openai_endpoint_limits_each_message_and_the_total_and_notes_a_cut(app):
    refused = completion(app, model="acme/mei", messages=[
        {"role": "system", "content": "hi"}, {"role": "user", "content": "x" * (MESSAGE_CHARS + 1)}])
    assert refused.status_code == 400
    assert "messages[1] is 4,001 characters long; the limit is 4,000" in refused.json()["error"]["message"]
    many = [{"role": "user" if i % 2 == 0 else "assistant", "content": "x" * MESSAGE_CHARS} for i in range(17)]
    refused = completion(app, model="acme/mei", messages=many)
    assert refused.status_code == 400
    assert "68,000 characters long together; the limit is 64,000" in refused.json()["error"]["message"]
    answer = completion(app, model="acme/mei", messages=[*many[:15], {"role": "user", "content": "y" * MESSAGE_CHARS}])
    assert answer.json()["choices"][0]["message"]["content"] == "Hugs, cat."
    assert "context of 2,048 tokens" in answer.headers["X-Zishu-Note"]
    streamed = completion(app, model="acme/mei", stream=True,
                          messages=[{"role": "user", "content": "z" * MESSAGE_CHARS}])
    assert "context of 2,048 tokens" in streamed.headers["X-Zishu-Note"]
    lines = [line[6:] for line in streamed.iter_lines(decode_unicode=True) if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"


def test_the_openai_endpoint_answers_a_second_client_after_one_left_mid_stream(app):
    streamed = completion(app, model="acme/rambler", stream=True, max_tokens=2000,
                          messages=[{"role": "user", "content": "x" * MESSAGE_CHARS}])
    assert streamed.status_code == 200
    next(streamed.iter_lines())
    streamed.close()  # the client goes away: its reply is closed on the server
    answer = completion(app, model="acme/rambler", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"] is not None


def test_zishu_chat_refuses_a_message_over_the_limit(companion_home):
    env = {**os.environ, "ZISHU_HOME": str(companion_home)}
    done = subprocess.run([sys.executable, "-m", "zishu.cli", "chat", "acme/mei", "-m", "x" * (MESSAGE_CHARS + 1)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "the limit is 4,000 characters" in done.stderr
