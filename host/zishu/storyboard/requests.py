"""The request models of a storyboard's creation and export, as ``POST /api/storyboards`` and
``POST /api/storyboards/<id>/export`` take them (and the MCP tools ``create_storyboard`` and
``export_video``). They check the shape of a request (types, lengths, choices) and describe it
(OpenAPI, the tools' input schemas); ``Storyboards`` still checks what needs the machine (an
installed character, a music file that holds audio).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from zishu.errors import UsageError

from .projects import (
    MAX_DURATION,
    MAX_NARRATION,
    MAX_PROMPT,
    MAX_SHOTS,
    MAX_STORY,
    MAX_TITLE,
    MIN_DURATION,
    PROJECT_FIELDS,
)


class ShotRequest(BaseModel):
    """One hand-written shot."""

    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT, description="what the shot's picture shows")
    narration: str = Field(max_length=MAX_NARRATION, description="what the narrator says over it")
    duration: float | None = Field(None, ge=MIN_DURATION, le=MAX_DURATION, allow_inf_nan=False,
                                   description="seconds (default: as long as the narration)")
    subtitle: str | None = Field(None, max_length=MAX_NARRATION)


class VoiceChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    engine: str = Field(min_length=1, max_length=100, description="a TTS engine, e.g. espeak-ng")
    voice: str | None = Field(None, max_length=200)


class StoryboardRequest(BaseModel):
    """A new storyboard: the story, how it looks, and its shots (a number: the language model writes
    them; a list: written by hand)."""

    model_config = ConfigDict(extra="forbid")
    story: str = Field(min_length=1, max_length=MAX_STORY)
    title: str | None = Field(None, max_length=MAX_TITLE)
    aspect: Literal["16:9", "9:16", "1:1"] | None = Field(None, description="default 16:9")
    resolution: Literal["720p", "1080p"] | None = Field(None, description="default 720p")
    style: str | None = Field(None, max_length=200, description="a studio style preset")
    character: str | None = Field(None, max_length=200, description="an installed character id (acme/mei)")
    voice: VoiceChoice | Literal[""] | None = None
    music: str | None = Field(None, max_length=4096, description="the path of an audio file on this computer")
    shots: int | list[ShotRequest] | None = Field(None, description=f"1 to {MAX_SHOTS}: shots the language model "
                                                  "writes; or the shots themselves")
    model: str | None = Field(None, max_length=1000, description="the language model that writes the shots")

    @classmethod
    def parse(cls, data: Any) -> StoryboardRequest:
        """``data`` checked; UsageError naming the first bad field."""
        return _parsed(cls, data)

    def project(self) -> dict:
        """The fields ``Storyboards.create`` takes (those the request set)."""
        made = self.model_dump(mode="json", exclude_unset=True)
        return {k: v for k, v in made.items() if k in PROJECT_FIELDS}

    def hand_written(self) -> list[dict] | None:
        return None if not isinstance(self.shots, list) else [s.model_dump(exclude_none=True) for s in self.shots]


class ExportRequest(BaseModel):
    """What an export makes: subtitles burnt into the picture, the project's music under it."""

    model_config = ConfigDict(extra="forbid")
    burn_subtitles: StrictBool = False
    music: StrictBool = Field(True, description="the project's music under the video, when it has some")
    crossfade: Any = Field(None, json_schema_extra={"type": "number", "minimum": 0, "maximum": 2},
                           description="seconds each shot fades into the next, 0 to 2 (default 0.5); "
                                       "checked with the shots' lengths by render.check_export")

    @classmethod
    def parse(cls, data: Any) -> ExportRequest:
        return _parsed(cls, data)


def _parsed(model: Any, data: Any) -> Any:
    if not isinstance(data, dict):
        raise UsageError(f"{model.__name__}: expected a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        errors = e.errors()  # of a union (shots), the branch that got furthest into the input
        first = max(errors, key=lambda error: (len(error["loc"]), -errors.index(error)))
        where = ".".join(str(p) for p in first["loc"] if not str(p).startswith(("int", "list["))) or "request"
        raise UsageError(f"{where}: {_message(first)}") from None


def _message(error: Any) -> str:
    """pydantic's problem in the words ``Storyboards`` uses for the same one."""
    kind, ctx, given = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind == "string_too_long":
        return f"at most {ctx['max_length']} characters, got {len(given)}"
    if kind == "literal_error":
        return f"must be one of {ctx['expected'].replace(' or ', ', ')}, got {given!r}"
    message = error["msg"]
    return message[0].lower() + message[1:]
