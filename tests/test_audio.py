"""WAV in and out: any PCM WAV becomes 16 kHz mono int16; synthesis is written atomically."""

from __future__ import annotations

import math
import struct
import wave

import pytest

from zishu.audio import read_pcm, write_wav
from zishu.engines import AudioChunk
from zishu.errors import UsageError


def tone(path, rate, channels=1, width=2, seconds=0.5, hz=440):
    frames = bytearray()
    for i in range(int(rate * seconds)):
        value = math.sin(2 * math.pi * hz * i / rate) * 0.5
        sample = {1: struct.pack("<B", int(value * 127 + 128)), 2: struct.pack("<h", int(value * 32767)),
                  3: struct.pack("<i", int(value * 2**23))[:3], 4: struct.pack("<i", int(value * 2**31))}[width]
        frames += sample * channels
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(bytes(frames))
    return path


def peak(pcm: bytes) -> float:
    return max(abs(v) for (v,) in struct.iter_unpack("<h", pcm)) / 32767


def test_16k_mono_wav_is_read_as_is(tmp_path):
    path = tone(tmp_path / "a.wav", 16000)
    with wave.open(str(path)) as w:
        assert read_pcm(path) == w.readframes(w.getnframes())


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_other_rates_widths_and_stereo_become_16k_mono(tmp_path, width):
    pcm = read_pcm(tone(tmp_path / "b.wav", 44100, channels=2, width=width, seconds=0.5))
    assert len(pcm) == 2 * 8000  # half a second at 16 kHz
    assert 0.45 < peak(pcm) < 0.55  # the tone kept its level


def test_unreadable_input_says_what_is_wrong(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        read_pcm(tmp_path / "missing.wav")
    (tmp_path / "x.mp3").write_bytes(b"ID3\x03junk")
    with pytest.raises(UsageError, match=r"x\.mp3: not a PCM WAV file.*ffmpeg"):
        read_pcm(tmp_path / "x.mp3")


def test_write_wav_streams_chunks_into_one_file(tmp_path):
    out = tmp_path / "out.wav"
    chunks = [AudioChunk(b"\x01\x00" * 800, 16000), AudioChunk(b"\x02\x00" * 1600, 16000)]
    assert write_wav(out, iter(chunks)) == (16000, 0.15)
    with wave.open(str(out)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getnframes()) == (16000, 1, 2400)


def test_a_failed_synthesis_leaves_no_file_and_keeps_the_old_one(tmp_path):
    out = tmp_path / "out.wav"
    out.write_bytes(b"the previous take")

    def failing():
        yield AudioChunk(b"\x00\x00" * 100, 22050)
        raise RuntimeError("engine died")

    with pytest.raises(RuntimeError, match="engine died"):
        write_wav(out, failing())
    with pytest.raises(ValueError, match="sample rate mid-stream"):
        write_wav(out, iter([AudioChunk(b"\x00\x00", 22050), AudioChunk(b"\x00\x00", 16000)]))
    with pytest.raises(UsageError, match="no audio"):
        write_wav(out, iter([]))
    assert out.read_bytes() == b"the previous take"
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]
