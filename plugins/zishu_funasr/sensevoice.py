"""SenseVoiceSmall loaded: whole utterances of any length, with language, emotion and audio-event tags."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator

from zishu.engines import ASR_SAMPLE_RATE, Transcript
from zishu.errors import EngineError

from .audio import padded, quiet_cuts, samples_of, speech_pieces
from .tags import merged, parse_rich

LANGUAGES = ("auto", "zh", "en", "yue", "ja", "ko")
MAX_PIECE = 30 * ASR_SAMPLE_RATE  # SenseVoice is trained on utterances up to about 30 s


class SenseVoice:
    """``transcribe(pcm, language)``: 16 kHz int16 mono PCM of any length -> one Transcript with
    SenseVoice's tags parsed (``tags``), punctuated and with numbers written as digits (its ITN).

    Long audio is cut into pieces of at most 30 s: at the speech segments a voice activity model
    finds when one is set (the model folder's ``vad/`` model, or ``use_vad``), else at quiet moments;
    the pieces' texts are joined, and each tag is the one most pieces carry. Empty audio, and audio
    in which the voice activity model hears no speech, give an empty Transcript (text "").
    ``language`` is "auto" or one of zh, en, yue, ja, ko (a region, as in "zh-CN", is ignored).
    """

    def __init__(self, model, vad=None) -> None:
        self.model = model  # the funasr.AutoModel
        self._vad = vad
        self._lock = threading.Lock()  # AutoModel keeps per-call settings on itself: one call at a time

    def use_vad(self, vad) -> None:
        """Cut long audio at the speech segments of ``vad``: any loaded vad handle (``speech(pcm)`` ->
        [(start_s, end_s)]), such as the fsmn-vad engine's; None goes back to cutting at quiet moments."""
        self._vad = vad

    def transcribe(self, pcm: bytes, language: str = "auto") -> Transcript:
        code = _language_code(language)
        samples = samples_of(pcm)
        if not len(samples):
            return Transcript(text="")
        if self._vad is not None:
            pieces = speech_pieces(samples, self._vad.speech(bytes(pcm)), MAX_PIECE)
        else:
            pieces = quiet_cuts(samples, 0, len(samples), MAX_PIECE)
        if not pieces:
            return Transcript(text="")
        with self._lock:
            results = self.model.generate(input=[padded(samples[a:b]) for a, b in pieces],
                                           language=code, use_itn=True)
        return merged([parse_rich(result["text"]) for result in results])

    def stream(self, chunks: Iterable[bytes], language: str = "auto") -> Iterator[Transcript]:
        """SenseVoice is not a streaming model: this reads ``chunks`` to their end, then yields one
        final Transcript of all of it (no partials)."""
        yield self.transcribe(b"".join(chunks), language)


def _language_code(language: str | None) -> str:
    code = (language or "auto").split("-")[0].lower()
    if code not in LANGUAGES:
        raise EngineError(f"SenseVoice does not know the language {language!r}; it knows {', '.join(LANGUAGES)}")
    return code
