"""The OpenAI-compatible API to spec, driven by the official ``openai`` client against a real ``zishu
serve`` with tiny models: Mei (a character whose scripted GGUF answers "[joy]Hugs, cat.", one byte
a token), a tiny sentence-transformers embedding model, a tiny Piper voice, a tiny SenseVoice and
FSMN VAD. Plus request bodies exactly as SillyTavern's OpenAI-compatible sources send them."""

from __future__ import annotations

import base64
import os
import sqlite3
import struct
import subprocess

import openai
import pytest
import requests

from conftest import AppProcess, install_resource
from tiny_funasr import speech_wav

REPLY = "[joy]Hugs, cat."  # the scripted model's raw reply, one byte a generated token
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def extra_models(tmp_path_factory):
    from tiny_sentence import write_tiny_sentence_model
    from tiny_voice import write_tiny_piper_voice

    root = tmp_path_factory.mktemp("openai-models")
    return {"sentences": write_tiny_sentence_model(root / "sentences"), "piper": write_tiny_piper_voice(root / "piper")}


@pytest.fixture
def app(companion_home, extra_models):
    install_resource(companion_home, "acme/sentences", {"format": "safetensors", "role": "embedding"},
                     files={p.name: p for p in extra_models["sentences"].iterdir()})
    install_resource(companion_home, "acme/piper", {"engine": "piper", "language": "zh-CN"}, kind="voice",
                     files={p.name: p for p in extra_models["piper"].iterdir()})
    env = {**os.environ, "ZISHU_HOME": str(companion_home)}
    env.pop("ZISHU_QUEUE", None)
    with AppProcess(env) as app:
        app.home = companion_home
        yield app


@pytest.fixture(scope="module")
def tokens(companion_models):
    """Tokens a text takes with the scripted model's own tokenizer, as usage counts them."""
    from llama_cpp import Llama

    vocab = Llama(model_path=str(companion_models["scripted"]), vocab_only=True, verbose=False)
    return lambda text: len(vocab.tokenize(text.encode(), add_bos=False, special=False))


@pytest.fixture
def client(app):
    return openai.OpenAI(base_url=f"{app.url}/v1", api_key=app.secret, timeout=180, max_retries=0)


def test_models_lists_characters_and_raw_models_by_what_they_serve(client):
    listed = {m.id: m for m in client.models.list()}
    assert set(listed) == {"acme/mei", "acme/scripted", "acme/talker", "acme/ear", "acme/vad", "acme/sentences",
                           "acme/piper"}
    assert all(m.object == "model" and isinstance(m.created, int) and m.created > 0 for m in listed.values())
    assert listed["acme/mei"].owned_by == "acme"
    assert listed["acme/mei"].zishu["kind"] == "character"
    assert "/v1/chat/completions" in listed["acme/mei"].zishu["endpoints"]
    assert listed["acme/sentences"].zishu["endpoints"] == ["/v1/embeddings"]
    assert listed["acme/ear"].zishu["endpoints"] == ["/v1/audio/transcriptions"]
    assert listed["acme/piper"].zishu == {"kind": "voice", "role": "tts", "endpoints": ["/v1/audio/speech"]}
    assert client.models.retrieve("acme/mei").id == "acme/mei"
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("gpt-4o")
    assert missing.value.code == "model_not_found" and missing.value.type == "invalid_request_error"
    assert "acme/mei" in missing.value.message and "zishu install" not in missing.value.message


def test_a_completion_has_usage_and_honours_max_completion_tokens_and_n(client, tokens):
    whole = client.chat.completions.create(model="acme/mei", messages=HELLO)
    assert whole.choices[0].message.content == "Hugs, cat." and whole.choices[0].finish_reason == "stop"
    assert whole.usage.completion_tokens == tokens(REPLY) and whole.usage.prompt_tokens > 0
    assert whole.usage.total_tokens == whole.usage.prompt_tokens + whole.usage.completion_tokens
    cut = client.chat.completions.create(model="acme/mei", messages=HELLO, max_completion_tokens=3)
    assert cut.choices[0].finish_reason == "length" and cut.usage.completion_tokens == tokens(REPLY[:3])
    assert cut.usage.prompt_tokens == whole.usage.prompt_tokens
    old = client.chat.completions.create(model="acme/mei", messages=HELLO, max_tokens=2)
    assert old.choices[0].finish_reason == "length" and old.usage.completion_tokens == tokens(REPLY[:2])
    two = client.chat.completions.create(model="acme/mei", messages=HELLO, n=2)
    assert [(c.index, c.message.content) for c in two.choices] == [(0, "Hugs, cat."), (1, "Hugs, cat.")]
    assert two.usage.completion_tokens == 2 * tokens(REPLY)


def test_a_stream_ends_with_usage_when_asked(client, tokens):
    chunks = list(client.chat.completions.create(model="acme/mei", messages=HELLO, stream=True,
                                                 stream_options={"include_usage": True}))
    *replies, last = chunks
    assert last.choices == [] and last.usage.completion_tokens == tokens(REPLY)
    assert all(c.usage is None for c in replies)
    assert "".join(c.choices[0].delta.content or "" for c in replies) == "Hugs, cat."
    assert replies[-1].choices[0].finish_reason == "stop"
    plain = list(client.chat.completions.create(model="acme/mei", messages=HELLO, stream=True))
    assert all(c.choices and c.usage is None for c in plain)
    two = list(client.chat.completions.create(model="acme/mei", messages=HELLO, stream=True, n=2))
    for index in (0, 1):
        mine = [c.choices[0] for c in two if c.choices[0].index == index]
        assert "".join(c.delta.content or "" for c in mine) == "Hugs, cat." and mine[-1].finish_reason == "stop"


def test_errors_come_in_openais_shape(client, app):
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert unknown.value.code == "model_not_found" and unknown.value.param == "model"
    assert "acme/mei" in unknown.value.message and "zishu install" not in unknown.value.message
    with pytest.raises(openai.NotFoundError) as not_a_character:
        client.chat.completions.create(model="acme/scripted", messages=HELLO)
    assert "llm model" in not_a_character.value.message and "acme/mei" in not_a_character.value.message
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="acme/mei", messages=HELLO, max_completion_tokens=0)
    assert bad.value.param == "max_completion_tokens" and bad.value.type == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as too_many:
        client.chat.completions.create(model="acme/mei", messages=HELLO, n=9)
    assert too_many.value.param == "n"
    with pytest.raises(openai.BadRequestError) as header:
        client.chat.completions.create(model="acme/mei", messages=HELLO, extra_headers={"X-Zishu-Memory": "maybe"})
    assert "X-Zishu-Memory" in header.value.message
    raw = requests.post(f"{app.url}/v1/embeddings", json={"model": "acme/sentences"}, timeout=30,
                        headers={"Authorization": f"Bearer {app.secret}"})
    assert raw.status_code == 400
    assert set(raw.json()["error"]) == {"message", "type", "param", "code"} and raw.json()["error"]["param"] == "input"


def turns(home) -> int:
    with sqlite3.connect(home / "zishu.db") as db:
        return db.execute("SELECT count(*) FROM companion_turn").fetchone()[0]


def test_a_request_can_opt_out_of_memory_writes(client, app):
    said = [{"role": "user", "content": "My name is Lin."}]
    client.chat.completions.create(model="acme/mei", messages=said, extra_headers={"X-Zishu-Memory": "off"})
    client.chat.completions.create(model="acme/mei", messages=said, user="zishu-memory-off")
    list(client.chat.completions.create(model="acme/mei", messages=said, stream=True,
                                        extra_headers={"X-Zishu-Memory": "off"}))
    assert turns(app.home) == 0
    client.chat.completions.create(model="acme/mei", messages=said)  # the default: remembered as before
    assert turns(app.home) == 2


def test_embeddings_as_floats_and_base64(client, app):
    one = client.embeddings.create(model="acme/sentences", input="hello")  # the client asks for base64
    assert len(one.data) == 1 and len(one.data[0].embedding) == 32 and one.usage.prompt_tokens > 0
    floats = client.embeddings.create(model="acme/sentences", input=["hello", "cat"], encoding_format="float")
    assert [d.index for d in floats.data] == [0, 1]
    assert floats.data[0].embedding == pytest.approx(one.data[0].embedding, abs=1e-6)
    raw = requests.post(f"{app.url}/v1/embeddings", headers={"Authorization": f"Bearer {app.secret}"}, timeout=60,
                        json={"model": "acme/sentences", "input": "hello", "encoding_format": "base64"}).json()
    packed = base64.b64decode(raw["data"][0]["embedding"])
    assert list(struct.unpack(f"<{len(packed) // 4}f", packed)) == pytest.approx(one.data[0].embedding, abs=1e-6)
    with pytest.raises(openai.NotFoundError) as wrong:
        client.embeddings.create(model="acme/mei", input="hello")
    assert "acme/sentences" in wrong.value.message


def decoded(data: bytes) -> float:
    """Seconds of audio ffmpeg decodes from ``data``."""
    done = subprocess.run(["ffmpeg", "-v", "error", "-i", "pipe:0", "-ac", "1", "-ar", "16000", "-f", "s16le",
                           "pipe:1"], input=data, capture_output=True, check=True)
    return len(done.stdout) / 2 / 16000


def test_speech_in_each_format_with_a_voice_or_a_character(client):
    wav = client.audio.speech.create(model="tts-1", voice="acme/piper", input="你好。", response_format="wav").read()
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE" and len(wav) > 1000
    for fmt in ("mp3", "opus", "flac"):
        data = client.audio.speech.create(model="tts-1", voice="acme/piper", input="你好。", response_format=fmt).read()
        assert decoded(data) > 0, fmt
    pcm = client.audio.speech.create(model="acme/piper", voice="acme/piper", input="你好。", response_format="pcm")
    assert len(pcm.read()) % 2 == 0 and pcm.response.headers["Content-Type"] == "audio/pcm"
    mei = client.audio.speech.create(model="tts-1", voice="acme/mei", input="Hello there.", response_format="mp3")
    assert decoded(mei.read()) > 0  # Mei names no voice: she speaks with the default, espeak-ng
    with client.audio.speech.with_streaming_response.create(model="tts-1", voice="acme/piper", input="你好。" * 20,
                                                            response_format="wav") as streamed:
        assert streamed.headers.get("Transfer-Encoding") == "chunked"
        assert sum(len(piece) for piece in streamed.iter_bytes()) > 1000
    with pytest.raises(openai.NotFoundError) as alloy:
        client.audio.speech.create(model="tts-1", voice="alloy", input="hi")
    assert alloy.value.param == "voice" and "acme/piper" in alloy.value.message and "acme/mei" in alloy.value.message
    with pytest.raises(openai.NotFoundError) as model:
        client.audio.speech.create(model="gpt-4o", voice="acme/piper", input="hi")
    assert model.value.param == "model" and "tts-1" in model.value.message


def test_transcriptions_in_each_format(client, tmp_path):
    speech_wav("good morning", tmp_path / "hi.wav", voice="en")
    audio = (tmp_path / "hi.wav").read_bytes()
    plain = client.audio.transcriptions.create(model="whisper-1", file=("hi.wav", audio))
    assert isinstance(plain.text, str)
    verbose = client.audio.transcriptions.create(model="acme/ear", file=("hi.wav", audio),
                                                 response_format="verbose_json", language="en")
    assert verbose.segments and verbose.duration > 0
    assert all(0 <= s.start < s.end <= verbose.duration + 0.1 for s in verbose.segments)
    text = client.audio.transcriptions.create(model="whisper-1", file=("hi.wav", audio), response_format="text")
    assert isinstance(text, str)
    srt = client.audio.transcriptions.create(model="whisper-1", file=("hi.wav", audio), response_format="srt")
    assert srt.startswith("1\n00:00:") and " --> " in srt
    vtt = client.audio.transcriptions.create(model="whisper-1", file=("hi.wav", audio), response_format="vtt")
    assert vtt.startswith("WEBVTT\n\n00:00:")
    with pytest.raises(openai.BadRequestError) as noise:
        client.audio.transcriptions.create(model="whisper-1", file=("x.wav", b"not audio at all"))
    assert noise.value.param == "file"
    with pytest.raises(openai.NotFoundError):
        client.audio.transcriptions.create(model="acme/sentences", file=("hi.wav", audio))


# -- SillyTavern ------------------------------------------------------------------------------------
# The bodies below are what SillyTavern sends to a "Custom (OpenAI-compatible)" chat source: its server
# builds them in src/endpoints/backends/chat-completions.js (sendOpenAIRequest in public/scripts/openai.js
# fills generate_data; keys left undefined are dropped by JSON.stringify), SillyTavern/SillyTavern at
# ba6f7b7a. Its OpenAI-compatible TTS provider (public/scripts/extensions/tts/openai-compatible.js)
# posts to /api/openai/custom/generate-voice, whose handler in src/endpoints/openai.js forwards
# {input, response_format: "mp3", voice, speed, model: "tts-1"} to the provider endpoint.

SILLYTAVERN_MESSAGES = [
    {"role": "system", "content": "Write Mei's next reply in a fictional chat between Mei and User."},
    {"role": "system", "content": "[Mei's personality: cheerful]"},
    {"role": "system", "name": "example_user", "content": "Hi!"},
    {"role": "system", "name": "example_assistant", "content": "Hello!"},
    {"role": "system", "content": "[Start a new Chat]"},
    {"role": "assistant", "content": "Hello! I'm Mei."},
    {"role": "user", "content": "hello"},
]


def sillytavern_chat(stream: bool) -> dict:
    return {"messages": SILLYTAVERN_MESSAGES, "model": "acme/mei", "temperature": 1, "max_tokens": 300,
            "stream": stream, "presence_penalty": 0, "frequency_penalty": 0, "top_p": 1, "logit_bias": {}}


def test_sillytaverns_chat_requests_are_answered(app):
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {app.secret}"}
    answer = requests.post(f"{app.url}/v1/chat/completions", json=sillytavern_chat(False), headers=headers, timeout=120)
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"] == "Hugs, cat."
    streamed = requests.post(f"{app.url}/v1/chat/completions", json=sillytavern_chat(True), headers=headers,
                             timeout=120, stream=True)
    lines = [line for line in streamed.iter_lines(decode_unicode=True) if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]" and '"finish_reason": "stop"' in lines[-2]
    listed = requests.get(f"{app.url}/v1/models", headers={"Authorization": f"Bearer {app.secret}"}, timeout=30)
    assert "acme/mei" in [m["id"] for m in listed.json()["data"]]  # SillyTavern's /status lists models


def test_sillytaverns_tts_request_is_answered_with_mp3(app):
    body = {"input": "你好。", "response_format": "mp3", "voice": "acme/piper", "speed": 1, "model": "tts-1"}
    spoken = requests.post(f"{app.url}/v1/audio/speech", json=body, timeout=120,
                           headers={"Content-Type": "application/json", "Authorization": f"Bearer {app.secret}"})
    assert spoken.status_code == 200 and spoken.headers["Content-Type"] == "audio/mpeg"
    assert decoded(spoken.content) > 0
