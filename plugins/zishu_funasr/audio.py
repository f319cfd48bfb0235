"""Audio in and text out: 16-bit PCM bytes to samples (rejecting what is not PCM), long audio cut
into pieces a model takes at once, and pieces of text joined back together."""

from __future__ import annotations

import unicodedata

import numpy as np

from zishu.engines import ASR_SAMPLE_RATE
from zishu.errors import EngineError

MIN_SAMPLES = 400  # one 25 ms analysis frame: shorter audio is padded with silence to this
_QUIET_FRAME = ASR_SAMPLE_RATE // 20  # 50 ms, the unit a cut is placed in


def samples_of(pcm) -> np.ndarray:
    """int16 little-endian mono PCM as float32 samples in [-1, 1)."""
    if not isinstance(pcm, (bytes, bytearray, memoryview)):
        raise EngineError(f"audio must be bytes of 16-bit PCM, not {type(pcm).__name__}")
    if len(pcm) % 2:
        raise EngineError(f"audio must be 16-bit PCM (2 bytes a sample): {len(pcm)} bytes is an odd count")
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768


def padded(samples: np.ndarray) -> np.ndarray:
    return samples if len(samples) >= MIN_SAMPLES else np.pad(samples, (0, MIN_SAMPLES - len(samples)))


def quiet_cuts(samples: np.ndarray, start: int, end: int, limit: int) -> list[tuple[int, int]]:
    """``samples[start:end]`` as (start, end) pieces of at most ``limit`` samples, each longer stretch
    cut at the quietest 50 ms in the last fifth of the window, where a word is least likely to be split."""
    pieces = []
    while end - start > limit:
        look = start + limit - (limit // 5) // _QUIET_FRAME * _QUIET_FRAME
        frames = samples[look:start + limit].reshape(-1, _QUIET_FRAME)
        cut = look + int(np.argmin(np.square(frames).sum(axis=1))) * _QUIET_FRAME + _QUIET_FRAME // 2
        pieces.append((start, cut))
        start = cut
    pieces.append((start, end))
    return pieces


def speech_pieces(samples: np.ndarray, segments: list[tuple[float, float]], limit: int) -> list[tuple[int, int]]:
    """Speech ``segments`` (seconds) as (start, end) sample ranges for the recogniser: neighbours grouped
    while a group spans at most ``limit`` samples (more context, fewer calls), a longer segment cut."""
    pieces: list[tuple[int, int]] = []
    for begin, finish in segments:
        lo, hi = max(0, int(begin * ASR_SAMPLE_RATE)), min(len(samples), int(finish * ASR_SAMPLE_RATE))
        for a, b in quiet_cuts(samples, lo, hi, limit) if hi > lo else ():
            if pieces and b - pieces[-1][0] <= limit:
                pieces[-1] = (pieces[-1][0], b)
            else:
                pieces.append((a, b))
    return pieces


def join_text(left: str, right: str) -> str:
    """Two stretches of transcript as one: a space between them unless either side is CJK (wide) text."""
    left, right = left.strip(), right.strip()
    if not left or not right:
        return left or right
    wide = any(unicodedata.east_asian_width(c) in "WF" for c in (left[-1], right[0]))
    return left + ("" if wide else " ") + right
