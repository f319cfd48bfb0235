"""Audio in and out of WAV files, in the form engines take and give: 16-bit little-endian mono PCM
``bytes`` with a sample rate.

``read_pcm`` accepts any PCM WAV (8/16/24/32-bit, mono or stereo, any rate) and returns it mono at
the rate asked for; ``write_wav`` writes a stream of ``AudioChunk`` atomically, so an interrupted
synthesis never leaves a WAV that looks complete.
"""

from __future__ import annotations

import wave
from collections.abc import Iterable
from pathlib import Path

from zishu.engines.kinds import AudioChunk
from zishu.errors import UsageError
from zishu.files import adjacent_tmp_file


def read_pcm(path: Path, rate: int = 16000) -> bytes:
    """The WAV at ``path`` as int16 mono PCM at ``rate`` Hz."""
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, source_rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            frames = w.readframes(w.getnframes())
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except (wave.Error, EOFError) as e:
        hint = f"convert it, e.g. ffmpeg -i IN -ar {rate} -ac 1 OUT.wav"
        raise UsageError(f"{path}: not a PCM WAV file ({e}); {hint}") from None
    if channels == 1 and width == 2 and source_rate == rate:
        return frames
    np = _numpy(path)
    if width == 1:
        samples = (np.frombuffer(frames, np.uint8).astype(np.float32) - 128) / 128
    elif width in (2, 4):
        kind = np.int16 if width == 2 else np.int32
        samples = np.frombuffer(frames, kind).astype(np.float32) / float(np.iinfo(kind).max)
    elif width == 3:
        raw = np.frombuffer(frames, np.uint8).reshape(-1, 3)
        ints = (raw[:, 0].astype(np.int32) | (raw[:, 1].astype(np.int32) << 8) | (raw[:, 2].astype(np.int32) << 16))
        samples = np.where(ints >= 2**23, ints - 2**24, ints).astype(np.float32) / 2**23
    else:
        raise UsageError(f"{path}: {8 * width}-bit samples are not supported")
    mono = samples.reshape(-1, channels).mean(axis=1)
    if source_rate != rate and len(mono):
        count = round(len(mono) * rate / source_rate)
        mono = np.interp(np.arange(count) * (source_rate / rate), np.arange(len(mono)), mono)
    return (np.clip(mono, -1, 1) * 32767).astype("<i2").tobytes()


def write_wav(path: Path, chunks: Iterable[AudioChunk]) -> tuple[int, float]:
    """Write ``chunks`` to ``path`` (replaced only once all are written); returns (rate, seconds)."""
    rate, frames = None, 0
    with adjacent_tmp_file(Path(path)) as f, wave.open(f, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)  # replaced by the first chunk's rate; set so closing never fails
        for chunk in chunks:
            if rate is None:
                rate = chunk.sample_rate
                w.setframerate(rate)
            elif chunk.sample_rate != rate:
                raise ValueError(f"the engine changed sample rate mid-stream ({rate} → {chunk.sample_rate} Hz)")
            w.writeframes(chunk.pcm)
            frames += len(chunk.pcm) // 2
        if rate is None:
            raise UsageError("the engine produced no audio (empty text?)")
    return rate, frames / rate


def _numpy(path: Path):
    try:
        import numpy
    except ImportError:
        raise UsageError(f"{path}: converting it to 16 kHz mono needs numpy (pip install 'zishu[asr]'), "
                         "or convert it first: ffmpeg -i IN -ar 16000 -ac 1 OUT.wav") from None
    return numpy
