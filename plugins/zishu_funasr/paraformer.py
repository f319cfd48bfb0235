"""Streaming Paraformer loaded: live partial transcripts as audio arrives, and whole utterances."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator

from zishu.engines import Transcript
from zishu.errors import EngineError

from .audio import join_text, samples_of

CHUNK_SIZE = [0, 10, 5]  # funasr's chunk settings, in 60 ms frames: 600 ms chunks, 300 ms look-ahead
CHUNK_BYTES = CHUNK_SIZE[1] * 960 * 2  # 600 ms of 16 kHz int16
_SETTINGS = {"chunk_size": CHUNK_SIZE, "encoder_chunk_look_back": 4, "decoder_chunk_look_back": 1}


class ParaformerStreaming:
    """``stream(chunks, language)`` yields a partial Transcript (final=False, the text so far) each time
    a 600 ms chunk adds words, while ``chunks`` are still arriving, then a final one once they end.
    Chunks may be any size (even an odd number of bytes, as long as all of them add up to whole
    samples). ``transcribe(pcm, language)`` is the same over a whole utterance.

    ``language`` is accepted for the common interface and not used: a Paraformer model knows one
    language. Its transcripts carry no tags (language, emotion and event are None). Empty audio
    gives an empty Transcript.
    """

    def __init__(self, model) -> None:
        self.model = model  # the funasr.AutoModel
        self._lock = threading.Lock()  # AutoModel keeps per-call settings on itself: one call at a time

    def transcribe(self, pcm: bytes, language: str = "auto") -> Transcript:
        samples = samples_of(pcm)
        return Transcript(text=self._decode(samples, {}, final=True) if len(samples) else "")

    def stream(self, chunks: Iterable[bytes], language: str = "auto") -> Iterator[Transcript]:
        cache: dict = {}  # funasr's state for this stream
        pending = bytearray()
        text, heard = "", 0
        for chunk in chunks:
            pending += chunk
            heard += len(chunk)
            while len(pending) >= CHUNK_BYTES:
                words = self._decode(samples_of(bytes(pending[:CHUNK_BYTES])), cache, final=False)
                del pending[:CHUNK_BYTES]
                if words:
                    text = join_text(text, words)
                    yield Transcript(text=text, final=False)
        if len(pending) % 2:
            raise EngineError(f"audio must be 16-bit PCM (2 bytes a sample): the stream ended {len(pending)} bytes "
                              "into a 600 ms chunk, an odd count")
        if heard:
            text = join_text(text, self._decode(samples_of(bytes(pending)), cache, final=True))
        yield Transcript(text=text)

    def _decode(self, samples, cache: dict, final: bool) -> str:
        with self._lock:
            result = self.model.generate(input=samples, cache=cache, is_final=final, **_SETTINGS)
        return result[0]["text"] if result else ""
