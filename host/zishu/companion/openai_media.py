"""The OpenAI-compatible API's media side: embeddings, speech and transcriptions, with the request
models the routes validate with (``openai_compat`` has the chat side, the model list and errors).

    embeddings(runtime, request)          {"object": "list", "data": [{"embedding"…}], "usage"…}
    Speech(runtime, request)              ``media_type`` and ``audio()``: the encoded audio, piece by
                                          piece as it is synthesised (wav and pcm as they come; mp3,
                                          opus, aac and flac through ffmpeg)
    transcription(runtime, audio, request)  (body, media type) in the format asked

Speech: ``voice`` is a Zishu voice (an installed voice resource or tts model) or a character id (it
speaks with that character's voice, as in the companion); ``model`` is one of OpenAI's names (the
voice chooses), or a Zishu speech model, whose ``voice`` may then be one of its speakers. ``pcm`` is
16-bit mono at 24 kHz as OpenAI's is; ``wav`` keeps the voice's own rate.

Transcriptions: ``model`` is an installed ASR model, or one of OpenAI's names for the default one
(Settings, else the first installed). Any audio ffmpeg reads is taken; with a voice detector
installed the speech is cut into segments, each transcribed with its times, else the whole file is
one segment.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal

from pydantic import Field, StrictFloat, StrictInt

from zishu.engines import use
from zishu.engines.kinds import ASR_SAMPLE_RATE, AudioChunk, token_counter
from zishu.errors import EngineError, ZishuError

from .openai_compat import (
    OPENAI_SPEECH_MODELS,
    OPENAI_TRANSCRIPTION_MODELS,
    BadParam,
    OpenAIRequest,
    UnknownModel,
    find_model,
    list_models,
    named,
)

MAX_EMBED_TEXTS = 2048  # inputs one request may embed (OpenAI's limit)
MAX_EMBED_CHARS = 32_000  # characters each input may hold
MAX_SPEECH_CHARS = 4096  # OpenAI's limit for ``input``
MAX_AUDIO_BYTES = 25 * 1024 * 1024  # an uploaded file, as OpenAI's limit
PCM_RATE = 24000  # OpenAI's ``pcm``: 16-bit little-endian mono at 24 kHz
FFMPEG_FORMATS = {  # response_format → ffmpeg output arguments, media type
    "mp3": (["-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3"], "audio/mpeg"),
    "opus": (["-c:a", "libopus", "-b:a", "32k", "-f", "ogg"], "audio/ogg"),
    "aac": (["-c:a", "aac", "-b:a", "64k", "-f", "adts"], "audio/aac"),
    "flac": (["-c:a", "flac", "-f", "flac"], "audio/flac"),
    "pcm": (["-ar", str(PCM_RATE), "-f", "s16le"], "audio/pcm"),
}


# -- embeddings -------------------------------------------------------------------------------------


class EmbeddingRequest(OpenAIRequest):
    model: str = Field(description="An installed embedding model (GET /v1/models, zishu.role = embedding).")
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Annotated[StrictInt, Field(ge=1)] | None = None
    user: str | None = None


def embeddings(runtime: Any, request: EmbeddingRequest) -> dict:
    find_model(runtime, request.model, "/v1/embeddings")
    texts = [request.input] if isinstance(request.input, str) else request.input
    if not texts:
        raise BadParam("input", '"input" must be a text or a non-empty list of texts')
    if len(texts) > MAX_EMBED_TEXTS:
        raise BadParam("input", f'"input" holds {len(texts):,} texts; the limit is {MAX_EMBED_TEXTS:,} a request')
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise BadParam("input", f"input[{i}]: token arrays are not taken here; send the text")
        if not text.strip():
            raise BadParam("input", f"input[{i}] is empty; every input must hold some text")
        if len(text) > MAX_EMBED_CHARS:
            raise BadParam("input", f"input[{i}] is {len(text):,} characters long; the limit is {MAX_EMBED_CHARS:,}")
    handle = use(runtime, "embedding", request.model).handle
    vectors = handle.embed([str(t) for t in texts])
    if request.dimensions is not None and vectors and request.dimensions != len(vectors[0]):
        raise BadParam("dimensions", f"{request.model} makes vectors of {len(vectors[0])} dimensions, "
                                     f"not {request.dimensions}; leave dimensions out")
    count = token_counter(handle).count
    tokens = sum(count(str(t)) for t in texts)
    data = [{"object": "embedding", "index": i, "embedding": _encoded(v, request.encoding_format)}
            for i, v in enumerate(vectors)]
    return {"object": "list", "data": data, "model": request.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _encoded(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":  # little-endian float32, as OpenAI's
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return [float(x) for x in vector]


# -- speech -----------------------------------------------------------------------------------------


class SpeechRequest(OpenAIRequest):
    model: str = Field(description="tts-1 (the voice chooses), or a Zishu speech model id.")
    input: str = Field(min_length=1, max_length=MAX_SPEECH_CHARS)
    voice: str = Field(min_length=1, description="A Zishu voice or tts model id, or a character id.")
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: Annotated[StrictFloat | StrictInt, Field(ge=0.25, le=4.0)] = 1.0
    instructions: str | None = None


class Speech:
    """One /v1/audio/speech request. Construction checks it, loads the voice and synthesises the first
    piece (so a failure answers as an error, not as a cut stream); ``audio()`` gives the encoded bytes."""

    def __init__(self, runtime: Any, request: SpeechRequest) -> None:
        if not request.input.strip():
            raise BadParam("input", '"input" must hold some text to speak')
        self.request = request
        synthesizer, speaker = self._voice(runtime)
        self._chunks = synthesizer.speak(request.input, voice=speaker, speed=float(request.speed))
        try:
            self.first: AudioChunk | None = next(self._chunks)
        except StopIteration:
            self.first = None
        self.rate = self.first.sample_rate if self.first else PCM_RATE
        fmt = request.response_format
        self.media_type = "audio/wav" if fmt == "wav" else FFMPEG_FORMATS[fmt][1]

    def _voice(self, runtime: Any) -> tuple[Any, str | None]:
        from .session import character_voice
        from .sessions import companion_character

        request = self.request
        voices = [m for m in list_models(runtime) if "/v1/audio/speech" in m["zishu"]["endpoints"]]
        known = {m["id"]: m for m in voices}
        model = known.get(request.model)
        if model is None and request.model not in OPENAI_SPEECH_MODELS:
            raise UnknownModel(f"there is no speech model {request.model!r} here; send one of "
                               f"{', '.join(OPENAI_SPEECH_MODELS)} (the voice chooses) or one of: "
                               f"{named(list(known))}")
        chosen = known.get(request.voice)
        speaker = None
        if chosen is None:
            if model is None or model["zishu"]["kind"] == "character":
                raise UnknownModel(f"there is no voice {request.voice!r} here; voices are Zishu voices or characters: "
                                   f"{named(list(known))}", param="voice")
            chosen, speaker = model, request.voice  # a speaker of the model the request names
        if chosen["zishu"]["kind"] == "character":
            notes: list[str] = []
            found = character_voice(runtime, companion_character(runtime.registry, chosen["id"]), notes)
            if found is None:
                raise EngineError(f"{chosen['id']} cannot speak here: {'; '.join(notes)}")
            return found, None
        handle = use(runtime, "tts", chosen["id"]).handle
        if speaker is not None and speaker not in handle.voices():
            raise UnknownModel(f"{chosen['id']} has no voice {speaker!r}; its voices: {named(handle.voices())}",
                               param="voice")
        return handle, speaker

    def chunks(self) -> Iterator[AudioChunk]:
        if self.first is not None:
            yield self.first
        yield from self._chunks

    def audio(self) -> Iterator[bytes]:
        """The audio in ``response_format``, as it is made."""
        fmt = self.request.response_format
        if fmt == "wav":
            yield wav_header(self.rate)
            for chunk in self.chunks():
                yield chunk.pcm
            return
        yield from _ffmpeg(["-f", "s16le", "-ar", str(self.rate), "-ac", "1", "-i", "pipe:0",
                            *FFMPEG_FORMATS[fmt][0], "pipe:1"], (c.pcm for c in self.chunks()))

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


def wav_header(rate: int) -> bytes:
    """A 16-bit mono WAV header for a stream whose length is not known yet (sizes 0xFFFFFFFF, as
    streaming servers write them; readers take the data to the end)."""
    unknown = 0xFFFFFFFF
    layout = struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)  # PCM, mono, 16-bit
    return b"RIFF" + struct.pack("<I", unknown) + b"WAVE" + b"fmt " + layout + b"data" + struct.pack("<I", unknown)


def _ffmpeg(args: list[str], pieces: Iterator[bytes]) -> Iterator[bytes]:
    """``pieces`` fed to ffmpeg on a thread, its output as it comes; ended (and ffmpeg stopped) when
    the reader stops."""
    process = subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", *args],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    failure: list[BaseException] = []

    def feed() -> None:
        try:
            for piece in pieces:
                process.stdin.write(piece)  # type: ignore[union-attr]
        except (BrokenPipeError, ValueError):
            pass
        except BaseException as e:  # noqa: BLE001 - the reader raises it
            failure.append(e)
        finally:
            with contextlib.suppress(OSError):
                process.stdin.close()  # type: ignore[union-attr]

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        while data := process.stdout.read1(64 * 1024):  # type: ignore[union-attr]
            yield data
        process.wait()
        feeder.join()
        if failure:
            raise failure[0]
        if process.returncode:
            error = process.stderr.read().decode(errors="replace").strip()[-300:]  # type: ignore[union-attr]
            raise EngineError(f"ffmpeg failed to encode the audio: {error}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        close = getattr(pieces, "close", None)
        if close is not None:
            close()


# -- transcriptions ---------------------------------------------------------------------------------


class TranscriptionRequest(OpenAIRequest):
    """The form fields of /v1/audio/transcriptions (multipart/form-data, with the audio as ``file``)."""

    model: str = Field(description="An installed ASR model, or whisper-1 for the default one.")
    language: Annotated[str, Field(pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})?$")] | None = None
    response_format: Literal["json", "text", "verbose_json", "srt", "vtt"] = "json"
    prompt: str | None = None
    temperature: float | None = None


def decode_audio(data: bytes) -> bytes:
    """Any audio ffmpeg reads, as 16 kHz mono int16 PCM; BadParam naming ``file`` when it is not audio."""
    if not data:
        raise BadParam("file", "the file is empty")
    done = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-i", "pipe:0",
                           "-ac", "1", "-ar", str(ASR_SAMPLE_RATE), "-f", "s16le", "pipe:1"],
                          input=data, capture_output=True, timeout=300)
    if done.returncode or not done.stdout:
        why = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no audio in it"]
        raise BadParam("file", f"the file is not audio ffmpeg can read ({why[0][:200]})")
    return done.stdout


def _asr_model(runtime: Any, model: str) -> str:
    if model in OPENAI_TRANSCRIPTION_MODELS:
        from zishu import settings

        from .session import installed_models

        saved = settings.load().companion_models.get("asr")
        found = saved or next(iter(installed_models(runtime.registry).get("asr", [])), None)
        if found is None:
            raise UnknownModel(f"{model} means the default speech recognition model, and none is installed; "
                               "install one of role asr (Discover)")
        return found
    return find_model(runtime, model, "/v1/audio/transcriptions")["id"]


def transcribe_pcm(runtime: Any, pcm: bytes, model: str, language: str = "auto",
                   progress: Callable[[int, int], None] | None = None) -> dict:
    """16 kHz mono PCM heard by the ASR ``model``: cut into segments by the first installed voice
    detector (else one segment), each transcribed with its times. ``{"text", "segments", "language"
    (as the model tags it, or None), "duration"}``; ``progress(done, total)`` after each segment."""
    from .session import installed_models

    asr = use(runtime, "asr", model).handle
    duration = len(pcm) / 2 / ASR_SAMPLE_RATE
    spans = [(0.0, duration)]
    vads = installed_models(runtime.registry).get("vad", [])
    if vads:
        try:
            found = use(runtime, "vad", vads[0]).handle.speech(pcm)
        except ZishuError:
            found = []
        spans = [(float(a), float(b)) for a, b in found if b > a] or spans
    segments, said, tagged = [], [], None
    for i, (start, end) in enumerate(spans):
        piece = pcm[int(start * ASR_SAMPLE_RATE) * 2:int(end * ASR_SAMPLE_RATE) * 2]
        heard = asr.transcribe(piece, language)
        tagged = tagged or heard.language
        text = heard.text.strip()
        said.append(text)
        segments.append({"id": i, "seek": 0, "start": round(start, 3), "end": round(end, 3), "text": text,
                         "tokens": [], "temperature": 0.0, "avg_logprob": 0.0, "compression_ratio": 0.0,
                         "no_speech_prob": 0.0})
        if progress is not None:
            progress(i + 1, len(spans))
    return {"text": " ".join(t for t in said if t), "segments": segments, "language": tagged,
            "duration": duration}


def transcription(runtime: Any, audio: bytes, request: TranscriptionRequest) -> tuple[str | bytes, str]:
    """The transcript of ``audio`` (the uploaded file's bytes) in ``request.response_format``:
    (body, media type)."""
    model = _asr_model(runtime, request.model)
    pcm = decode_audio(audio)
    language = (request.language or "auto").lower()
    heard = transcribe_pcm(runtime, pcm, model, language)
    text, segments, tagged, duration = heard["text"], heard["segments"], heard["language"], heard["duration"]
    fmt = request.response_format
    if fmt == "text":
        return text + "\n", "text/plain; charset=utf-8"
    if fmt == "srt":
        return _subtitles(segments, ","), "application/x-subrip; charset=utf-8"
    if fmt == "vtt":
        return "WEBVTT\n\n" + _subtitles(segments, ".", numbered=False), "text/vtt; charset=utf-8"
    body: dict = {"text": text}
    if fmt == "verbose_json":
        body = {"task": "transcribe", "language": tagged or (language if language != "auto" else "unknown"),
                "duration": round(duration, 3), "text": text, "segments": segments}
    return json.dumps(body, ensure_ascii=False), "application/json"


def _stamp(seconds: float, mark: str) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}{mark}{ms % 1000:03d}"


def _subtitles(segments: list[dict], mark: str, numbered: bool = True) -> str:
    out = io.StringIO()
    for n, s in enumerate(segments, 1):
        if numbered:
            out.write(f"{n}\n")
        out.write(f"{_stamp(s['start'], mark)} --> {_stamp(s['end'], mark)}\n{s['text']}\n\n")
    return out.getvalue()
