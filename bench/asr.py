"""ASR figures through the engine API (zishu.engines.use → transcribe / stream) on tiny random-weight
FunASR models built with funasr's own classes, fed with speech espeak-ng makes offline.

    python bench/asr.py [--dim 32] [--rounds 5]

Prints the load time, then per call: SenseVoiceSmall on 4 s, 30 s and 70 s of speech (median
seconds and the real-time factor), the same 70 s cut by the FSMN VAD, and streaming Paraformer's
latency from a 600 ms chunk arriving to its partial coming out. With random weights the text is
noise; the figures are the pipeline's (features, encoder, decoding, joining) at this model size.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "host"), str(ROOT / "plugins"), str(ROOT / "tests")]

RATE = 16000


def median_seconds(call, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=32, help="encoder width of the random models")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from tiny_funasr import speech_wav, write_tiny_fsmn_vad, write_tiny_paraformer_streaming, write_tiny_sensevoice
    from zishu.engines import use
    from zishu.runtime import Runtime

    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        os.environ["ZISHU_HOME"] = str(tmp / "home")
        sentence = speech_wav("今天天气很好，我们一起去公园散步吧。", tmp / "s.wav")
        pause = bytes(2 * RATE // 2)  # half a second of silence
        long = (sentence + pause) * 40
        clips = {"4 s": sentence[: 2 * RATE * 4], "30 s": long[: 2 * RATE * 30], "70 s": long[: 2 * RATE * 70]}

        runtime = Runtime()
        started = time.perf_counter()
        import funasr  # noqa: F401 - timed on its own: it is most of a first load

        print(f"import funasr: {time.perf_counter() - started:.2f} s")
        use(runtime, "asr", str(write_tiny_sensevoice(tmp / "sv", dim=args.dim)), engine="funasr")  # written
        for name, loader in (("SenseVoiceSmall", lambda: use(runtime, "asr", str(tmp / "sv"), engine="funasr")),):
            runtime.models.unload()
            print(f"load {name}: {median_seconds(loader, 1) * 1000:.0f} ms (dim {args.dim})")
        sensevoice: Any = use(runtime, "asr", str(tmp / "sv"), engine="funasr").handle  # funasr's: it has use_vad
        for label, pcm in clips.items():
            seconds = median_seconds(partial(sensevoice.transcribe, pcm), args.rounds)
            audio = len(pcm) / 2 / RATE
            print(f"SenseVoice {label:>5}: {seconds * 1000:7.1f} ms · RTF {seconds / audio:.4f}")

        vad = use(runtime, "vad", str(write_tiny_fsmn_vad(tmp / "vad"))).handle
        print(f"FSMN VAD     70 s: {median_seconds(lambda: vad.speech(clips['70 s']), args.rounds) * 1000:7.1f} ms")
        sensevoice.use_vad(vad)
        seconds = median_seconds(lambda: sensevoice.transcribe(clips["70 s"]), args.rounds)
        print(f"SenseVoice 70 s, VAD-cut: {seconds * 1000:7.1f} ms · RTF {seconds / 70:.4f}")

        paraformer = use(runtime, "asr", str(write_tiny_paraformer_streaming(tmp / "pf", dim=args.dim))).handle
        step = 2 * RATE * 600 // 1000
        latencies = []
        for _ in range(args.rounds):
            fed: list[float] = []  # when each chunk went in

            def chunks(fed: list[float]) -> Iterator[bytes]:
                for i in range(0, len(clips["4 s"]), step):
                    fed.append(time.perf_counter())
                    yield clips["4 s"][i:i + step]

            for piece in paraformer.stream(chunks(fed)):
                if not piece.final:
                    latencies.append(time.perf_counter() - fed[-1])
        if latencies:
            print(f"Paraformer streaming: chunk in → partial out p50 {statistics.median(latencies) * 1000:.1f} ms, "
                  f"max {max(latencies) * 1000:.1f} ms over {len(latencies)} partials")


if __name__ == "__main__":
    main()
