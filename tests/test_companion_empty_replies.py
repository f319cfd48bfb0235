"""A reply that is empty once its emotion tag is taken out, or cut by ``max_tokens`` before a word,
never breaks a turn: it is stored as what was said (nothing), the window, ``/v1`` (with the official
openai client, streamed and not) and ``zishu chat`` all answer, and ``finish_reason`` is "length".
Mei's scripted tiny GGUF answers "[joy]Hugs, cat." one byte a token, so 1 to 5 tokens give "[",
"[j", … "[joy]": a piece of a tag or the whole tag, and no words."""

from __future__ import annotations

import os
import subprocess
import sys

import openai as openai_client
import pytest

from conftest import AppProcess
from test_companion_web import Events

CUT = range(1, 6)


@pytest.fixture
def app(companion_home):
    env = {**os.environ, "ZISHU_HOME": str(companion_home)}
    env.pop("ZISHU_QUEUE", None)
    with AppProcess(env) as app:
        yield app


def test_the_windows_route_keeps_a_reply_with_no_words(app):
    for max_tokens in CUT:
        opened = app.api("POST", "/api/companion/sessions", json={"character": "acme/mei", "max_tokens": max_tokens},
                         timeout=180)
        assert opened.status_code == 200, opened.text
        sid = opened.json()["id"]
        events = Events(app, sid)
        assert app.api("POST", f"/api/companion/sessions/{sid}/say", json={"text": "hello"}).status_code == 200
        seen = events.until("done")
        assert not [e for e in seen if e["type"] == "error"], seen
        done = next(e for e in seen if e["type"] == "done")
        assert done["text"] == "" and done["finish_reason"] == "length", (max_tokens, done)
        assert app.api("DELETE", f"/api/companion/sessions/{sid}").json() == {"closed": True}
    refused = app.api("POST", "/api/companion/sessions", json={"character": "acme/mei", "max_tokens": 0})
    assert refused.status_code == 400 and "max_tokens" in refused.json()["error"]["message"]


def test_v1_answers_an_empty_reply_with_finish_reason_length(app):
    client = openai_client.OpenAI(base_url=f"{app.url}/v1", api_key=app.secret, timeout=120, max_retries=0)
    hello = [{"role": "user", "content": "hello"}]
    for max_tokens in CUT:
        answer = client.chat.completions.create(model="acme/mei", messages=hello, max_tokens=max_tokens)
        assert answer.choices[0].message.content == "", max_tokens
        assert answer.choices[0].finish_reason == "length"
        chunks = list(client.chat.completions.create(model="acme/mei", messages=hello, max_tokens=max_tokens,
                                                     stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == ""
        assert chunks[-1].choices[0].finish_reason == "length", max_tokens
    whole = client.chat.completions.create(model="acme/mei", messages=hello)
    assert whole.choices[0].message.content == "Hugs, cat." and whole.choices[0].finish_reason == "stop"


def test_zishu_chat_says_no_words_and_goes_on(companion_home):
    env = {**os.environ, "ZISHU_HOME": str(companion_home)}
    for max_tokens in CUT:
        done = subprocess.run([sys.executable, "-m", "zishu.cli", "chat", "acme/mei", "--max-tokens", str(max_tokens),
                               "-m", "hello", "-m", "again"], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert len(lines) == 2 and all(line.startswith("Mei: ") and line.endswith("(no words)") for line in lines), \
            (max_tokens, done.stdout)
        assert "[" not in done.stdout  # no piece of the tag the model was cut in
