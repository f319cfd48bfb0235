"""The ``cosyvoice`` engine: a client for CosyVoice's own FastAPI server
(``runtime/python/fastapi/server.py`` in the CosyVoice repository), at ``http://127.0.0.1:50000``
unless ``ZISHU_COSYVOICE_URL`` says otherwise.

Each piece of text is one ``POST /inference_sft`` with the form fields ``tts_text`` and ``spk_id``
(one of the model's built-in speakers); the server streams raw int16 mono PCM at the model's rate
and says nothing about that rate, so it comes from ``ZISHU_COSYVOICE_SAMPLE_RATE``: 22050 by
default, CosyVoice-300M-SFT's (the model with built-in speakers); CosyVoice 2 and 3 models speak at
24000. The server takes no speed, so ``speed`` must stay 1; ``emotion`` is ignored.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from zishu.engines import AudioChunk, EngineInfo, ModelRef
from zishu.errors import EngineError

from .remote import RemoteEngine, post_stream, server_url
from .text import language_of, split_for_speech
from .wav import whole_samples

DEFAULT_URL = "http://127.0.0.1:50000"
URL_ENV = "ZISHU_COSYVOICE_URL"
RATE_ENV = "ZISHU_COSYVOICE_SAMPLE_RATE"
DEFAULT_RATE = 22050
# CosyVoice-300M-SFT's built-in speakers (its list_available_spks()); the server cannot list them.
SPEAKERS = ("中文女", "中文男", "日语男", "粤语女", "英文女", "英文男", "韩语女")
_DEFAULT_SPEAKERS = {"zh": "中文女", "ja": "日语男", "ko": "韩语女"}  # by language_of(text); else 英文女
HOW_TO_START = ("start it in your CosyVoice folder with `cd runtime/python/fastapi && python server.py "
                f"--port 50000 --model_dir pretrained_models/CosyVoice-300M-SFT`, or point Zishu to yours "
                f"with {URL_ENV}=http://HOST:PORT")


def sample_rate() -> int:
    raw = os.environ.get(RATE_ENV, str(DEFAULT_RATE))
    if not raw.strip().isdigit() or not 8000 <= int(raw) <= 192000:
        raise EngineError(f"{RATE_ENV}={raw!r} is not a sample rate in Hz "
                          "(CosyVoice-300M: 22050, CosyVoice 2/3: 24000)")
    return int(raw)


class CosyVoiceServer:
    """A CosyVoice FastAPI server: its URL, the rate it speaks at, the speaker used when none is named."""

    def __init__(self, url: str, rate: int, speaker: str | None = None) -> None:
        self.url = url
        self.rate = rate
        self.speaker = speaker  # a catalog voice's spec.speaker

    def voices(self) -> list[str]:
        return list(SPEAKERS)

    def speak(self, text: str, voice: str | None = None, emotion: str | None = None,
              speed: float = 1.0) -> Iterator[AudioChunk]:
        """Audio of ``text`` piece by piece in speaker ``voice`` (any spk_id the server knows)."""
        if float(speed) != 1.0:
            raise EngineError("cosyvoice: the CosyVoice server has no speed setting; use speed 1")
        speaker = voice or self.speaker or _DEFAULT_SPEAKERS.get(language_of(text), "英文女")
        return self._stream(split_for_speech(text), speaker)

    def _stream(self, pieces: list[str], speaker: str) -> Iterator[AudioChunk]:
        for piece in pieces:
            answer = post_stream(f"{self.url}/inference_sft", form={"tts_text": piece, "spk_id": speaker},
                                 server="CosyVoice", how_to_start=HOW_TO_START)
            for samples in whole_samples(answer):
                yield AudioChunk(pcm=samples, sample_rate=self.rate)


class CosyVoiceEngine(RemoteEngine):
    info = EngineInfo(kind="tts", name="cosyvoice", formats=(),
                      capabilities=frozenset({"streaming", "voices"}), needs_model=False,
                      description="A CosyVoice FastAPI server you run: the built-in speakers of "
                                  "CosyVoice-300M-SFT, in Chinese, English, Japanese, Cantonese and Korean.")

    def load(self, model: ModelRef | None = None, device: str = "cpu") -> CosyVoiceServer:
        """``model`` is optional: a catalog voice with ``spec.engine: cosyvoice`` names its ``speaker``."""
        speaker = model.spec.get("speaker") if model is not None else None
        return CosyVoiceServer(server_url(URL_ENV, DEFAULT_URL), sample_rate(), speaker)
