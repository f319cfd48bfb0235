"""The parameters of the ``speech``, ``transcription`` and ``completion`` jobs (``companion.jobs``),
checked with pydantic at submit so that bad input is refused before anything is queued, with an
error naming the field (``"voice": Field required``). Unknown fields are refused too, so a typo
never silently falls back to a default.

    speech          text, voice (a voice or TTS model: catalog id or path), speaker, format, speed
    transcription   audio (a data URL or base64) or path (a file on the app's machine), model, language
    completion      model, messages or prompt, max_tokens, temperature, top_p, seed, stop
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

from .limits import MESSAGE_CHARS, checked_conversation, checked_message
from .openai_compat import BadParam
from .openai_media import MAX_AUDIO_BYTES, MAX_SPEECH_CHARS

SPEECH_FORMATS = ("wav", "mp3", "opus", "aac", "flac")
MAX_COMPLETION_TOKENS = 4096
MAX_STOPS = 4
# an audio data URL's media type → the suffix its copy in ZISHU_HOME gets (ffmpeg reads the content anyway)
AUDIO_SUFFIXES = {"audio/wav": ".wav", "audio/x-wav": ".wav", "audio/wave": ".wav", "audio/mpeg": ".mp3",
                  "audio/mp3": ".mp3", "audio/ogg": ".ogg", "audio/opus": ".opus", "audio/flac": ".flac",
                  "audio/aac": ".aac", "audio/mp4": ".m4a", "audio/webm": ".webm"}


class JobParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SpeechParams(JobParams):
    text: Annotated[StrictStr, Field(min_length=1, max_length=MAX_SPEECH_CHARS)]
    voice: Annotated[StrictStr, Field(min_length=1)]  # what routes the job: a node with this voice speaks it
    speaker: Annotated[StrictStr, Field(min_length=1)] | None = None  # one of a multi-speaker model's voices
    format: Literal["wav", "mp3", "opus", "aac", "flac"] = "wav"
    speed: Annotated[StrictFloat | StrictInt, Field(ge=0.25, le=4.0)] = 1.0

    def checked(self) -> SpeechParams:
        if not self.text.strip():
            raise BadParam("text", '"text" must hold some text to speak')
        return self


class TranscriptionParams(JobParams):
    audio: StrictStr | None = None  # data:audio/…;base64,… or plain base64
    path: StrictStr | None = None  # a file on the app's machine
    model: Annotated[StrictStr, Field(min_length=1)] | None = None  # default: Settings', else the first installed
    language: Annotated[StrictStr, Field(pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})?$")] | None = None

    def data(self) -> tuple[bytes, str]:
        """The audio's bytes and the suffix its copy gets; BadParam naming ``audio`` or ``path``."""
        if (self.audio is None) == (self.path is None):
            raise BadParam("audio", 'give the audio as "audio" (a data URL or base64) or as "path" (a file '
                                    "on this machine), one of them")
        if self.path is not None:
            return _file(self.path)
        return _decoded(self.audio or "")


def _file(given: str) -> tuple[bytes, str]:
    path = Path(given).expanduser()
    if not path.is_absolute():
        raise BadParam("path", f'"path": {given!r} is not an absolute path')
    if not path.is_file():
        raise BadParam("path", f'"path": {given!r} is not a file')
    size = path.stat().st_size
    if size > MAX_AUDIO_BYTES:
        raise BadParam("path", f'"path": {given!r} is {size:,} bytes; the limit is {MAX_AUDIO_BYTES:,}')
    return path.read_bytes(), path.suffix.lower()[:8] or ".audio"


def _decoded(given: str) -> tuple[bytes, str]:
    suffix = ".audio"
    if given.startswith("data:"):
        head, comma, given = given.partition(",")
        if not comma or not head.endswith(";base64"):
            raise BadParam("audio", '"audio": a data URL must be data:<media type>;base64,<data>')
        suffix = AUDIO_SUFFIXES.get(head[5:-7].lower(), suffix)
    if len(given) > (MAX_AUDIO_BYTES + 2) // 3 * 4 + 4:
        raise BadParam("audio", f'"audio" holds more than {MAX_AUDIO_BYTES:,} bytes; the limit')
    try:
        data = base64.b64decode(given, validate=True)
    except (binascii.Error, ValueError):
        raise BadParam("audio", '"audio" is not base64 (nor a base64 data URL)') from None
    if not data:
        raise BadParam("audio", '"audio" is empty')
    return data, suffix


class Message(JobParams):
    role: Literal["system", "user", "assistant"]
    content: StrictStr


class CompletionParams(JobParams):
    model: Annotated[StrictStr, Field(min_length=1)]  # an LLM: catalog id (routes the job) or a GGUF path
    messages: list[Message] | None = None
    prompt: Annotated[StrictStr, Field(min_length=1, max_length=MESSAGE_CHARS)] | None = None
    max_tokens: Annotated[StrictInt, Field(ge=1, le=MAX_COMPLETION_TOKENS)] = 256
    temperature: Annotated[StrictFloat | StrictInt, Field(ge=0, le=2)] = 0.8
    top_p: Annotated[StrictFloat | StrictInt, Field(gt=0, le=1)] | None = None
    seed: StrictInt | None = None
    stop: Annotated[list[Annotated[StrictStr, Field(min_length=1)]], Field(max_length=MAX_STOPS)] | None = None

    def checked(self) -> CompletionParams:
        if (self.messages is None) == (self.prompt is None):
            raise BadParam("messages", 'give "messages" (a list of {"role", "content"}) or "prompt" (a text), '
                                       "one of them")
        if self.messages is not None:
            if not self.messages:
                raise BadParam("messages", '"messages" must not be empty')
            checked_conversation([m.content for m in self.messages])
            if not any(m.content.strip() for m in self.messages):
                raise BadParam("messages", '"messages" hold no text')
        elif not (self.prompt or "").strip():
            raise BadParam("prompt", '"prompt" must hold some text')
        else:
            checked_message(self.prompt or "", "prompt")
        return self

    def turns(self) -> list[dict]:
        """The conversation the model continues: the messages, or the prompt as the user's one."""
        if self.messages is not None:
            return [{"role": m.role, "content": m.content} for m in self.messages]
        return [{"role": "user", "content": self.prompt or ""}]
