"""The ``gpt-sovits`` engine: a client for a GPT-SoVITS server the user runs (its ``api_v2.py``),
at ``http://127.0.0.1:9880`` unless ``ZISHU_GPT_SOVITS_URL`` says otherwise.

GPT-SoVITS speaks like a reference recording, so a Zishu GPT-SoVITS voice is a folder of reference
clips, one per emotion, listed in ``gpt-sovits.json``::

    {
      "neutral": {"ref_audio": "neutral.wav", "prompt_text": "这是参考音频里说的话。", "prompt_lang": "zh"},
      "happy":   {"ref_audio": "happy.wav",   "prompt_text": "太好了，我们出发吧！",   "prompt_lang": "zh"}
    }

``ref_audio`` is a file in the folder (the server reads it, so it runs on the same machine);
``prompt_text`` is what the clip says (empty for GPT-SoVITS's reference-text-free mode);
``prompt_lang`` defaults to the language of ``prompt_text``. ``emotion`` picks the clip, falling
back to "neutral", then "default", then the first one. Without a folder, ``voice`` may be the path
of a clip.

Each piece of text is one ``POST /tts`` (text, text_lang, ref_audio_path, prompt_text, prompt_lang,
media_type "wav", streaming_mode, speed_factor); the server streams a WAV header, then PCM.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from zishu.engines import AudioChunk, EngineInfo, ModelRef
from zishu.errors import EngineError

from .remote import RemoteEngine, post_stream, server_url
from .text import check_speed, language_of, split_for_speech
from .wav import wav_stream

DEFAULT_URL = "http://127.0.0.1:9880"
URL_ENV = "ZISHU_GPT_SOVITS_URL"
CONFIG = "gpt-sovits.json"
FALLBACK_EMOTIONS = ("neutral", "default")
HOW_TO_START = ("start it in your GPT-SoVITS folder with `python api_v2.py -a 127.0.0.1 -p 9880`, "
                f"or point Zishu to yours with {URL_ENV}=http://HOST:PORT")


@dataclass(frozen=True)
class Reference:
    """A reference clip: the file, what it says, and in which language (None: the text's own)."""

    audio: Path
    text: str = ""
    lang: str | None = None


def read_references(folder: Path) -> dict[str, Reference]:
    """The clips of a voice folder by emotion (lower case), from its ``gpt-sovits.json``."""
    path = folder / CONFIG
    if not path.is_file():
        raise EngineError(f"{folder}: no {CONFIG}; a GPT-SoVITS voice folder lists its reference clips "
                          "there, one per emotion: {\"neutral\": {\"ref_audio\": ..., \"prompt_text\": ..., "
                          "\"prompt_lang\": ...}}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise EngineError(f"{path}: not a readable JSON file ({e})") from None
    if not isinstance(data, dict) or not data:
        raise EngineError(f"{path}: expected an object mapping each emotion to its reference clip")
    references = {}
    for emotion, entry in data.items():
        where = f"{path}: {emotion}"
        if not isinstance(entry, dict):
            raise EngineError(f"{where}: expected an object with ref_audio, prompt_text, prompt_lang")
        audio, text, lang = entry.get("ref_audio"), entry.get("prompt_text", ""), entry.get("prompt_lang")
        if not isinstance(audio, str) or not audio:
            raise EngineError(f"{where}.ref_audio: missing (the reference clip, a file in {folder})")
        clip = (folder / audio).resolve()
        if not clip.is_relative_to(folder.resolve()) or not clip.is_file():
            raise EngineError(f"{where}.ref_audio: {audio!r} is not a file in {folder}")
        if not isinstance(text, str):
            raise EngineError(f"{where}.prompt_text: expected text, got {text!r}")
        if lang is not None and not isinstance(lang, str):
            raise EngineError(f"{where}.prompt_lang: expected a language code such as zh, en, ja, got {lang!r}")
        references[emotion.lower()] = Reference(clip, text, lang or (language_of(text) if text else None))
    return references


class GptSovitsVoice:
    """A GPT-SoVITS server and, when a voice folder was loaded, its reference clips."""

    def __init__(self, url: str, references: dict[str, Reference], name: str | None = None) -> None:
        self.url = url
        self.references = references
        self.name = name

    def voices(self) -> list[str]:
        return [self.name] if self.name else []

    def emotions(self) -> list[str]:
        return list(self.references)

    def reference(self, voice: str | None, emotion: str | None) -> Reference:
        """The clip for ``emotion`` (see the module docstring), or the clip ``voice`` names."""
        if voice is not None and voice != self.name:
            if Path(voice).is_file():
                return Reference(Path(voice).resolve())
            raise EngineError(f"gpt-sovits: voice {voice!r} is neither this voice ({self.name or 'none loaded'}) "
                              "nor a reference clip file")
        if not self.references:
            raise EngineError("gpt-sovits needs a reference clip: load a GPT-SoVITS voice folder (with "
                              f"{CONFIG}) as the model, or pass the path of a WAV as the voice")
        for key in (emotion, *FALLBACK_EMOTIONS):
            if key and key.lower() in self.references:
                return self.references[key.lower()]
        return next(iter(self.references.values()))

    def speak(self, text: str, voice: str | None = None, emotion: str | None = None,
              speed: float = 1.0) -> Iterator[AudioChunk]:
        reference = self.reference(voice, emotion)
        return self._stream(split_for_speech(text), language_of(text), reference, check_speed(speed))

    def _stream(self, pieces: list[str], lang: str, reference: Reference, speed: float) -> Iterator[AudioChunk]:
        for piece in pieces:
            body = {"text": piece, "text_lang": lang, "ref_audio_path": str(reference.audio),
                    "prompt_text": reference.text, "prompt_lang": reference.lang or lang,
                    "media_type": "wav", "streaming_mode": True, "speed_factor": speed}
            answer = post_stream(f"{self.url}/tts", json_body=body, server="GPT-SoVITS", how_to_start=HOW_TO_START)
            rate, pcm = wav_stream(answer, f"the GPT-SoVITS server at {self.url}")
            for samples in pcm:
                yield AudioChunk(pcm=samples, sample_rate=rate)


class GptSovitsEngine(RemoteEngine):
    info = EngineInfo(kind="tts", name="gpt-sovits", formats=(),
                      capabilities=frozenset({"streaming", "emotions"}), needs_model=False,
                      description="A GPT-SoVITS server you run (api_v2.py): speech cloned from a few seconds "
                                  "of reference audio, one clip per emotion.")

    def load(self, model: ModelRef | None = None, device: str = "cpu") -> GptSovitsVoice:
        """``model`` is optional: a voice folder with ``gpt-sovits.json``. ``device`` is the server's business."""
        url = server_url(URL_ENV, DEFAULT_URL)
        if model is None:
            return GptSovitsVoice(url, {})
        folder = model.path if model.path.is_dir() else model.path.parent
        return GptSovitsVoice(url, read_references(folder), model.id or folder.name)
