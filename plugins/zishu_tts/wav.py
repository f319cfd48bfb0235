"""Audio helpers shared by the engines: a whole WAV file to PCM (``pcm_of_wav``), a WAV arriving
in pieces over HTTP to its rate and a stream of PCM (``wav_stream``), and keeping streamed int16
PCM whole samples (``whole_samples``).

Everything here speaks 16-bit little-endian mono PCM, what ``AudioChunk`` carries.
"""

from __future__ import annotations

import io
import struct
import wave
from collections.abc import Iterable, Iterator
from itertools import chain

from zishu.errors import EngineError

_MAX_HEADER = 64 * 1024  # a WAV whose data has not started by then is not a stream we can play


def pcm_of_wav(data: bytes, source: str) -> tuple[bytes, int]:
    """(pcm, sample rate) of a whole 16-bit mono WAV; ``source`` names it in errors. Streamed WAVs
    often carry a made-up data size (espeak-ng's ``--stdout``): the samples run to the end."""
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            if w.getsampwidth() != 2 or w.getnchannels() != 1:
                raise EngineError(f"{source} gave {8 * w.getsampwidth()}-bit audio with {w.getnchannels()} "
                                  "channels; expected 16-bit mono")
            return w.readframes(w.getnframes()), w.getframerate()
    except (wave.Error, EOFError) as e:
        raise EngineError(f"{source} did not give a WAV ({e})") from None


def wav_stream(pieces: Iterable[bytes], source: str) -> tuple[int, Iterator[bytes]]:
    """Read a WAV header off ``pieces`` (bytes as they arrive); return its sample rate and the PCM
    that follows, piece by piece as it arrives, in whole samples. The data size in the header is
    ignored: a streaming server cannot know it when it sends the header."""
    pieces = iter(pieces)
    buffer = b""
    for piece in pieces:
        buffer += piece
        header = _parse_header(buffer, source)
        if header is not None:
            rate, data_start = header
            return rate, whole_samples(chain([buffer[data_start:]], pieces))
    if not buffer:
        raise EngineError(f"{source} answered with no audio")
    raise EngineError(f"{source} ended its answer inside the WAV header ({len(buffer)} bytes)")


def whole_samples(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """``pieces`` of int16 PCM re-cut so that none splits a sample (the network cuts anywhere)."""
    odd = b""
    for piece in pieces:
        piece = odd + piece
        cut = len(piece) - len(piece) % 2
        odd = piece[cut:]
        if cut:
            yield piece[:cut]


def _parse_header(buffer: bytes, source: str) -> tuple[int, int] | None:
    """(sample rate, offset of the first sample) once ``buffer`` holds the whole header, else None."""
    if len(buffer) < 12:
        return None
    if buffer[:4] != b"RIFF" or buffer[8:12] != b"WAVE":
        raise EngineError(f"{source} answered with something that is not a WAV: {buffer[:16]!r}")
    position, rate = 12, None
    while len(buffer) >= position + 8:
        chunk, size = buffer[position:position + 4], struct.unpack("<I", buffer[position + 4:position + 8])[0]
        body = position + 8
        if chunk == b"data":
            if rate is None:
                raise EngineError(f"{source} sent a WAV whose data comes before its format")
            return rate, body
        if len(buffer) < body + size:
            break
        if chunk == b"fmt ":
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", buffer[body:body + 16])
            if tag not in (1, 0xFFFE) or bits != 16 or channels != 1:
                raise EngineError(f"{source} sent {bits}-bit audio with {channels} channels (format {tag}); "
                                  "expected 16-bit mono PCM")
        position = body + size + size % 2
    if len(buffer) > _MAX_HEADER:
        raise EngineError(f"{source} sent a WAV header longer than {_MAX_HEADER} bytes")
    return None
