"""FSMN voice activity detection loaded: where in a recording someone speaks."""

from __future__ import annotations

import threading

from .audio import samples_of


class FsmnVad:
    """``speech(pcm)``: 16 kHz int16 mono PCM -> the speech segments in it, as (start_s, end_s) in
    order; [] for empty or silent audio."""

    def __init__(self, model) -> None:
        self.model = model  # the funasr.AutoModel
        self._lock = threading.Lock()  # AutoModel keeps per-call settings on itself: one call at a time

    def speech(self, pcm: bytes) -> list[tuple[float, float]]:
        samples = samples_of(pcm)
        if not len(samples):
            return []
        with self._lock:
            result = self.model.generate(input=samples)
        return [(start / 1000, end / 1000) for start, end in result[0]["value"]] if result else []
