"""The ``espeak-ng`` engine, Zishu's offline default voice that needs no download, and the
``espeak-ng`` command itself, which the Piper engine also runs to turn text into IPA phonemes.

Everything goes through the command (``espeak-ng --stdout`` gives a WAV, ``-q --ipa`` phonemes,
``--voices`` the voices), so there is nothing to link against and nothing to load.

Mandarin: eSpeak NG 1.51 (Debian 12, Ubuntu 22.04/24.04) reads Chinese characters with its ``cmn``
voice as pinyin whose tone numbers come out as *English* numbers ("ni three hao three"), fixed in
1.52. Its ``cmn-latn-pinyin`` voice reads them right, so ``usable_voice`` asks for that one
instead of ``cmn`` where the installed espeak-ng has the bug.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from collections.abc import Iterator

from zishu.engines import AudioChunk, Engine, EngineInfo
from zishu.errors import EngineError

from .text import check_speed, language_of, split_for_speech
from .wav import pcm_of_wav

COMMAND = "espeak-ng"
MISSING = "needs espeak-ng (apt install espeak-ng / brew install espeak-ng)"
NORMAL_WPM = 175  # espeak-ng's own default speed, in words per minute
WPM_RANGE = (80, 450)
MANDARIN = ("cmn", "zh", "zh-cmn")
_DEFAULT_VOICES = {"zh": "cmn", "ja": "ja", "ko": "ko"}  # by language_of(text); anything else: "en"
_LANGUAGE_FLAG = re.compile(r"\([^)]*\)")  # "(en)" around words spoken in another language


def run_espeak(args: list[str], text: str) -> bytes:
    """What ``espeak-ng ARGS`` writes for ``text`` (given on stdin as UTF-8, so text starting with
    "-" is never read as an option)."""
    executable = shutil.which(COMMAND)
    if executable is None:
        raise EngineError(f"the espeak-ng command is not installed: this engine {MISSING}")
    try:
        done = subprocess.run([executable, *args, "-b", "1"], input=text.encode("utf-8"), capture_output=True,
                              timeout=120)
    except subprocess.TimeoutExpired:
        raise EngineError(f"espeak-ng {' '.join(args)} did not finish within 120 s") from None
    if done.returncode != 0:
        said = (done.stderr or done.stdout).decode("utf-8", "replace").strip()
        raise EngineError(f"espeak-ng {' '.join(args)} failed (exit {done.returncode}): {said}")
    return done.stdout


@functools.cache
def installed_voices() -> dict[str, str]:
    """Every name ``-v`` accepts (each voice's language and its other language codes, e.g. "en"),
    mapped to the voice's own name, from ``espeak-ng --voices``."""
    names: dict[str, str] = {}
    for line in run_espeak(["--voices"], "").decode("utf-8", "replace").splitlines()[1:]:
        fields = line.split()
        if len(fields) < 5:
            continue
        voice = fields[1]
        names.setdefault(voice, voice)
        for other in re.findall(r"\(([^ )]+) \d+\)", " ".join(fields[5:])):
            names.setdefault(other, voice)
    return names


@functools.cache
def mandarin_voice() -> str:
    """``cmn``, or ``cmn-latn-pinyin`` where the installed ``cmn`` reads tone numbers as English."""
    probe = run_espeak(["-q", "-x", "-v", "cmn"], "一").decode("utf-8", "replace")
    return "cmn-latn-pinyin" if "(en)" in probe else "cmn"


def usable_voice(name: str) -> str:
    """The espeak-ng voice to pass to ``-v`` for ``name`` (see the module docstring for Mandarin);
    EngineError naming some installed voices when there is no such voice."""
    wanted = name.strip().lower()
    if wanted in MANDARIN:
        return mandarin_voice()
    if wanted not in installed_voices():
        some = ", ".join(sorted(set(installed_voices().values()))[:12])
        raise EngineError(f"espeak-ng has no voice {name!r}; installed voices include {some} "
                          f"(all of them: espeak-ng --voices)")
    return wanted


def default_voice(text: str) -> str:
    """The voice for ``text`` when none is asked for: Mandarin for Chinese, else by script, else English."""
    return _DEFAULT_VOICES.get(language_of(text), "en")


def ipa_clauses(text: str, voice: str) -> list[str]:
    """``text`` as IPA, one string per clause (espeak-ng ends a clause at punctuation), with the
    "(en)…(cmn)" language switches taken out as Piper does."""
    out = run_espeak(["-q", "--ipa", "-v", voice], text).decode("utf-8", "replace")
    clauses = (_LANGUAGE_FLAG.sub("", line).strip() for line in out.splitlines())
    return [c for c in clauses if c]


class EspeakVoice:
    """A loaded espeak-ng: ``speak`` runs the command once per piece of text and yields its audio."""

    def __init__(self, voice: str | None = None) -> None:
        self.voice = voice  # the voice when a request names none (a catalog voice's spec.speaker)

    def voices(self) -> list[str]:
        return sorted(set(installed_voices().values()))

    def speak(self, text: str, voice: str | None = None, emotion: str | None = None,
              speed: float = 1.0) -> Iterator[AudioChunk]:
        """Audio of ``text`` piece by piece; ``emotion`` is ignored (espeak-ng has one manner)."""
        name = usable_voice(voice or self.voice or default_voice(text))
        low, high = WPM_RANGE
        wpm = min(high, max(low, round(NORMAL_WPM * check_speed(speed))))
        return self._stream(split_for_speech(text), name, wpm)

    def _stream(self, pieces: list[str], voice: str, wpm: int) -> Iterator[AudioChunk]:
        for piece in pieces:
            pcm, rate = pcm_of_wav(run_espeak(["--stdout", "-v", voice, "-s", str(wpm)], piece), "espeak-ng")
            if pcm:
                yield AudioChunk(pcm=pcm, sample_rate=rate)


class EspeakEngine(Engine):
    info = EngineInfo(kind="tts", name="espeak-ng", formats=(),
                      capabilities=frozenset({"streaming", "voices", "languages"}), needs_model=False,
                      description="eSpeak NG: a small formant synthesizer in over 100 languages. Robotic, "
                                  "but offline and instant, with nothing to download.")

    def unavailable(self) -> str | None:
        return None if shutil.which(COMMAND) else MISSING

    def load(self, model=None, device: str = "cpu") -> EspeakVoice:
        """``model`` is optional: a catalog espeak-ng voice names its voice in ``spec.speaker``."""
        speaker = model.spec.get("speaker") if model is not None else None
        if speaker:
            usable_voice(speaker)
        return EspeakVoice(speaker)
