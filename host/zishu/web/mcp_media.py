"""The MCP tools and resources of the studio and the audio routes (``mcp_tools`` builds the server):

    generate_image   ImageRequest, the studio's one request model (POST /api/studio/images): an
                     ``image`` job on the queue, followed with progress notifications; answers the
                     pictures as PNG image content and a JSON summary (gallery ids, seed, job id)
    speak            SpeechRequest of /v1/audio/speech (``voice`` a Zishu voice or a character id),
                     with a tool's defaults (model tts-1: the voice chooses; wav): audio content
    transcribe       TranscriptionRequest of /v1/audio/transcriptions, plus the audio: ``audio``
                     (the file's bytes in base64) or ``path`` (a file on this computer; over stdio
                     only, since an HTTP client is another program that should not read the user's files)

Resources: ``zishu://gallery`` (the newest pictures, JSON) and ``zishu://gallery/{image_id}`` (one
picture's PNG, as a blob).
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from pathlib import Path
from typing import Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import AudioContent, ImageContent, TextContent
from pydantic import ConfigDict, Field, model_validator

from zishu.companion import openai_media as media
from zishu.errors import NotFound, UsageError
from zishu.resources.versions import file_inside
from zishu.runtime import Runtime
from zishu.studio.requests import ImageRequest

from .mcp_tools import ModelTools, finished, follow_job, in_thread

GALLERY_LISTED = 100  # pictures zishu://gallery lists, newest first
MAX_AUDIO_BASE64 = (media.MAX_AUDIO_BYTES + 2) // 3 * 4


class SpeakRequest(media.SpeechRequest):
    """/v1/audio/speech's request with a tool's defaults: ``model`` tts-1 (the voice chooses) and a
    complete WAV; unknown fields are refused rather than ignored."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field("tts-1", description="tts-1 (the voice chooses), or a Zishu speech model id.")
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "wav"


class TranscribeRequest(media.TranscriptionRequest):
    """/v1/audio/transcriptions' fields, with the audio as ``audio`` (base64) or ``path``."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field("whisper-1", description="An installed ASR model, or whisper-1 for the default one.")
    audio: str | None = Field(None, max_length=MAX_AUDIO_BASE64,
                              description="The audio file (any format ffmpeg reads), base64-encoded.")
    path: str | None = Field(None, max_length=4096,
                             description="An audio file on this computer (zishu mcp over stdio only).")

    @model_validator(mode="after")
    def _one_source(self) -> TranscribeRequest:
        if (self.audio is None) == (self.path is None):
            raise ValueError("send the audio as base64 in audio, or a file in path (one of them)")
        return self


def add_media_tools(tools: ModelTools, runtime: Runtime, *, local_files: bool) -> None:
    @tools.add("generate_image", ImageRequest)
    async def generate_image(asked: ImageRequest, ctx: Context) -> list:
        """Draw pictures with the studio (the installed image model unless ``model`` says which); the
        pictures land in the gallery and come back as PNG images. Sends progress (denoising steps)."""
        job = await in_thread(runtime.jobs.submit, "image", asked.params())
        done = finished(await follow_job(runtime, job.id, ctx))
        return await in_thread(_pictures, runtime, done)

    @tools.add("speak", SpeakRequest)
    async def speak(asked: SpeakRequest, ctx: Context) -> AudioContent:
        """Say ``input`` aloud with ``voice``: a Zishu voice (or speech model) id, or a character id
        (its own voice). Answers the audio (WAV unless response_format says otherwise)."""
        data, media_type = await in_thread(_spoken, runtime, asked)
        return AudioContent(data=base64.b64encode(data).decode("ascii"), mime_type=media_type)

    @tools.add("transcribe", TranscribeRequest)
    async def transcribe(asked: TranscribeRequest, ctx: Context) -> str:
        """The text spoken in an audio file (``audio`` base64, or ``path`` over stdio), in
        response_format (json, text, verbose_json with segments, srt, vtt)."""
        audio = _audio_of(asked, local_files)
        body, _ = await in_thread(media.transcription, runtime, audio, asked)
        return body.decode() if isinstance(body, bytes) else body


def add_gallery_resources(server: MCPServer, runtime: Runtime) -> None:
    @server.resource("zishu://gallery", mime_type="application/json")
    def gallery() -> str:
        """The studio's newest pictures (id, uri, prompt, size), newest first."""
        rows, total = runtime.studio.gallery.search(limit=GALLERY_LISTED)
        return json.dumps({"total": total, "images": [_summary(row.as_dict()) for row in rows]}, ensure_ascii=False)

    @server.resource("zishu://gallery/{image_id}", mime_type="image/png")
    def picture(image_id: str) -> bytes:
        """One picture of the studio's gallery (PNG, with its A1111 parameters)."""
        if not (image_id.isascii() and image_id.isdigit()) or len(image_id) > 19:
            raise UsageError(f"image_id: expected a whole number, got {image_id[:40]!r}")
        row = runtime.studio.gallery.get(int(image_id))
        path = file_inside(runtime.studio.gallery.folder, row.file)
        if path is None:
            raise NotFound(f"picture {image_id}'s file is gone from the gallery")
        return path.read_bytes()


def _summary(row: dict) -> dict:
    keep = ("id", "prompt", "width", "height", "seed", "model", "character", "blocked", "blocked_reason")
    return {"uri": f"zishu://gallery/{row['id']}", **{k: row[k] for k in keep}}


def _pictures(runtime: Runtime, job: dict) -> list:
    """The finished image job's pictures as image content, after a JSON summary."""
    result = job["result"]
    rows = result["images"]
    summary = {"job": job["id"], "seed": result.get("seed"), "cached": result.get("cached"),
               "images": [_summary(row) for row in rows]}
    content: list[Any] = [TextContent(text=json.dumps(summary, ensure_ascii=False))]
    for row in rows:
        if row.get("blocked"):  # kept in the gallery, blurred there, never handed out
            continue
        path = file_inside(runtime.studio.gallery.folder, row["file"])
        if path is not None:
            content.append(ImageContent(data=base64.b64encode(path.read_bytes()).decode("ascii"),
                                        mime_type="image/png"))
    return content


def _spoken(runtime: Runtime, asked: SpeakRequest) -> tuple[bytes, str]:
    spoken = media.Speech(runtime, asked)
    try:
        data = b"".join(spoken.audio())
    finally:
        spoken.close()
    if asked.response_format == "wav":
        data = _sized_wav(data)
    return data, spoken.media_type


def _sized_wav(data: bytes) -> bytes:
    """A streamed WAV (sizes unknown, 0xFFFFFFFF) with its real sizes, now that it is whole."""
    header = 44
    return (data[:4] + struct.pack("<I", len(data) - 8) + data[8:header - 4]
            + struct.pack("<I", len(data) - header) + data[header:])


def _audio_of(asked: TranscribeRequest, local_files: bool) -> bytes:
    if asked.audio is not None:
        try:
            return base64.b64decode(asked.audio, validate=True)
        except (binascii.Error, ValueError):
            raise UsageError("audio: not base64 (send the audio file's bytes base64-encoded)") from None
    if not local_files:
        raise UsageError("path: files on this computer are read over stdio (zishu mcp) only; "
                         "over HTTP send the audio as base64 in audio")
    path = Path(str(asked.path)).expanduser()
    if not path.is_file():
        raise UsageError(f"path: no file {str(path)!r}")
    if path.stat().st_size > media.MAX_AUDIO_BYTES:
        raise UsageError(f"path: the file is larger than {media.MAX_AUDIO_BYTES // (1024 * 1024)} MiB")
    return path.read_bytes()
