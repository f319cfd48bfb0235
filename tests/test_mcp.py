"""Zishu's MCP server driven by the official SDK's own client, over stdio (spawning ``zishu mcp``)
and over streamable HTTP (``/mcp`` on a really started local API listener, behind its key), with
tiny models: the companion's (tests/tiny_companion.py), a tiny random Stable Diffusion pipeline
(tests/tiny_diffusers.py), a tiny Piper voice and espeak-ng, a tiny SenseVoice."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import sys
import time

import anyio
import pytest
import requests

from conftest import install_resource

TOOLS = {"search_catalog", "list_characters", "chat_with_character", "job_status", "generate_image", "speak",
         "transcribe", "create_storyboard", "export_video"}
DRAW = {"prompt": "a cat", "width": 64, "height": 64, "steps": 3, "guidance": 5.0, "seed": 7}
PNG = b"\x89PNG\r\n\x1a\n"
HELLO = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}


@pytest.fixture(scope="module")
def media_models(tmp_path_factory):
    from tiny_diffusers import write_tiny_sd
    from tiny_funasr import speech_wav
    from tiny_voice import write_tiny_piper_voice

    root = tmp_path_factory.mktemp("mcp-models")
    speech_wav("good morning", root / "hi.wav", voice="en")
    return {"sd": write_tiny_sd(root / "sd"), "piper": write_tiny_piper_voice(root / "piper"), "wav": root / "hi.wav"}


@pytest.fixture
def mcp_home(companion_home, media_models):
    install_resource(companion_home, "alice/tiny-sd", {"format": "diffusers", "role": "image",
                                                       "base_model": "runwayml/stable-diffusion-v1-5"},
                     files={p.name: p for p in media_models["sd"].iterdir()})
    install_resource(companion_home, "acme/piper", {"engine": "piper", "language": "zh-CN"}, kind="voice",
                     files={p.name: p for p in media_models["piper"].iterdir()})
    return companion_home


def _env(home) -> dict:
    env = {**os.environ, "ZISHU_HOME": str(home), "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    env.pop("ZISHU_QUEUE", None)
    return env


def _text(result) -> str:
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")


async def _exercise(client, wav, *, local_files: bool) -> None:
    from mcp_types import AudioContent, ImageContent, TextContent

    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) >= TOOLS
    # every tool's input schema is its REST request model's JSON Schema
    from zishu.companion.openai_media import SpeechRequest
    from zishu.studio.requests import ImageRequest

    assert tools["generate_image"].input_schema["properties"] == ImageRequest.model_json_schema()["properties"]
    assert set(SpeechRequest.model_fields) <= set(tools["speak"].input_schema["properties"])
    assert "memory" in tools["chat_with_character"].input_schema["properties"]
    from zishu.catalog.search import CatalogQuery
    from zishu.jobs.records import JobRef

    assert tools["search_catalog"].input_schema["properties"] == CatalogQuery.model_json_schema()["properties"]
    assert tools["job_status"].input_schema["properties"] == JobRef.model_json_schema()["properties"]
    unknown_kind = await client.call_tool("search_catalog", {"query": "mei", "kind": "spaceship"})
    assert unknown_kind.is_error and "kind: unknown kind 'spaceship'" in _text(unknown_kind)

    listed = await client.call_tool("list_characters", {})
    assert [c["id"] for c in json.loads(listed.content[0].text)] == ["acme/mei"]
    reply = await client.call_tool("chat_with_character", {"character": "acme/mei", "message": "Hi!",
                                                            "memory": False, "max_tokens": 16})
    assert not reply.is_error, reply
    assert isinstance(reply.content[0], TextContent) and reply.content[0].text.strip()
    bad = await client.call_tool("chat_with_character", {"character": "acme/mei", "message": "x" * 4001})
    assert bad.is_error and "message" in _text(bad)
    missing = await client.call_tool("job_status", {"job_id": 999})
    assert missing.is_error and "NOT_FOUND" in _text(missing)

    # generate_image: the studio's job, its steps as progress notifications, the picture as image content
    heard: list[tuple] = []

    async def progress(done, total, message):
        heard.append((done, total, message))

    drawn = await client.call_tool("generate_image", DRAW, progress_callback=progress)
    assert not drawn.is_error, _text(drawn)
    summary = json.loads(drawn.content[0].text)
    pictures = [c for c in drawn.content if isinstance(c, ImageContent)]
    assert len(pictures) == 1 and pictures[0].mime_type == "image/png"
    assert base64.b64decode(pictures[0].data).startswith(PNG)
    assert (3, 3) in {(done, total) for done, total, _ in heard}, heard
    job = json.loads(_text(await client.call_tool("job_status", {"job_id": summary["job"]})))
    assert job["status"] == "SUCCESS" and job["kind"] == "image"
    for wrong, field in (({**DRAW, "width": 65}, "width: must be a multiple of 8"),
                         ({**DRAW, "sampler": "x"}, "sampler: unknown field"), ({"prompt": " "}, "prompt: ")):
        refused = await client.call_tool("generate_image", wrong)
        assert refused.is_error and field in _text(refused), _text(refused)

    # the gallery as resources: the list, and each picture as a PNG blob
    image_id = summary["images"][0]["id"]
    gallery = json.loads((await client.read_resource("zishu://gallery")).contents[0].text)
    assert f"zishu://gallery/{image_id}" in [i["uri"] for i in gallery["images"]]
    blob = (await client.read_resource(f"zishu://gallery/{image_id}")).contents[0]
    assert blob.mime_type == "image/png" and blob.blob == pictures[0].data

    # speak: a voice id or a character id, answered as audio content (a WAV with its real sizes)
    for voice in ("acme/piper", "acme/mei"):
        spoken = await client.call_tool("speak", {"voice": voice, "input": "你好。"})
        assert not spoken.is_error, _text(spoken)
        audio = spoken.content[0]
        assert isinstance(audio, AudioContent) and audio.mime_type == "audio/wav"
        wav_bytes = base64.b64decode(audio.data)
        assert wav_bytes[:4] == b"RIFF" and struct.unpack("<I", wav_bytes[40:44])[0] == len(wav_bytes) - 44 > 1000
    unknown = await client.call_tool("speak", {"voice": "acme/nobody", "input": "hi"})
    assert unknown.is_error and "acme/nobody" in _text(unknown)

    # transcribe: base64 audio, or a path on this computer over stdio only
    said = base64.b64encode(wav.read_bytes()).decode()
    heard_text = await client.call_tool("transcribe", {"audio": said, "response_format": "verbose_json"})
    assert not heard_text.is_error, _text(heard_text)
    assert json.loads(_text(heard_text))["segments"][0]["end"] > 0
    by_path = await client.call_tool("transcribe", {"path": str(wav), "response_format": "text"})
    if local_files:
        assert not by_path.is_error, _text(by_path)
    else:
        assert by_path.is_error and "path: files on this computer are read over stdio" in _text(by_path)
    neither = await client.call_tool("transcribe", {})
    assert neither.is_error and "one of them" in _text(neither)
    not_b64 = await client.call_tool("transcribe", {"audio": "not base64!"})
    assert not_b64.is_error and "audio: not base64" in _text(not_b64)

    resources = {str(r.uri) for r in (await client.list_resources()).resources}
    assert {"zishu://characters", "zishu://gallery"} <= resources
    read = await client.read_resource("zishu://characters")
    assert json.loads(read.contents[0].text)[0]["id"] == "acme/mei"


def test_mcp_over_stdio(mcp_home, media_models):
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    params = StdioServerParameters(command=sys.executable, args=["-m", "zishu.cli", "mcp"], env=_env(mcp_home))

    async def main():
        async with Client(params, read_timeout_seconds=300) as client:
            await _exercise(client, media_models["wav"], local_files=True)

    anyio.run(main)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mcp_over_streamable_http_behind_the_api_key(mcp_home, media_models, runtime):
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    from zishu.web.security import ApiAccess
    from zishu.web.server import AppServer

    runtime.jobs.start_consumer(1)
    server = AppServer(runtime, api=ApiAccess(key="zk-right"), api_port=_free_port()).start()
    url = f"{server.api_url}/mcp"
    accept = {"Accept": "application/json, text/event-stream"}
    try:
        for headers in ({}, {"Authorization": "Bearer zk-wrong"}, {"X-Zishu-Token": server.secret}):
            refused = requests.post(url, json=HELLO, headers={**accept, **headers}, timeout=30)
            assert refused.status_code == 401 and refused.json()["error"]["code"] == "INVALID_API_KEY"

        def client(key: str):
            return Client(streamable_http_client(url, http_client=create_mcp_http_client(
                headers={"Authorization": f"Bearer {key}"})), read_timeout_seconds=300)

        async def main():
            with anyio.fail_after(60), pytest.raises(Exception):  # noqa: B017 - the SDK's own error for a 401
                async with client("zk-wrong") as wrong:
                    await wrong.list_tools()
            async with client("zk-right") as right:
                await _exercise(right, media_models["wav"], local_files=False)

        anyio.run(main)
        # the window's port serves /mcp too, with its own launch secret
        window = requests.post(f"{server.url}mcp", json=HELLO, timeout=30,
                               headers={**accept, "Authorization": f"Bearer {server.secret}"})
        assert window.status_code == 200 and window.headers["Mcp-Session-Id"]
    finally:
        server.stop()
        runtime.jobs.stop_consumer()


def test_a_client_that_leaves_the_event_stream_frees_its_thread_and_slot(runtime, monkeypatch):
    from zishu.web import mcp_http
    from zishu.web.security import ApiAccess
    from zishu.web.server import AppServer

    monkeypatch.setattr(mcp_http, "KEEP_ALIVE", 0.2)
    server = AppServer(runtime, api=ApiAccess(key="zk-right"), api_port=_free_port()).start()
    url = f"{server.api_url}/mcp"
    base = {"Authorization": "Bearer zk-right", "Accept": "application/json, text/event-stream"}
    try:
        opened = requests.post(url, json=HELLO, headers=base, timeout=30)
        assert opened.status_code == 200, opened.text
        session = {**base, "Mcp-Session-Id": opened.headers["Mcp-Session-Id"], "Mcp-Protocol-Version": "2025-06-18"}
        ready = requests.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session,
                              timeout=30)
        assert ready.status_code == 202, ready.text
        # the session's GET stream, by hand on a socket, so that closing it really closes the connection
        client = socket.create_connection(("127.0.0.1", int(server.api_url.rsplit(":", 1)[1])), timeout=30)
        asked = {**session, "Accept": "text/event-stream", "Host": "127.0.0.1"}
        client.sendall(("GET /mcp HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in asked.items())
                        + "\r\n").encode())
        seen = b""
        while b": keep-alive" not in seen:
            seen += client.recv(4096)
        assert seen.startswith(b"HTTP/1.1 200") and b"text/event-stream" in seen.lower()
        slots = server.app.config["ZISHU_STREAM_SLOTS"]
        assert slots.open == 1
        client.close()  # the client goes away without a word
        deadline = time.monotonic() + 20
        while slots.open and time.monotonic() < deadline:
            time.sleep(0.1)
        assert slots.open == 0  # noticed at the next keep-alive: the worker thread and the slot are free
        ended = requests.delete(url, headers=session, timeout=30)
        assert ended.status_code == 200
        assert requests.post(url, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, headers=session,
                             timeout=30).status_code == 404  # the session is gone
    finally:
        server.stop()
