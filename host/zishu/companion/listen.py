"""End-of-turn detection: the microphone's stream of 16 kHz mono int16 PCM turned into utterances.

This module owns the ``Listener`` and the classifiers that tell it which frames are speech.

``Listener``
    Takes chunks of any size (odd byte counts too: a remainder is kept) and cuts them into frames
    of ``frame_ms``. ``SpeechStarted`` is emitted once ``start_ms`` of *consecutive* speech frames
    were seen (a single non-speech frame restarts the count, so clicks do not start a turn);
    ``Utterance`` once ``end_silence_ms`` of non-speech frames followed speech. The utterance's
    audio begins ``pre_roll_ms`` before the first speech frame (so the first syllable is not lost)
    and keeps at most two frames of the trailing silence. A turn longer than ``max_utterance_s``
    (counted from the first speech frame) is cut there and emitted; the next utterance continues
    from the cut without a new ``SpeechStarted`` (if only silence follows the cut, the turn ends with
    no further utterance). ``flush()`` ends a turn in progress (the mic closed).

    Times: the clock is read once per ``feed`` and taken as the arrival time of its last sample
    (``flush`` uses the last feed's reading); a sample ``n`` samples earlier is dated ``n / 16000`` s
    before it. This assumes the audio arrives in real time (each chunk sent as soon as recorded), so
    ``ended_at`` (end of the last speech frame) is the clock at the detecting feed minus the silence
    that followed, and ``started_at`` / ``SpeechStarted.at`` the start of the first speech frame.

``EnergyClassifier`` (the default; no model)
    RMS level per frame in dBFS, speech when above ``max(absolute_floor_db, noise_floor + margin_db)``.
    The noise floor starts at the first frame's level, then moves toward each frame's level: down
    fast (time constant ``adapt_s / 10``), up slowly over quiet frames (``adapt_s``) and ten times
    slower again over speech frames, so a noise that starts and stays (a fan) stops counting as speech
    after several seconds while speech, which dips between syllables, keeps the floor down. The floor
    never goes below ``absolute_floor_db - margin_db``, so a dropout to digital silence barely moves it.

``BothClassifier(ModelClassifier(vad), EnergyClassifier())`` is what the companion uses when a VAD
model is installed: the model's judgement, ended as quickly as the energy's.

``ModelClassifier`` (a loaded VAD model, kind ``vad``: ``speech(pcm) -> [(start_s, end_s)]``)
    The model works on whole buffers, so each call runs it on the last ``context_s`` of audio
    including the new frames, and flags the new frames that overlap a returned segment. Cost: every
    ``feed`` runs the model over ``context_s`` (or the chunk, if longer) -- with 20 ms chunks and 1 s
    of context that is 50 times the audio's length in model time (FSMN-VAD is small enough for that
    on a CPU; larger chunks are proportionally cheaper). Decisions lag by what the model needs to
    decide, e.g. FSMN's own end-of-segment silence.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from zishu.engines.kinds import ASR_SAMPLE_RATE
from zishu.errors import EngineError, UsageError

RATE = ASR_SAMPLE_RATE  # 16 kHz mono int16: what the window sends


@dataclass(frozen=True)
class SpeechStarted:
    at: float  # clock time of the start of the first speech frame


@dataclass(frozen=True)
class Utterance:
    pcm: bytes = field(repr=False)  # int16 mono 16 kHz: pre-roll, speech, <= 2 frames of silence
    ended_at: float  # clock time of the end of the last speech frame
    started_at: float  # clock time of the start of the first speech frame (after the pre-roll)

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / RATE


Heard = SpeechStarted | Utterance


class FrameClassifier(Protocol):
    def speech_frames(self, pcm: bytes, frame_samples: int) -> list[bool]:
        """One flag per whole frame of ``frame_samples`` samples in ``pcm``: is it speech?"""


def _positive(name: str, value, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < 0 or (value == 0 and not allow_zero):
        bound = "zero or more" if allow_zero else "more than zero"
        raise UsageError(f"{name} must be a number {bound}, not {value!r}")
    return float(value)


def _frames(pcm: bytes, frame_samples: int) -> np.ndarray:
    count = len(pcm) // (2 * frame_samples)
    return np.frombuffer(pcm, dtype="<i2", count=count * frame_samples).reshape(count, frame_samples)


class EnergyClassifier:
    """Speech is louder than the adaptive noise floor (see the module docstring); plain numpy."""

    def __init__(self, absolute_floor_db: float = -50.0, margin_db: float = 10.0, adapt_s: float = 1.0):
        if not isinstance(absolute_floor_db, (int, float)) or not -120 <= absolute_floor_db < 0:
            raise UsageError(f"absolute_floor_db must be a level in dBFS between -120 and 0, not {absolute_floor_db!r}")
        self.absolute_floor_db = float(absolute_floor_db)
        self.margin_db = _positive("margin_db", margin_db)
        self.adapt_s = _positive("adapt_s", adapt_s)
        self.noise_floor: float | None = None

    def reset(self) -> None:
        self.noise_floor = None

    def speech_frames(self, pcm: bytes, frame_samples: int) -> list[bool]:
        frames = _frames(pcm, frame_samples).astype(np.float64)
        rms = np.sqrt(np.mean(np.square(frames), axis=1)) / 32768 if len(frames) else np.zeros(0)
        lowest = self.absolute_floor_db - self.margin_db
        levels = np.maximum(20 * np.log10(np.maximum(rms, 1e-10)), lowest)
        step = frame_samples / RATE
        fall, rise = (1 - math.exp(-step / (self.adapt_s * k)) for k in (0.1, 1.0))
        rise_in_speech = 1 - math.exp(-step / (self.adapt_s * 10))
        flags = []
        for level in levels.tolist():
            floor = level if self.noise_floor is None else self.noise_floor
            speech = level > max(self.absolute_floor_db, floor + self.margin_db)
            rate = fall if level < floor else rise_in_speech if speech else rise
            self.noise_floor = max(lowest, floor + rate * (level - floor))
            flags.append(speech)
        return flags


class ModelClassifier:
    """Speech is where a loaded VAD model finds it, in a rolling window of ``context_s``."""

    def __init__(self, vad, context_s: float = 1.0):
        if not callable(getattr(vad, "speech", None)):
            raise UsageError(f"ModelClassifier needs a loaded VAD model (with speech(pcm)), not {type(vad).__name__}")
        self.vad = vad
        self.context_bytes = 2 * max(1, round(_positive("context_s", context_s) * RATE))
        self._recent = b""

    def reset(self) -> None:
        self._recent = b""

    def speech_frames(self, pcm: bytes, frame_samples: int) -> list[bool]:
        count = len(pcm) // (2 * frame_samples)
        if not count:
            return []
        new = pcm[:count * frame_samples * 2]
        window = (self._recent + new)[-max(self.context_bytes, len(new)):]
        self._recent = window[-self.context_bytes:]
        first = (len(window) - len(new)) // 2  # the sample where the new frames begin
        segments = [(s * RATE, e * RATE) for s, e in self.vad.speech(window)]
        return [any(s < first + (i + 1) * frame_samples and e > first + i * frame_samples for s, e in segments)
                for i in range(count)]


class BothClassifier:
    """Speech where every one of ``classifiers`` hears it. A VAD model with the energy check ends a
    turn as soon as the voice drops (the model's segment stays open for its own end-of-segment
    silence, ~0.8 s for FSMN), while the model keeps loud sounds that are not speech from starting one."""

    def __init__(self, *classifiers: FrameClassifier):
        if not classifiers:
            raise UsageError("BothClassifier needs at least one classifier")
        self.classifiers = classifiers

    def reset(self) -> None:
        for classifier in self.classifiers:
            getattr(classifier, "reset", lambda: None)()

    def speech_frames(self, pcm: bytes, frame_samples: int) -> list[bool]:
        flags = [c.speech_frames(pcm, frame_samples) for c in self.classifiers]
        # a classifier's short list is not cut off here: the Listener's count check names it (EngineError)
        return [all(frame) for frame in zip(*flags, strict=False)]


class Listener:
    """The microphone's stream in, ``SpeechStarted`` and ``Utterance`` events out (module docstring)."""

    def __init__(self, classify: FrameClassifier | None = None, *, frame_ms: float = 30, start_ms: float = 90,
                 end_silence_ms: float = 600, pre_roll_ms: float = 300, max_utterance_s: float = 30.0,
                 clock: Callable[[], float] = time.perf_counter):
        frame_ms = _positive("frame_ms", frame_ms)
        if classify is None:
            classify = EnergyClassifier()
        elif not callable(getattr(classify, "speech_frames", None)):
            raise UsageError(f"classify must have speech_frames(pcm, frame_samples), not {type(classify).__name__}")
        self.classify, self.clock = classify, clock
        self.frame_samples = max(1, round(frame_ms * RATE / 1000))

        def frames(ms: float) -> int:  # whole frames covering ms
            return max(1, math.ceil(ms / frame_ms - 1e-9))

        self.start_frames = frames(_positive("start_ms", start_ms))
        self.end_frames = frames(_positive("end_silence_ms", end_silence_ms))
        self.pre_roll_frames = math.ceil(_positive("pre_roll_ms", pre_roll_ms, allow_zero=True) / frame_ms - 1e-9)
        self.max_frames = max(self.start_frames, int(_positive("max_utterance_s", max_utterance_s) * 1000 / frame_ms))
        self.reset()

    @property
    def speaking(self) -> bool:
        """Between ``SpeechStarted`` and the end of that turn."""
        return self._turn is not None

    def reset(self) -> None:
        """Forget everything heard (and the classifier's state, where it keeps one)."""
        self._rest = b""  # bytes short of a whole frame
        self._bytes = 0  # bytes received
        self._now = 0.0  # the clock at the last feed: when its last sample arrived
        self._done = 0  # frames classified
        self._recent: deque[bytes] = deque(maxlen=self.pre_roll_frames + self.start_frames)
        self._run = 0  # consecutive speech frames while idle
        self._turn: list[bytes] | None = None  # this utterance's frames, pre-roll first
        self._onset = 0  # sample where this utterance's speech starts
        self._since_onset = 0  # frames since then
        self._last_speech: int | None = None  # sample where its last speech frame ends
        self._quiet = 0  # non-speech frames since
        reset = getattr(self.classify, "reset", None)
        if callable(reset):
            reset()

    def feed(self, pcm: bytes) -> list[Heard]:
        """Take the next chunk of the stream; the events it caused, in order."""
        if not isinstance(pcm, (bytes, bytearray, memoryview)):
            raise UsageError(f"feed() takes 16 kHz mono int16 PCM as bytes, not {type(pcm).__name__}")
        pcm = bytes(pcm)  # (a memoryview's len counts items, not bytes)
        now = self._now = self.clock()
        data = self._rest + pcm
        self._bytes += len(pcm)
        size = 2 * self.frame_samples
        whole = len(data) // size * size
        self._rest = data[whole:]
        if not whole:
            return []
        flags = self.classify.speech_frames(data[:whole], self.frame_samples)
        if len(flags) != whole // size:
            raise EngineError(f"{type(self.classify).__name__} gave {len(flags)} flags for {whole // size} frames")
        events: list[Heard] = []
        for i, speech in enumerate(flags):
            self._frame(data[i * size:(i + 1) * size], bool(speech), now, events)
        return events

    def flush(self) -> list[Heard]:
        """The mic closed: a turn in progress ends now (a partial last frame is dropped). Resets."""
        events: list[Heard] = []
        if self._turn is not None and self._last_speech is not None:
            events.append(self._utterance(self._now))
        self.reset()
        return events

    def _time(self, sample: int, now: float) -> float:
        return now - (self._bytes // 2 - sample) / RATE

    def _utterance(self, now: float) -> Utterance:
        assert self._turn is not None and self._last_speech is not None  # called only within a turn, after speech
        kept = len(self._turn) - max(0, self._quiet - 2)
        started = self._time(self._onset, now)
        return Utterance(b"".join(self._turn[:kept]), self._time(self._last_speech, now), started)

    def _frame(self, frame: bytes, speech: bool, now: float, events: list[Heard]) -> None:
        start, self._done = self._done * self.frame_samples, self._done + 1
        end = start + self.frame_samples
        if self._turn is None:
            self._recent.append(frame)
            self._run = self._run + 1 if speech else 0
            if self._run < self.start_frames:
                return
            self._turn, self._run = list(self._recent), 0
            self._onset, self._since_onset = end - self.start_frames * self.frame_samples, self.start_frames
            self._last_speech, self._quiet = end, 0
            events.append(SpeechStarted(self._time(self._onset, now)))
            return
        self._turn.append(frame)
        self._since_onset += 1
        if speech:
            self._last_speech, self._quiet = end, 0
        else:
            self._quiet += 1
        if self._quiet >= self.end_frames:  # end of turn (or a continuation that held only silence)
            if self._last_speech is not None:
                events.append(self._utterance(now))
            self._recent.clear()
            self._recent.extend(self._turn[-self._quiet:])  # the silence may be the next one's pre-roll
            self._turn = None
        elif self._since_onset >= self.max_frames:  # too long: cut here, the next one continues
            if self._last_speech is not None:
                events.append(self._utterance(now))
            self._turn, self._onset, self._since_onset, self._last_speech = [], end, 0, None
