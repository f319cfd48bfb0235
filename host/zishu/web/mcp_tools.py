"""Zishu's MCP server, built with the official ``mcp`` SDK's ``MCPServer``: the tools and resources
that ``zishu mcp`` (stdio, ``commands/mcp.py``) and ``/mcp`` on the local API port (``web/mcp.py``)
both serve, for one runtime and its companions.

Tools (each validates its arguments with the pydantic request model below, the one the REST route
for the same action validates with):

    search_catalog        the catalog's entries matching a query
    list_characters       the installed characters
    chat_with_character   one reply from a character; ``memory`` false keeps the exchange out of its
                          memory (the same opt-out as /v1's)
    job_status            one job's status and progress

Resources: ``zishu://characters`` (the list) and ``zishu://characters/{owner}/{name}``.

The wings still to come add their tools in ``add_wing_tools``: ``generate_image`` (studio),
``speak``/``transcribe`` (audio routes of /v1), ``create_storyboard``/``export_video`` (storyboard).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from zishu import __version__
from zishu.errors import UsageError, ZishuError
from zishu.runtime import Runtime

INSTRUCTIONS = ("Zishu runs AI characters on this computer. list_characters gives the ids chat_with_character "
                "takes; search_catalog finds characters and models to install.")


class SearchCatalog(BaseModel):
    """The catalog search (as GET /api/catalog and `zishu search` take it)."""

    model_config = ConfigDict(extra="forbid")
    query: str = Field("", max_length=500, description="words to look for; empty: everything")
    kind: str | None = Field(None, description="character, model, voice, ...")
    tag: str | None = None
    limit: int = Field(20, ge=1, le=200)


class ChatWithCharacter(BaseModel):
    """One message to a character (the fields /v1/chat/completions takes, for one user message)."""

    model_config = ConfigDict(extra="forbid")
    character: str = Field(..., min_length=3, max_length=200, description="a character id, e.g. acme/mei")
    message: str = Field(..., min_length=1, max_length=4000)
    memory: bool = Field(True, description="false: the exchange is not written to the character's memory")
    max_tokens: int = Field(256, ge=1, le=4096)


class JobStatus(BaseModel):
    model_config = ConfigDict(extra="forbid")
    job_id: int = Field(..., ge=1, le=2**63 - 1)


F = TypeVar("F", bound=Callable[..., Any])


def _said_clearly(fn: F) -> F:
    """A tool whose Zishu errors reach the client as the tool's error text (code and message); the
    SDK hides any other exception's text behind "Error executing tool"."""

    @functools.wraps(fn)
    def tool(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ZishuError as e:
            raise ToolError(f"{e.code}: {e}") from None

    return tool  # type: ignore[return-value]


def checked(model: type[BaseModel], values: dict[str, Any]) -> Any:
    """``values`` validated by ``model``; a UsageError naming the field otherwise."""
    try:
        return model.model_validate(values)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(map(str, first["loc"])) or model.__name__
        raise UsageError(f"{where}: {first['msg']}") from None


def build_server(runtime: Runtime, sessions: Any) -> MCPServer:
    """The MCP server for ``runtime``; ``sessions`` is the app's ``CompanionSessions`` (its text
    companions load each character's model once)."""
    server = MCPServer("zishu", version=__version__, instructions=INSTRUCTIONS)

    @server.tool()
    @_said_clearly
    def search_catalog(query: str = "", kind: str | None = None, tag: str | None = None, limit: int = 20) -> str:
        """Search Zishu's catalog of characters, models and voices; JSON entries (id, kind, name, summary)."""
        asked = checked(SearchCatalog, {"query": query, "kind": kind, "tag": tag, "limit": limit})
        found = runtime.catalog().search(asked.query, kind=asked.kind, tag=asked.tag, limit=asked.limit)
        keep = ("id", "kind", "name", "summary", "tags", "license")
        return json.dumps([{k: e.get(k) for k in keep if k in e} for e in found], ensure_ascii=False)

    @server.tool()
    @_said_clearly
    def list_characters() -> str:
        """The characters installed on this computer (JSON: id, name, summary)."""
        return json.dumps(_characters(runtime), ensure_ascii=False)

    @server.tool()
    @_said_clearly
    def chat_with_character(character: str, message: str, memory: bool = True, max_tokens: int = 256) -> str:
        """Say ``message`` to an installed character and get its reply. memory=false leaves the
        character's memory untouched."""
        from zishu.engines.kinds import ChatOptions

        asked = checked(ChatWithCharacter, {"character": character, "message": message, "memory": memory,
                                            "max_tokens": max_tokens})
        talk = sessions.text_chat(asked.character, ChatOptions(max_tokens=asked.max_tokens))
        if not asked.memory:
            talk.memory = None
        done = next(e for e in talk.reply(asked.message) if e["type"] == "done")
        return str(done["text"])

    @server.tool()
    @_said_clearly
    def job_status(job_id: int) -> str:
        """A job's status, progress and result (JSON), for the job ids other tools return."""
        asked = checked(JobStatus, {"job_id": job_id})
        return json.dumps(runtime.jobs.get(asked.job_id).as_dict(), ensure_ascii=False, default=str)

    @server.resource("zishu://characters", mime_type="application/json")
    def characters() -> str:
        """The installed characters."""
        return json.dumps(_characters(runtime), ensure_ascii=False)

    @server.resource("zishu://characters/{owner}/{name}", mime_type="application/json")
    def character(owner: str, name: str) -> str:
        """One installed character."""
        wanted = f"{owner}/{name}"
        for found in _characters(runtime):
            if found["id"] == wanted:
                return json.dumps(found, ensure_ascii=False)
        raise UsageError(f"no installed character {wanted!r}")

    add_wing_tools(server, runtime)
    return server


def add_wing_tools(server: MCPServer, runtime: Runtime) -> None:
    """The registration point for the wings' tools: each wing's module, once it exists, registers
    its tools here with the same request models its REST routes use (studio: ``generate_image``
    with progress notifications from the image job; storyboard: ``create_storyboard`` and
    ``export_video``)."""


def _characters(runtime: Runtime) -> list[dict]:
    from zishu.companion.characters import list_characters

    keep = ("id", "name", "summary", "version", "local")
    return [{k: c.get(k) for k in keep} for c in list_characters(runtime)]

