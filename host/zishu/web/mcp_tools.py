"""Zishu's MCP server, built with the official ``mcp`` SDK's ``MCPServer``: the tools and resources
that ``zishu mcp`` (stdio, ``commands/mcp.py``) and ``/mcp`` (streamable HTTP, ``web/mcp_http.py``)
both serve, for one runtime and its companions.

Every tool takes its arguments as one pydantic request model, the one the REST route for the same
action validates with (``ModelTools``): the model's JSON Schema is the tool's input schema, and the
model checks the arguments, so a bad one is refused with the same "field: problem" text as REST.

    search_catalog        CatalogQuery (GET /api/catalog/search)          the catalog's matching entries
    list_characters       (none)                                          the installed characters
    chat_with_character   ChatWithCharacter (/v1/chat/completions, one    one reply; ``memory`` false keeps
                          user message)                                   it out of the character's memory
    job_status            JobRef (GET /api/jobs/<id>)                     a job's status and progress
    generate_image        ImageRequest (POST /api/studio/images)          the pictures, as image content,
                                                                          with progress notifications
    speak                 SpeechRequest (POST /v1/audio/speech)           audio content
    transcribe            TranscriptionRequest (/v1/audio/transcriptions) the text
                          + the audio (base64, or a path over stdio)
    create_storyboard     StoryboardRequest (POST /api/storyboards)       the project, and the shot jobs
    export_video          ExportRequest (POST /api/storyboards/<id>/export)  the job, followed with progress

(``mcp_media.py`` and ``mcp_storyboard.py`` hold the wings' tools.)

Resources: ``zishu://characters`` (the list), ``zishu://characters/{owner}/{name}``,
``zishu://gallery`` (the newest pictures) and ``zishu://gallery/{image_id}`` (one picture's PNG).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from zishu import __version__
from zishu.catalog.search import CatalogQuery
from zishu.errors import UsageError, ZishuError
from zishu.jobs.events import changes
from zishu.jobs.records import FINISHED, JobRef
from zishu.runtime import Runtime

INSTRUCTIONS = ("Zishu runs AI characters on this computer. list_characters gives the ids chat_with_character "
                "and speak take; search_catalog finds characters and models to install; generate_image draws "
                "with the installed image model; job_status follows the jobs other tools start.")
JOB_POLL = 0.5  # seconds between looks at a followed job's row (changes here wake it at once)


class ChatWithCharacter(BaseModel):
    """One message to a character (the fields /v1/chat/completions takes, for one user message)."""

    model_config = ConfigDict(extra="forbid")
    character: str = Field(..., min_length=3, max_length=200, description="a character id, e.g. acme/mei")
    message: str = Field(..., min_length=1, max_length=4000)
    memory: bool = Field(True, description="false: the exchange is not written to the character's memory")
    max_tokens: int = Field(256, ge=1, le=4096)


class NoArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Whole(ArgModelBase):
    """The arguments as the client sent them, handed whole to the tool, whose request model checks
    them (the SDK's own check would word its errors differently from REST's)."""

    model_config = ConfigDict(extra="allow")

    def model_dump_one_level(self) -> dict[str, Any]:
        return {"arguments": dict(self.model_extra or {})}


def checked(model: type[BaseModel], values: dict[str, Any]) -> Any:
    """``values`` validated by ``model``; a UsageError naming the field otherwise (the model's own
    ``parse`` where it has one, so the text is REST's)."""
    parse = getattr(model, "parse", None)
    if callable(parse):
        return parse(values)
    try:
        return model.model_validate(values)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(map(str, first["loc"])) or model.__name__
        raise UsageError(f"{where}: {first['msg']}") from None


def input_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The tool input schema of ``model``: its JSON Schema, an object."""
    schema = model.model_json_schema()
    schema.setdefault("type", "object")
    return schema


class ModelTools:
    """Tools whose input schema and checks are a pydantic model's: ``@tools.add(name, Model)`` on
    ``async def run(asked: Model, ctx: Context)`` registers ``name``, described by ``run``'s docstring."""

    def __init__(self) -> None:
        self.tools: list[Tool] = []

    def add(self, name: str, model: type[BaseModel]) -> Callable[[Callable[..., Awaitable[Any]]], Any]:
        def register(run: Callable[..., Awaitable[Any]]) -> Any:
            async def tool(arguments: dict[str, Any], ctx: Context) -> Any:
                try:
                    asked = checked(model, arguments)
                    return await run(asked, ctx)
                except ZishuError as e:  # reaches the client as the tool's error text: code and message
                    raise ToolError(f"{e.code}: {e}") from None

            self.tools.append(Tool(fn=tool, name=name, title=None, annotations=None,
                                   description=(run.__doc__ or name).strip(),
                                   parameters=input_schema(model), fn_metadata=FuncMetadata(arg_model=_Whole),
                                   is_async=True, context_kwarg="ctx"))
            return run

        return register


async def in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` on a worker thread (engines and the database block)."""
    return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))


async def follow_job(runtime: Runtime, job_id: int, ctx: Context) -> dict:
    """Wait for the job to finish, sending each change of its progress to the client as a progress
    notification (when the client asked for them); the finished job as a dict."""
    said: tuple | None = None
    seen = changes.serial
    while True:
        job = await in_thread(runtime.jobs.get, job_id)
        now = (job.done, job.total, job.message)
        if now != said and job.done is not None:
            said = now
            await ctx.report_progress(float(job.done), float(job.total) if job.total else None, job.message or None)
        if job.status in FINISHED:
            return job.as_dict()
        seen = await in_thread(changes.wait, seen, JOB_POLL)


def finished(job: dict) -> dict:
    """``job`` (a dict) when it succeeded; else the tool's error, naming how the job ended and why."""
    if job["status"] == "SUCCESS":
        return job
    why = job.get("error") or "no reason given"
    raise ToolError(f"{job.get('error_code') or job['status']}: job {job['id']} ended {job['status']}: {why}")


def build_server(runtime: Runtime, sessions: Any, *, local_files: bool = True) -> MCPServer:
    """The MCP server for ``runtime``; ``sessions`` is the app's ``CompanionSessions`` (its text
    companions load each character's model once). ``local_files``: tools may read a path on this
    computer (stdio, whose client is the user's own program; not over HTTP)."""
    tools = ModelTools()

    @tools.add("search_catalog", CatalogQuery)
    async def search_catalog(asked: CatalogQuery, ctx: Context) -> str:
        """Search Zishu's catalog of characters, models and voices; JSON entries (id, kind, name, summary)."""
        found = await in_thread(runtime.catalog().search, asked.query, kind=asked.kind, tag=asked.tag,
                                license=asked.license, base_model=asked.base_model, sort=asked.sort,
                                limit=asked.limit)
        keep = ("id", "kind", "name", "summary", "tags", "license")
        return json.dumps([{k: e.get(k) for k in keep if k in e} for e in found], ensure_ascii=False)

    @tools.add("list_characters", NoArguments)
    async def list_characters(asked: NoArguments, ctx: Context) -> str:
        """The characters installed on this computer (JSON: id, name, summary)."""
        return json.dumps(await in_thread(_characters, runtime), ensure_ascii=False)

    @tools.add("chat_with_character", ChatWithCharacter)
    async def chat_with_character(asked: ChatWithCharacter, ctx: Context) -> str:
        """Say ``message`` to an installed character and get its reply. memory=false leaves the
        character's memory untouched."""
        return await in_thread(_chat, sessions, asked)

    @tools.add("job_status", JobRef)
    async def job_status(asked: JobRef, ctx: Context) -> str:
        """A job's status, progress and result (JSON), for the job ids other tools return."""
        job = await in_thread(runtime.jobs.get, asked.job_id)
        return json.dumps(job.as_dict(), ensure_ascii=False, default=str)

    add_wing_tools(tools, runtime, local_files=local_files)
    server = MCPServer("zishu", version=__version__, instructions=INSTRUCTIONS, tools=tools.tools)

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

    add_media_resources(server, runtime)
    return server


def add_wing_tools(tools: ModelTools, runtime: Runtime, *, local_files: bool) -> None:
    """The wings' tools, each with the request model its REST route uses (studio and audio:
    ``mcp_media``; storyboard: ``mcp_storyboard``)."""
    from .mcp_media import add_media_tools
    from .mcp_storyboard import add_storyboard_tools

    add_media_tools(tools, runtime, local_files=local_files)
    add_storyboard_tools(tools, runtime, local_files=local_files)


def add_media_resources(server: MCPServer, runtime: Runtime) -> None:
    from .mcp_media import add_gallery_resources

    add_gallery_resources(server, runtime)


def _chat(sessions: Any, asked: ChatWithCharacter) -> str:
    from zishu.engines.kinds import ChatOptions

    talk = sessions.text_chat(asked.character, ChatOptions(max_tokens=asked.max_tokens))
    if not asked.memory:
        talk.memory = None
    done = next(e for e in talk.reply(asked.message) if e["type"] == "done")
    return str(done["text"])


def _characters(runtime: Runtime) -> list[dict]:
    from zishu.companion.characters import list_characters

    keep = ("id", "name", "summary", "version", "local")
    return [{k: c.get(k) for k in keep} for c in list_characters(runtime)]
