"""End-of-turn detection (zishu.companion.listen) on real speech made by espeak-ng: one turn in 20 ms
and odd-sized chunks with its pre-roll, its end and its times (on a fake clock that advances with
the audio, as a live microphone would); pauses shorter and longer than the end silence; the
maximum length cut; flush; silence and steady noise; the real tiny FSMN VAD; every rejection."""

from __future__ import annotations

import numpy as np
import pytest

from tiny_funasr import speech_wav, write_tiny_fsmn_vad
from zishu.companion.listen import EnergyClassifier, Listener, ModelClassifier, SpeechStarted, Utterance
from zishu.engines import use
from zishu.errors import EngineError, UsageError

RATE = 16000
SECOND = bytes(2 * RATE)
FRAME_S = 0.03


class Clock:
    """Advanced by each chunk's duration before it is fed: the chunk's last sample arrives 'now'."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def feed_all(listener: Listener, clock: Clock, stream: bytes, chunk: int) -> list:
    events = []
    for i in range(0, len(stream), chunk):
        piece = stream[i:i + chunk]
        clock.now += len(piece) / 2 / RATE
        events += listener.feed(piece)
    return events


def listener(**settings) -> tuple[Listener, Clock]:
    clock = Clock()
    return Listener(clock=clock, **settings), clock


def at(clock: Clock, stream_s: float, stream: bytes) -> float:
    """The clock time of ``stream_s`` into a stream fed completely by ``clock`` (starting at 100)."""
    return clock.now - (len(stream) / 2 / RATE - stream_s)


def noise(seconds: float, dbfs: float = -40.0, seed: int = 0) -> np.ndarray:
    rms = 32768 * 10 ** (dbfs / 20)
    return np.random.default_rng(seed).normal(0, rms, int(seconds * RATE))


def pcm(samples: np.ndarray) -> bytes:
    return np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes()


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> bytes:
    return speech_wav("你好，今天天气很好。", tmp_path_factory.mktemp("wav") / "hello.wav")


@pytest.fixture(scope="module")
def layout(speech) -> tuple[bytes, float, float]:
    """1 s of silence, the speech, 1 s of silence; where the speech truly starts and ends (s)."""
    loud = np.nonzero(np.abs(np.frombuffer(speech, "<i2")) > 327)[0]  # above -40 dBFS
    return SECOND + speech + SECOND, 1 + loud[0] / RATE, 1 + (loud[-1] + 1) / RATE


@pytest.mark.parametrize("chunk", [640, 1001, 3333], ids=["20ms", "odd-1001-bytes", "odd-3333-bytes"])
def test_one_turn_keeps_its_pre_roll_and_all_of_the_speech(layout, chunk):
    stream, onset, end = layout
    hearing, clock = listener()
    events, speaking = [], []
    for i in range(0, len(stream), chunk):
        clock.now += len(stream[i:i + chunk]) / 2 / RATE
        events += hearing.feed(stream[i:i + chunk])
        speaking.append(hearing.speaking)
    assert [type(e) for e in events] == [SpeechStarted, Utterance]
    started, heard = events
    first = stream.find(heard.pcm) / 2 / RATE  # the utterance is a slice of the stream
    assert first >= 0 and first <= onset - 0.25  # 300 ms of pre-roll before the first speech frame
    assert end <= first + heard.seconds <= end + 3 * FRAME_S  # all the speech, little silence after
    assert started.at == pytest.approx(heard.started_at, abs=1e-4)
    assert abs(heard.started_at - at(clock, onset, stream)) < FRAME_S
    assert at(clock, end, stream) - FRAME_S <= heard.ended_at <= at(clock, end, stream) + FRAME_S
    assert any(speaking) and not hearing.speaking and hearing.flush() == []


@pytest.mark.parametrize("pause_s, turns", [(1.0, 2), (0.3, 1)])
def test_a_pause_longer_than_the_end_silence_ends_the_turn_a_shorter_one_does_not(speech, pause_s, turns):
    hearing, clock = listener(end_silence_ms=600)
    stream = SECOND + speech + bytes(int(2 * RATE * pause_s)) + speech + SECOND
    events = feed_all(hearing, clock, stream, 640)
    assert [type(e) for e in events] == [SpeechStarted, Utterance] * turns
    core = speech.rstrip(b"\0")  # espeak ends with silence, trimmed from the utterance
    assert all(core in e.pcm for e in events[1::2]) and sum(e.pcm.count(core) for e in events[1::2]) == 2


def test_a_turn_longer_than_the_maximum_is_cut_and_continues(layout):
    stream, onset, end = layout
    hearing, clock = listener(max_utterance_s=1.5)
    events = feed_all(hearing, clock, stream, 640)
    assert [type(e) for e in events] == [SpeechStarted, Utterance, Utterance, Utterance]
    pieces = [e.pcm for e in events[1:]]
    assert len(pieces[0]) == 2 * 480 * (10 + 50) and len(pieces[1]) == 2 * 480 * 50  # pre-roll + 1.5 s, 1.5 s
    first = stream.find(pieces[0])
    assert stream.find(b"".join(pieces)) == first  # the pieces follow each other without a gap
    assert first / 2 / RATE <= onset and (first + len(b"".join(pieces))) / 2 / RATE >= end
    assert events[2].started_at == pytest.approx(events[1].started_at + 1.5)


def test_a_cut_in_the_trailing_silence_ends_the_turn_without_an_empty_utterance(layout):
    stream, onset, end = layout  # the speech lasts about 3.55 s; the cut comes 0.3 s after it
    hearing, clock = listener(max_utterance_s=3.9)
    events, cut_at = feed_all(hearing, clock, stream[:2 * RATE * 49 // 10], 640), clock.now
    assert [type(e) for e in events] == [SpeechStarted, Utterance]  # by 4.9 s: cut, not the end silence
    assert events[1].ended_at < cut_at - 0.3 and hearing.speaking
    assert feed_all(hearing, clock, stream[2 * RATE * 49 // 10:], 640) == [] and not hearing.speaking
    first = stream.find(events[1].pcm) / 2 / RATE
    assert 0 <= first <= onset and end <= first + events[1].seconds <= end + 3 * FRAME_S


def test_flush_ends_a_turn_in_progress_and_starts_afresh(layout, speech):
    _, onset, end = layout
    stream = SECOND + speech  # the mic closes 0.3 s after the speech: less than the end silence
    hearing, clock = listener()
    assert [type(e) for e in feed_all(hearing, clock, stream, 640)] == [SpeechStarted]
    assert hearing.speaking
    fed = clock.now
    clock.now += 5.0  # times come from the last feed, not from when flush is called
    [heard] = hearing.flush()
    assert isinstance(heard, Utterance) and not hearing.speaking
    first = stream.find(heard.pcm) / 2 / RATE
    assert 0 <= first <= onset - 0.25 and end <= first + heard.seconds <= end + 3 * FRAME_S
    clock.now = fed
    assert at(clock, end, stream) - FRAME_S <= heard.ended_at <= at(clock, end, stream) + FRAME_S
    assert hearing.flush() == [] and feed_all(hearing, clock, SECOND, 640) == []


def test_reset_forgets_a_turn_in_progress(speech):
    hearing, clock = listener()
    feed_all(hearing, clock, SECOND + speech[:RATE], 640)
    assert hearing.speaking
    hearing.reset()
    assert not hearing.speaking and feed_all(hearing, clock, SECOND * 2, 640) == []


def test_silence_and_steady_low_noise_are_not_speech_but_speech_over_that_noise_is(speech):
    hearing, clock = listener()
    assert feed_all(hearing, clock, SECOND * 3, 640) == []
    hearing, clock = listener()
    assert feed_all(hearing, clock, pcm(noise(3.0)), 640) == []  # -40 dBFS: above the absolute floor
    hearing, clock = listener()
    voice = np.frombuffer(speech, "<i2").astype(np.float64)
    noisy = pcm(np.concatenate([noise(1.0, seed=1), voice + noise(len(voice) / RATE, seed=2), noise(1.0, seed=3)]))
    assert [type(e) for e in feed_all(hearing, clock, noisy, 640)] == [SpeechStarted, Utterance]


def test_the_noise_floor_learns_a_noise_that_starts_and_stays():
    """A fan switched on after digital silence counts as speech at first, then stops counting."""
    energy = EnergyClassifier()
    flags = energy.speech_frames(SECOND + pcm(noise(12.0)), 480)
    assert flags[40] and not any(flags[-100:])
    assert energy.noise_floor == pytest.approx(-40, abs=1.5)
    energy.reset()
    assert energy.noise_floor is None and energy.speech_frames(bytes(100), 480) == []


def test_the_real_tiny_fsmn_vad_finds_the_same_turn(runtime, layout, tmp_path):
    stream, onset, end = layout
    vad = use(runtime, "vad", str(write_tiny_fsmn_vad(tmp_path / "vad"))).handle
    clock = Clock()
    hearing = Listener(ModelClassifier(vad, context_s=1.0), clock=clock)
    stream += SECOND  # FSMN holds a segment open ~0.8 s into the silence before the end silence counts
    events = feed_all(hearing, clock, stream, 3200)  # 100 ms chunks: 75 model calls on 1 s each
    assert [type(e) for e in events] == [SpeechStarted, Utterance]
    first = stream.find(events[1].pcm) / 2 / RATE
    assert 0 <= first <= onset and first + events[1].seconds >= end


# ---- rejections ------------------------------------------------------------------------------------


def test_audio_that_is_not_bytes_is_refused_and_any_bytes_like_is_taken(layout):
    hearing, _clock = listener()
    with pytest.raises(UsageError, match="feed\\(\\) takes 16 kHz mono int16 PCM as bytes, not str"):
        hearing.feed("hello")
    assert hearing.feed(bytearray(3)) == [] and hearing.feed(memoryview(bytes(3))) == []
    samples = np.frombuffer(layout[0], "<i2")
    events = [e for i in range(0, len(samples), 320) for e in hearing.feed(memoryview(samples[i:i + 320]))]
    assert [type(e) for e in events] == [SpeechStarted, Utterance] and events[1].pcm in layout[0]


@pytest.mark.parametrize("setting, value", [
    ("frame_ms", 0), ("start_ms", -30), ("end_silence_ms", 0), ("pre_roll_ms", -1),
    ("max_utterance_s", 0), ("max_utterance_s", float("nan")), ("frame_ms", "30"), ("start_ms", True)])
def test_a_setting_that_is_not_a_positive_number_is_refused_by_name(setting, value):
    with pytest.raises(UsageError, match=f"^{setting} must be a number"):
        Listener(**{setting: value})
    assert Listener(pre_roll_ms=0).pre_roll_frames == 0  # no pre-roll is a choice, not an error


@pytest.mark.parametrize("make, message", [
    (lambda: Listener(object()), "classify must have speech_frames"),
    (lambda: ModelClassifier(object()), "needs a loaded VAD model .* not object"),
    (lambda: ModelClassifier(EnergyClassifier(), context_s=1), "needs a loaded VAD model"),
    (lambda: EnergyClassifier(margin_db=0), "^margin_db must be a number more than zero"),
    (lambda: EnergyClassifier(adapt_s=-1), "^adapt_s must be"),
    (lambda: EnergyClassifier(absolute_floor_db=3), "^absolute_floor_db must be a level in dBFS")])
def test_a_bad_classifier_or_classifier_setting_is_refused(make, message):
    with pytest.raises(UsageError, match=message):
        make()


def test_a_model_classifier_needs_some_context_and_a_classifier_must_answer_every_frame():
    class Deaf:
        def speech(self, pcm):
            return []

        def speech_frames(self, pcm, frame_samples):
            return [False]

    with pytest.raises(UsageError, match=r"^context_s must be a number more than zero, not 0"):
        ModelClassifier(Deaf(), context_s=0)
    assert ModelClassifier(Deaf()).speech_frames(bytes(960 * 3), 480) == [False, False, False]
    with pytest.raises(EngineError, match="Deaf gave 1 flags for 3 frames"):
        Listener(Deaf()).feed(bytes(960 * 3))
