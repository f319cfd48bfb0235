"""The companion over the local server, as the window and other local tools use it: a real
``zishu serve`` with tiny models; events over server-sent events, microphone audio over POST, the
memory panel's routes, the OpenAI-compatible endpoint, and ``zishu chat`` in the terminal."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading

import pytest
import requests

from conftest import AppProcess
from tiny_funasr import speech_wav


@pytest.fixture
def app(companion_home):
    env = {**os.environ, "ZISHU_HOME": str(companion_home)}
    env.pop("ZISHU_QUEUE", None)
    with AppProcess(env) as app:
        yield app


class Events:
    """A session's event stream, read in a thread as the window's EventSource reads it."""

    def __init__(self, app, sid: int) -> None:
        self.response = app.api("GET", f"/api/companion/sessions/{sid}/events", stream=True)
        assert self.response.status_code == 200
        assert self.response.headers["Content-Type"].startswith("text/event-stream")
        self.seen: list[dict] = []
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line.startswith("data: "):
                    with self.changed:
                        self.seen.append(json.loads(line[6:]))
                        self.changed.notify_all()
        except requests.RequestException:
            pass

    def until(self, kind: str, count: int = 1, timeout: float = 120) -> list[dict]:
        with self.changed:
            ok = self.changed.wait_for(lambda: sum(e["type"] == kind for e in self.seen) >= count, timeout)
        assert ok, f"no {kind!r} event; saw {[e['type'] for e in self.seen]}"
        return list(self.seen)


def open_session(app) -> tuple[int, Events]:
    # opening loads the session's models (ASR, VAD, LLM, memory): slow on a busy 2-core machine
    opened = app.api("POST", "/api/companion/sessions", json={"character": "acme/mei"}, timeout=180)
    assert opened.status_code == 200, opened.text
    body = opened.json()
    assert body["character"] == {"id": "acme/mei", "name": "Mei", "greeting": "Hello! I'm Mei.",
                                 "greeting_emotion": None}
    assert body["hearing"] and body["speaking"] and body["memory"]
    assert body["models"] == {"llm": "acme/scripted", "asr": "acme/ear", "vad": "acme/vad", "embedding": None}
    return body["id"], Events(app, body["id"])


def test_a_typed_message_streams_its_events_with_audio_as_base64(app):
    sid, events = open_session(app)
    assert app.api("POST", f"/api/companion/sessions/{sid}/say", json={"text": "hello"}).status_code == 200
    seen = events.until("latency")
    kinds = [e["type"] for e in seen]
    assert kinds[0] == "turn"
    assert kinds.index("emotion") < kinds.index("sentence") < kinds.index("audio") < kinds.index("done")
    audio = [e for e in seen if e["type"] == "audio"]
    assert all(len(base64.b64decode(e["pcm"])) % 2 == 0 and e["sample_rate"] > 0 for e in audio)
    assert next(e for e in seen if e["type"] == "done")["text"] == "Hugs, cat."
    assert app.api("POST", f"/api/companion/sessions/{sid}/playback", json={"event": "playing"}).status_code == 200
    assert "playback" in events.until("latency", 2)[-1]["latency"]
    assert app.api("DELETE", f"/api/companion/sessions/{sid}").json() == {"closed": True}
    assert app.api("POST", f"/api/companion/sessions/{sid}/say", json={"text": "hi"}).status_code == 404


def test_microphone_audio_posted_in_pieces_is_heard_and_answered(app, tmp_path):
    sid, events = open_session(app)
    pcm = bytes(8000) + speech_wav("good morning", tmp_path / "hi.wav", voice="en") + bytes(32000)
    for at in range(0, len(pcm), 3200):  # 100 ms a request, as the window sends it
        sent = app.api("POST", f"/api/companion/sessions/{sid}/audio", data=pcm[at:at + 3200],
                       headers={"Content-Type": "application/octet-stream"})
        assert sent.status_code == 200, sent.text
    seen = events.until("latency")
    kinds = [e["type"] for e in seen]
    assert kinds[:3] == ["speech_start", "transcript", "turn"] and "audio" in kinds
    assert list(seen[-1]["latency"])[:3] == ["endpoint", "transcript", "first_token"]


def test_concurrent_audio_posts_keep_the_thread_count_bounded(app, tmp_path):
    """The voice detector runs on the session's own listening thread, never on the HTTP workers:
    audio from many requests at once adds no thread per worker (torch's pools are per thread)."""
    import psutil

    sid, events = open_session(app)
    server = psutil.Process(app.proc.pid)
    before = server.num_threads()
    pcm = bytes(8000) + speech_wav("good morning", tmp_path / "hi.wav", voice="en") + bytes(32000)
    pieces = [pcm[at:at + 3200] for at in range(0, len(pcm), 3200)]
    failures: list[object] = []

    def post(piece: bytes) -> None:
        sent = app.api("POST", f"/api/companion/sessions/{sid}/audio", data=piece,
                       headers={"Content-Type": "application/octet-stream"})
        if sent.status_code != 200:
            failures.append(sent.text)

    for _ in range(3):  # rounds of 32 requests at once: every worker thread gets some
        threads = [threading.Thread(target=post, args=(piece,)) for piece in pieces[:32]]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for piece in pieces:  # then in order, as the window sends it, so the session hears a turn
        post(piece)
    events.until("transcript")
    assert not failures
    # the listening thread and the turn thread may each start one pool of torch threads
    assert server.num_threads() - before <= 2 * (os.cpu_count() or 1) + 4


BAD_REQUESTS = [  # route, body, content type, what the error says
    ("audio", b"\x00\x01", "text/plain", "application/octet-stream"),
    ("say", b'{"text": "  "}', "application/json", "needs some text"),
    ("say", b'{"words": "hi"}', "application/json", 'expected {"text"'),
    ("say", b"hello", "application/json", "not JSON"),
    ("playback", b'{"event": "paused"}', "application/json", "playing, heard or barge_in"),
    ("playback", b'{"event": "heard", "sentences": -1}', "application/json", "0 or more"),
]


def test_bad_requests_to_a_session_are_refused_and_it_goes_on(app):
    sid, events = open_session(app)
    for route, body, kind, message in BAD_REQUESTS:
        refused = app.api("POST", f"/api/companion/sessions/{sid}/{route}", data=body, headers={"Content-Type": kind})
        assert refused.status_code == 400 and message in refused.json()["error"]["message"], (route, body)
    assert app.api("POST", f"/api/companion/sessions/{sid}/say", json={"text": "hello"}).status_code == 200
    assert next(e for e in events.until("done") if e["type"] == "done")["text"] == "Hugs, cat."


def test_opening_a_session_names_what_is_wrong(app):
    assert app.api("POST", "/api/companion/sessions", json={}).status_code == 400
    missing = app.api("POST", "/api/companion/sessions", json={"character": "acme/nobody"})
    assert missing.status_code == 404 and "acme/nobody" in missing.json()["error"]["message"]
    wrong = app.api("POST", "/api/companion/sessions", json={"character": "acme/ear"})
    assert wrong.status_code == 400 and "not a character" in wrong.json()["error"]["message"]
    assert app.api("GET", "/api/companion/sessions/999/events").status_code == 404


def test_the_memory_panel_routes_edit_pin_forget_export_and_delete_with_undo(app):
    sid, events = open_session(app)
    app.api("POST", f"/api/companion/sessions/{sid}/say", json={"text": "My name is Lin."})
    events.until("done")
    path = f"/api/companion/sessions/{sid}/memories"
    [memory] = app.api("GET", path).json()["memories"]
    assert memory["text"] == "My name is Lin"
    changed = app.api("PUT", f"{path}/{memory['id']}",
                      json={"text": "My name is Lin Wei", "pinned": True}).json()["memory"]
    assert (changed["text"], changed["pinned"]) == ("My name is Lin Wei", True)
    assert app.api("PUT", f"{path}/{memory['id']}", json={"pinned": "yes"}).status_code == 400
    assert app.api("PUT", f"{path}/{memory['id']}", json={"colour": 1}).status_code == 400
    assert app.api("PUT", f"{path}/9999", json={"pinned": False}).status_code == 404
    app.api("POST", f"{path}/{memory['id']}/forget")
    assert app.api("GET", path).json()["memories"] == []
    app.api("POST", f"{path}/{memory['id']}/restore")
    assert len(app.api("GET", path).json()["memories"]) == 1
    exported = app.api("GET", f"{path}/export")
    assert "attachment" in exported.headers["Content-Disposition"]
    assert exported.json()["memories"][0]["text"] == "My name is Lin Wei"
    assert app.api("POST", f"{path}/delete-all").json() == {"deleted": {"turns": 2, "memories": 1}}
    assert app.api("GET", path).json()["memories"] == []
    assert app.api("POST", f"{path}/undo-delete").json() == {"restored": {"turns": 2, "memories": 1}}
    assert [m["text"] for m in app.api("GET", path).json()["memories"]] == ["My name is Lin Wei"]
    assert app.api("POST", f"{path}/undo-delete").status_code == 400  # nothing left to undo


def openai(app, **body):
    return requests.post(f"{app.url}/v1/chat/completions", json=body, timeout=120, stream=body.get("stream", False),
                         headers={"Authorization": f"Bearer {app.secret}"})


def test_the_openai_compatible_endpoint_answers_as_the_character(app):
    models = requests.get(f"{app.url}/v1/models", headers={"Authorization": f"Bearer {app.secret}"}, timeout=30).json()
    # characters first, then the raw models (issue 19): the one character is Mei
    assert [m["id"] for m in models["data"] if m["zishu"]["kind"] == "character"] == ["acme/mei"]
    answer = openai(app, model="acme/mei", messages=[{"role": "user", "content": "hello"}]).json()
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"] == {"role": "assistant", "content": "Hugs, cat."}
    streamed = openai(app, model="acme/mei", stream=True, messages=[
        {"role": "system", "content": "ignored: the persona is the system prompt"},
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hugs, cat."},
        {"role": "user", "content": [{"type": "text", "text": "again"}]}])
    lines = [line[6:] for line in streamed.iter_lines(decode_unicode=True) if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "Hugs, cat."
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


BAD_COMPLETIONS = [  # body, status, what the error says
    ({"messages": [{"role": "user", "content": "hi"}]}, 400, '"model" must name'),
    ({"model": "acme/mei", "messages": []}, 400, "non-empty list"),
    ({"model": "acme/mei", "messages": [{"role": "robot", "content": "hi"}]}, 400, "messages[0]"),
    ({"model": "acme/mei", "messages": [{"role": "user", "content": 5}]}, 400, "messages[0].content"),
    ({"model": "acme/mei", "messages": [{"role": "assistant", "content": "hi"}]}, 400, "the last message"),
    ({"model": "acme/mei", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}, 400, "max_tokens"),
    ({"model": "acme/mei", "messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}, 400, "temperature"),
    ({"model": "acme/mei", "messages": [{"role": "user", "content": "hi"}], "stop": [1]}, 400, "stop"),
    ({"model": "acme/nobody", "messages": [{"role": "user", "content": "hi"}]}, 404, "acme/nobody"),
]


def test_bad_chat_completions_are_refused_naming_the_field(app):
    for body, status, message in BAD_COMPLETIONS:
        refused = openai(app, **body)
        assert refused.status_code == status and message in refused.json()["error"]["message"], body


def test_the_openai_endpoint_needs_the_secret(app):
    refused = requests.post(f"{app.url}/v1/chat/completions", json={"model": "acme/mei"}, timeout=30)
    assert refused.status_code == 403


def chat(home, *args):
    env = {**os.environ, "ZISHU_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "zishu.cli", "chat", *args], env=env, capture_output=True,
                          text=True, timeout=300)


def test_zishu_chat_answers_in_the_terminal_and_remembers(companion_home):
    done = chat(companion_home, "acme/mei", "-m", "My name is Lin.", "-m", "Who am I?")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["Mei: (happy) Hugs, cat.", "Mei: (happy) Hugs, cat."]
    assert "first token" in done.stderr
    listed = subprocess.run([sys.executable, "-m", "zishu.cli", "chat", "acme/mei"],
                            input="/memories\n/forget 7\n/quit\n",
                            env={**os.environ, "ZISHU_HOME": str(companion_home)},
                            capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0, listed.stderr
    assert "1. My name is Lin" in listed.stdout and "Hello! I'm Mei." in listed.stdout
    assert "/forget takes a memory number from /memories (1–1), not '7'" in listed.stderr


def test_zishu_chat_refuses_what_is_not_an_installed_character(companion_home):
    missing = chat(companion_home, "acme/nobody", "-m", "hi")
    assert missing.returncode == 3 and "acme/nobody" in missing.stderr
    wrong = chat(companion_home, "acme/ear", "-m", "hi")
    assert wrong.returncode == 2 and "acme/ear is a model, not a character" in wrong.stderr


def test_the_companion_models_setting_is_validated_and_kept(app):
    changed = app.api("PUT", "/api/settings", json={"companion_models": {"embedding": "acme/talker", "asr": " "}})
    assert changed.status_code == 200 and changed.json()["companion_models"] == {"embedding": "acme/talker"}
    for bad in ({"tts": "acme/x"}, ["acme/x"], {"llm": 3}):
        refused = app.api("PUT", "/api/settings", json={"companion_models": bad})
        assert refused.status_code == 400 and "companion_models must map roles" in refused.json()["error"]["message"]
    assert app.api("GET", "/api/settings").json()["companion_models"] == {"embedding": "acme/talker"}


def test_zishu_chat_runs_where_device_says_and_refuses_an_unknown_device(companion_home):
    on_cpu = chat(companion_home, "acme/mei", "--device", "cpu", "--no-memory", "-m", "Hello?")
    assert on_cpu.returncode == 0, on_cpu.stderr
    assert on_cpu.stdout.splitlines() == ["Mei: (happy) Hugs, cat."]
    wrong = chat(companion_home, "acme/mei", "--device", "tpu", "-m", "Hello?")
    assert wrong.returncode == 2 and "tpu" in wrong.stderr
