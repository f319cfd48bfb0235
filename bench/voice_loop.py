"""The companion's voice loop, turn by turn: speech fed in real time as the window sends it (100 ms
pieces) → end of turn → ASR → brain and memory → LLM → sentences → speech, through ``Session``.

    python bench/voice_loop.py [--turns 8] [--llm ID_OR_PATH] [--asr ID_OR_PATH] [--vad ID_OR_PATH]

With no options it builds the tests' tiny models (a scripted GGUF, a tiny SenseVoice and FSMN VAD;
espeak-ng speaks). ``--llm``/``--asr``/``--vad`` take real models (a path, or an id installed in
ZISHU_HOME) to measure a real stack, e.g. on a GPU machine.

Prints, per stage, milliseconds from the end of the user's speech (p50 / p95 over the turns):

    endpoint        the listener's silence wait ended (end_silence_ms, 600 ms by default: a setting)
    transcript      the ASR finished
    first_token     the LLM's first piece     first_sentence   the first piece handed to speech
    first_audio     the first audio chunk     generated        the reply fully generated

and the host's own overhead: wall time minus the time spent inside model calls (VAD, ASR, embedding,
LLM, TTS; overlapping calls counted once), from the end of the endpoint wait to the first audio
chunk, and over the whole turn. The endpoint wait is not overhead: it is how long silence must last.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "host"), str(ROOT / "plugins"), str(ROOT / "tests")]

PIECE = 3200  # bytes: 100 ms of 16 kHz int16


class ModelTime:
    """Records (start, end, what) of every model call made through the wrapped handles."""

    def __init__(self) -> None:
        self.spans: list[tuple[float, float, str]] = []
        self._lock = threading.Lock()

    def add(self, start: float, end: float, what: str) -> None:
        with self._lock:
            self.spans.append((start, end, what))

    def call(self, fn, what: str):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(start, time.perf_counter(), what)
        return timed

    def stream(self, fn, what: str):
        """For a method returning an iterator: each ``next`` is model time."""
        def timed(*args, **kwargs):
            start = time.perf_counter()
            pieces = iter(fn(*args, **kwargs))
            self.add(start, time.perf_counter(), what)
            while True:
                start = time.perf_counter()
                try:
                    piece = next(pieces)
                except StopIteration:
                    self.add(start, time.perf_counter(), what)
                    return
                self.add(start, time.perf_counter(), what)
                yield piece
        return timed

    def within(self, start: float, end: float, leaving_out: str = "vad") -> float:
        """Seconds of model time inside [start, end], overlapping calls counted once. The VAD is left
        out: after the endpoint it runs beside the turn (listening for barge-in), not on its path."""
        clipped = sorted((max(a, start), min(b, end)) for a, b, what in self.spans
                         if b > start and a < end and what != leaving_out)
        total, reach = 0.0, start
        for a, b in clipped:
            if b > reach:
                total += b - max(a, reach)
                reach = b
        return total


def wrap(handle, timer: ModelTime, what: str, calls=(), streams=()):
    for name in calls:
        setattr(handle, name, timer.call(getattr(handle, name), what))
    for name in streams:
        setattr(handle, name, timer.stream(getattr(handle, name), what))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)  # nearest rank
    return ordered[max(0, math.ceil(len(ordered) * q) - 1)] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--llm"), parser.add_argument("--asr"), parser.add_argument("--vad")
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        os.environ.setdefault("ZISHU_HOME", str(tmp / "home"))
        from tiny_companion import install_companion, write_companion_models
        from tiny_funasr import speech_wav
        from zishu.companion.brain import Character
        from zishu.companion.session import Session, open_companion
        from zishu.engines.kinds import ChatOptions
        from zishu.runtime import Runtime

        runtime = Runtime(Path(os.environ["ZISHU_HOME"]))
        if "acme/mei" not in runtime.registry.load():
            install_companion(runtime.home, write_companion_models(tmp / "models"))
        speech = speech_wav("hello there, how are you today", tmp / "hello.wav", voice="en")
        started = time.perf_counter()
        companion = open_companion(runtime, Character.installed(runtime.registry, "acme/mei"),
                                   models={"llm": args.llm, "asr": args.asr, "vad": args.vad})
        print(f"loaded {companion.models} in {time.perf_counter() - started:.2f} s")
        talk = companion.conversation
        talk.options = ChatOptions(max_tokens=args.max_tokens, temperature=0.0, seed=1)
        timer = ModelTime()
        wrap(talk.llm, timer, "llm", streams=["chat"])
        wrap(talk.tts, timer, "tts", streams=["speak"])
        wrap(companion.asr, timer, "asr", calls=["transcribe"])
        if companion.vad is not None:
            wrap(companion.vad, timer, "vad", calls=["speech"])
        if talk.memory is not None:
            talk.memory.embed = timer.call(talk.memory.embed, "embedding")
        session = Session(companion)

        arrivals: list[tuple[float, dict]] = []  # every event with when it reached the window's side
        reader = threading.Thread(
            target=lambda: arrivals.extend((time.perf_counter(), e) for e in session.events() if e), daemon=True
        )
        reader.start()
        turns = []
        for turn in range(args.turns):
            arrivals.clear()
            audio = bytes(PIECE * 3) + speech + bytes(PIECE * 10)
            t0 = time.perf_counter()
            for i, at in enumerate(range(0, len(audio), PIECE)):  # in real time, as the window sends it
                time.sleep(max(0.0, t0 + i * 0.1 - time.perf_counter()))
                session.hear(audio[at:at + PIECE])
            while not any(e["type"] == "latency" for _, e in list(arrivals)):
                time.sleep(0.01)
            first_audio = next(t for t, e in arrivals if e["type"] == "audio")
            done, latency = next((t, e["latency"]) for t, e in arrivals if e["type"] == "done")
            endpoint = first_audio - (latency["first_audio"] - latency["endpoint"]) / 1000
            turns.append({**latency,
                          "overhead_first_audio": (first_audio - endpoint - timer.within(endpoint, first_audio)) * 1000,
                          "overhead_turn": (done - endpoint - timer.within(endpoint, done)) * 1000})
            print(f"turn {turn + 1}: " + ", ".join(f"{k} {v:.0f}" for k, v in turns[-1].items()) + " ms", flush=True)
        session.close()

        print(f"\n{'stage (ms from end of speech)':<34}{'p50':>9}{'p95':>9}")
        for stage in ("endpoint", "transcript", "first_token", "first_sentence", "first_audio", "generated"):
            values = [t[stage] for t in turns if stage in t]
            print(f"{stage:<34}{pct(values, .5):>9.1f}{pct(values, .95):>9.1f}")
        after_endpoint = [t["first_audio"] - t["endpoint"] for t in turns]
        print(f"{'first audio after the endpoint':<34}{pct(after_endpoint, .5):>9.1f}{pct(after_endpoint, .95):>9.1f}")
        print(f"\n{'host overhead (ms, not model time)':<34}{'p50':>9}{'p95':>9}")
        overheads = (("overhead_first_audio", "endpoint → first audio"), ("overhead_turn", "endpoint → reply done"))
        for key, label in overheads:
            values = [t[key] for t in turns]
            print(f"{label:<34}{pct(values, .5):>9.1f}{pct(values, .95):>9.1f}")
        print(f"(median of {len(turns)} turns: {statistics.median(t['overhead_turn'] for t in turns):.1f} ms a turn; "
              "target < 50 ms)")
        runtime.models.unload()


if __name__ == "__main__":
    main()
