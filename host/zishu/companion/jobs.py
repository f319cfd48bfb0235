"""The ``speech``, ``transcription`` and ``completion`` job types: TTS, ASR and an LLM's reply as
jobs, so that on a cluster (``ZISHU_QUEUE=redis://…``) they run on the node that has the model.

An internal plugin (``trylast``), like the studio's ``image`` job. Each is ``remote`` and routed by
its model (``voice`` for speech, ``model`` for the others): only a node that has it takes the job,
and one that finds it missing answers MODEL_NOT_AVAILABLE, so the app sends it elsewhere. A model
given as a path stays on the app's own machine. Parameters are checked at submit
(``companion.job_params``), so ``POST /api/jobs`` refuses bad input naming the field; a model that
neither this app nor a live node of its cluster has is refused there too (MODEL_NOT_AVAILABLE).

    speech          → {"files": [audio], "audio", "format", "media_type", "sample_rate", "seconds",
                       "size", "sha256", "voice", "speaker"}; the audio is written under
                       ZISHU_HOME/audio/speech/ and, from another node, comes back as a result file
    transcription   → {"text", "segments", "language", "duration", "model"}; the audio is copied at
                       submit to ZISHU_HOME/audio/inputs/ and travels to the worker with the task
                       (``inputs``: through Redis, sha256 checked); removed once the job succeeds
    completion      → {"text", "finish_reason", "usage": {"prompt_tokens", "completion_tokens",
                       "total_tokens"}, "model"}
"""

from __future__ import annotations

import hashlib
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from zishu.audio import write_wav
from zishu.cluster.relay import safe_relative
from zishu.cluster.routing import catalog_model, holds
from zishu.engines import use
from zishu.engines.kinds import ASR_SAMPLE_RATE, AudioChunk, ChatOptions, token_counter
from zishu.engines.resolve import resolve_model
from zishu.errors import ChecksumMismatch, EngineError, ResourceNotAvailable, UsageError
from zishu.files import write_atomic
from zishu.hookspecs import hookimpl

from .brain import MESSAGE_FRAME
from .job_params import CompletionParams, SpeechParams, TranscriptionParams
from .openai_compat import BadParam, parsed
from .openai_media import FFMPEG_FORMATS, decode_audio, transcribe_pcm

SPEECH_FOLDER = "audio/speech"  # speech jobs' audio, under ZISHU_HOME
INPUT_FOLDER = "audio/inputs"  # transcription jobs' audio, until the job succeeds
MEDIA_TYPES = {"wav": "audio/wav", **{fmt: FFMPEG_FORMATS[fmt][1] for fmt in ("mp3", "opus", "aac", "flac")}}

Service = Callable[[str], Any]


def needs_model(service: Service, name: str, role: str, field: str) -> None:
    """Refuse at submit a model that is of another role here, or that neither this app nor a live node
    of its cluster has (ResourceNotAvailable naming ``field``); nothing is downloaded."""
    registry = service("engine_host").registry
    try:
        ref = resolve_model(name, registry)
    except ResourceNotAvailable as e:
        model = catalog_model(name)
        if model is not None and holds(service("cluster_models"), model):
            return  # a node has it: that node checks the rest
        raise ResourceNotAvailable(f'"{field}": {e}') from None
    kind = (registry.load().get(ref.id) or {}).get(ref.version, {}).get("kind") if ref.id else None
    if kind not in (None, "model", "voice"):
        raise BadParam(field, f'"{field}": {ref.label} is a {kind}, not a model'
                              + (" (name its voice)" if role == "tts" else ""))
    if ref.role and ref.role != role:
        raise BadParam(field, f'"{field}": {ref.label} is a {ref.role} model, not {role}')


# -- speech -----------------------------------------------------------------------------------------


def check_speech(params: dict, service: Service) -> dict:
    asked = parsed(SpeechParams, params).checked()
    needs_model(service, asked.voice, "tts", "voice")
    return asked.model_dump(exclude_none=True)


def speak(ctx: Any, text: str, voice: str, speaker: str | None = None, format: str = "wav",
          speed: float = 1.0) -> dict:
    ctx.progress(0, None, "loading the voice")
    synthesizer = use(ctx.service("engine_host"), "tts", voice).handle
    if speaker is not None and speaker not in synthesizer.voices():
        raise BadParam("speaker", f'"speaker": {voice} has no voice {speaker!r}; its voices: '
                                  f"{', '.join(synthesizer.voices()) or 'none'}")
    relative = f"{SPEECH_FOLDER}/{uuid.uuid4().hex}.{format}"
    target = Path(ctx.home) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    made = [0.0]

    def chunks() -> Iterator[AudioChunk]:
        for chunk in synthesizer.speak(text, voice=speaker, speed=float(speed)):
            ctx.check()
            made[0] += chunk.seconds
            ctx.progress(made[0], None, f"{made[0]:.1f} s of audio")
            yield chunk

    if format == "wav":
        rate, seconds = write_wav(target, chunks())
    else:
        rate, seconds = _encoded(target, chunks(), format)
    data = target.read_bytes()
    ctx.progress(seconds, seconds, "done")
    return {"files": [relative], "audio": relative, "format": format, "media_type": MEDIA_TYPES[format],
            "sample_rate": rate, "seconds": round(seconds, 3), "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(), "voice": voice, "speaker": speaker}


def _encoded(target: Path, chunks: Iterator[AudioChunk], fmt: str) -> tuple[int, float]:
    """The speech encoded by ffmpeg into ``target`` (written whole or not at all): (rate, seconds)."""
    pieces = list(chunks)
    if not pieces:
        raise UsageError("the engine produced no audio (empty text?)")
    rate = pieces[0].sample_rate
    pcm = b"".join(p.pcm for p in pieces)
    done = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-f", "s16le", "-ar",
                           str(rate), "-ac", "1", "-i", "pipe:0", *FFMPEG_FORMATS[fmt][0], "pipe:1"],
                          input=pcm, capture_output=True, timeout=600)
    if done.returncode or not done.stdout:
        raise EngineError(f"ffmpeg failed to encode the audio as {fmt}: "
                          f"{done.stderr.decode(errors='replace').strip()[-300:]}")
    write_atomic(target, done.stdout)
    return rate, len(pcm) / 2 / rate


# -- transcription ----------------------------------------------------------------------------------


def default_asr(host: Any) -> str | None:
    """Settings' speech recognition model, else the first installed one."""
    from zishu import settings

    from .session import installed_models

    return settings.load().companion_models.get("asr") or next(iter(installed_models(host.registry).get("asr", [])),
                                                               None)


def check_transcription(params: dict, service: Service) -> dict:
    """Check the request and copy its audio into ZISHU_HOME/audio/inputs (the job reads that copy,
    and a worker on another node gets it through Redis)."""
    asked = parsed(TranscriptionParams, params)
    data, suffix = asked.data()
    field = "path" if asked.path is not None else "audio"
    host = service("engine_host")
    model = asked.model or default_asr(host)
    if model is None:
        raise BadParam("model", '"model": no speech recognition model is installed here; name one (a node of '
                                "the cluster may have it) or install one of role asr")
    needs_model(service, model, "asr", "model")
    try:
        decode_audio(data)
    except BadParam as e:
        raise BadParam(field, f'"{field}": {e}'.replace(": the file", ": it")) from None
    relative = f"{INPUT_FOLDER}/{uuid.uuid4().hex}{suffix}"
    write_atomic(Path(host.home) / relative, data)
    return {"input": relative, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "model": model,
            **({"language": asked.language} if asked.language else {})}


def transcribe(ctx: Any, input: str, sha256: str, size: int, model: str, language: str | None = None) -> dict:
    path = Path(ctx.home) / safe_relative(input)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"the audio to transcribe ({input}) is no longer in {ctx.home}") from None
    got = hashlib.sha256(data).hexdigest()
    if got != sha256 or len(data) != size:
        raise ChecksumMismatch(f"the audio to transcribe ({input}): sha256 {got}, expected {sha256}")
    pcm = decode_audio(data)
    ctx.progress(0, None, "loading the model")

    def progress(done: int, total: int) -> None:
        ctx.check()
        ctx.progress(done, total, f"segment {done} of {total}")

    heard = transcribe_pcm(ctx.service("engine_host"), pcm, model, (language or "auto").lower(), progress)
    if not getattr(ctx, "remote", False):
        path.unlink(missing_ok=True)  # done with it (a remote job's copy goes in ``transcribed``)
    return {"text": heard["text"], "segments": heard["segments"], "language": heard["language"],
            "duration": round(len(pcm) / 2 / ASR_SAMPLE_RATE, 3), "model": model, "input": input}


def transcribed(result: dict, service: Service) -> dict:
    """On the app, once a remote transcription succeeded: its copy of the audio is no longer needed."""
    home = Path(service("engine_host").home)
    (home / safe_relative(str(result.get("input")))).unlink(missing_ok=True)
    return result


# -- completion -------------------------------------------------------------------------------------


def check_completion(params: dict, service: Service) -> dict:
    asked = parsed(CompletionParams, params).checked()
    needs_model(service, asked.model, "llm", "model")
    return asked.model_dump(exclude_none=True)


def complete(ctx: Any, model: str, messages: list[dict] | None = None, prompt: str | None = None,
             max_tokens: int = 256, temperature: float = 0.8, top_p: float | None = None,
             seed: int | None = None, stop: list[str] | None = None) -> dict:
    turns = CompletionParams(model=model, messages=messages, prompt=prompt).turns()  # type: ignore[arg-type]
    ctx.progress(0, max_tokens, "loading the model")
    llm = use(ctx.service("engine_host"), "llm", model).handle
    chosen: dict[str, Any] = {"top_p": float(top_p)} if top_p is not None else {}
    options = ChatOptions(max_tokens=max_tokens, temperature=float(temperature), seed=seed,
                          stop=tuple(stop or ()), cancelled=ctx.cancelled, **chosen)
    pieces: list[str] = []
    reply = llm.chat(turns, options)
    while True:
        try:
            pieces.append(next(reply))
        except StopIteration as end:
            finish = end.value
            break
        ctx.progress(len(pieces), max_tokens, f"{len(pieces)} pieces")
    ctx.check()  # a reply cut short by the user's cancel is not a result
    text = "".join(pieces)
    count = token_counter(llm).count
    prompt_tokens = sum(count(t["content"]) for t in turns) + count(MESSAGE_FRAME) * (len(turns) + 1)
    completion_tokens = count(text) if text else 0
    return {"text": text, "finish_reason": finish if finish in ("stop", "length") else "stop", "model": model,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


# -- registration -----------------------------------------------------------------------------------


def _short(text: object) -> str:
    said = " ".join(str(text or "").split())
    return said[:60] + ("…" if len(said) > 60 else "")


def _completion_title(params: dict) -> str:
    last = (params.get("messages") or [{}])[-1].get("content") if params.get("messages") else params.get("prompt")
    return f"Complete: {_short(last)}"


@hookimpl(trylast=True)
def register_job_types(register) -> None:
    register("speech", speak, title=lambda p: f"Speak: {_short(p.get('text'))}", check=check_speech, remote=True,
             model=lambda p: p.get("voice"))
    register("transcription", transcribe, title=lambda p: f"Transcribe with {p.get('model')}",
             check=check_transcription, remote=True, model=lambda p: p.get("model"),
             inputs=lambda p: [p["input"]], arrived=transcribed)
    register("completion", complete, title=_completion_title, check=check_completion, remote=True,
             model=lambda p: p.get("model"))


__all__ = ["check_completion", "check_speech", "check_transcription", "complete", "register_job_types", "speak",
           "transcribe"]
