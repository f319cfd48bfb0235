"""Zishu's MCP server driven by the official SDK's own client over stdio (spawning ``zishu mcp``),
with the tiny companion models (tests/tiny_companion.py)."""

from __future__ import annotations

import json
import os
import sys

import anyio

TOOLS = {"search_catalog", "list_characters", "chat_with_character", "job_status"}


def _env(home) -> dict:
    env = {**os.environ, "ZISHU_HOME": str(home), "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    env.pop("ZISHU_QUEUE", None)
    return env


async def _exercise(client, home) -> None:
    from mcp_types import TextContent

    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) >= TOOLS
    assert "memory" in tools["chat_with_character"].input_schema["properties"]
    listed = await client.call_tool("list_characters", {})
    assert [c["id"] for c in json.loads(listed.content[0].text)] == ["acme/mei"]
    reply = await client.call_tool("chat_with_character", {"character": "acme/mei", "message": "Hi!",
                                                            "memory": False, "max_tokens": 16})
    assert not reply.is_error, reply
    assert isinstance(reply.content[0], TextContent) and reply.content[0].text.strip()
    bad = await client.call_tool("chat_with_character", {"character": "acme/mei", "message": "x" * 4001})
    assert bad.is_error and "message" in bad.content[0].text
    missing = await client.call_tool("job_status", {"job_id": 999})
    assert missing.is_error
    resources = {str(r.uri) for r in (await client.list_resources()).resources}
    assert "zishu://characters" in resources
    read = await client.read_resource("zishu://characters")
    assert json.loads(read.contents[0].text)[0]["id"] == "acme/mei"


def test_mcp_over_stdio(companion_home):
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    params = StdioServerParameters(command=sys.executable, args=["-m", "zishu.cli", "mcp"], env=_env(companion_home))

    async def main():
        async with Client(params) as client:
            await _exercise(client, companion_home)

    anyio.run(main)
