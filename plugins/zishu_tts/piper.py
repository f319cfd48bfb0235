"""The ``piper`` engine: neural voices in Piper's format, run with onnxruntime (Zishu's own reading of
the format; it does not use the GPL ``piper-tts`` package).

A Piper voice is two files: ``<name>.onnx`` (a VITS model) and ``<name>.onnx.json`` (its config).
A catalog ``voice`` resource with ``spec.engine: piper`` holds exactly those two (plus a model card).

Synthesis, per piece of text (see ``text.split_for_speech``), as Piper does it:

1. phonemes: espeak-ng's IPA for each clause in the config's ``espeak.voice``, decomposed (NFD)
   into code points, each one phoneme; an ASCII ``. ? !`` ending a clause adds itself, ``, : ;``
   add themselves and a space (``phoneme_type: text`` uses the text's own code points instead);
2. ids: ``^`` then ``_``, then each phoneme's ids each followed by ``_``, then ``$``, through the
   config's ``phoneme_id_map`` (phonemes it lacks are skipped);
3. the model: ``input`` int64 [1, N], ``input_lengths`` int64 [1], ``scales`` float32
   [noise_scale, length_scale, noise_w] (``inference`` in the config; speed divides length_scale),
   ``sid`` int64 [1] for a voice with several speakers; out comes float audio in [-1, 1], which
   becomes int16 at ``audio.sample_rate``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import shutil
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from zishu.engines import AudioChunk, Engine, EngineInfo, ModelRef
from zishu.errors import EngineError

from .espeak import COMMAND, MISSING, ipa_clauses, usable_voice
from .text import check_speed, split_for_speech

log = logging.getLogger(__name__)

PAD, BOS, EOS = "_", "^", "$"
MODEL_INPUTS = ("input", "input_lengths", "scales")
PHONEME_TYPES = ("espeak", "text")
# A clause ends at Chinese or Western punctuation ("." and "," only before a space or the end, so
# "3.14" and "1,000" stay whole).
_CLAUSE_END = re.compile(r"[，。？！：；、]+|[.?!,:;]+(?=\s|$)")


@dataclass(frozen=True)
class PiperConfig:
    """What synthesis needs from a voice's ``.onnx.json``."""

    sample_rate: int
    phoneme_type: str
    espeak_voice: str | None
    phoneme_id_map: dict[str, list[int]]
    noise_scale: float
    length_scale: float
    noise_w: float
    num_speakers: int
    speaker_id_map: dict[str, int]


def read_config(path: Path) -> PiperConfig:
    """The config at ``path``; EngineError naming the file and the field when it is unusable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise EngineError(f"{path}: not a readable JSON file ({e})") from None

    def field(dotted: str, kind, default=None, required=True):
        value = data
        for key in dotted.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            if required:
                raise EngineError(f"{path}: {dotted}: missing (a Piper voice config has it)")
            return default
        if not isinstance(value, kind) or isinstance(value, bool):
            raise EngineError(f"{path}: {dotted}: expected {getattr(kind, '__name__', 'a number')}, got {value!r}")
        return value

    phoneme_type = field("phoneme_type", str, "espeak", required=False)
    if phoneme_type not in PHONEME_TYPES:
        raise EngineError(f"{path}: phoneme_type: {phoneme_type!r} is not supported here "
                          f"(this engine reads {' and '.join(PHONEME_TYPES)} voices)")
    id_map = field("phoneme_id_map", dict)
    for symbol in (PAD, BOS, EOS):
        if symbol not in id_map:
            raise EngineError(f"{path}: phoneme_id_map: has no {symbol!r} (Piper's pad, start and end symbols)")
    bad = [k for k, v in id_map.items() if not (isinstance(v, list) and all(isinstance(i, int) for i in v))]
    if bad:
        raise EngineError(f"{path}: phoneme_id_map: {bad[0]!r} must map to a list of integer ids")
    speakers = field("speaker_id_map", dict, {}, required=False)
    bad = [k for k, v in speakers.items() if not isinstance(v, int) or isinstance(v, bool)]
    if bad:
        raise EngineError(f"{path}: speaker_id_map: {bad[0]!r} must map to an integer speaker id")
    return PiperConfig(
        sample_rate=field("audio.sample_rate", int),
        phoneme_type=phoneme_type,
        espeak_voice=field("espeak.voice", str, required=phoneme_type == "espeak"),
        phoneme_id_map=id_map,
        noise_scale=float(field("inference.noise_scale", (int, float), 0.667, required=False)),
        length_scale=float(field("inference.length_scale", (int, float), 1.0, required=False)),
        noise_w=float(field("inference.noise_w", (int, float), 0.8, required=False)),
        num_speakers=field("num_speakers", int, 1, required=False),
        speaker_id_map=speakers,
    )


def clauses_of(sentence: str) -> list[tuple[str, str | None]]:
    """``sentence`` cut into clauses, each with the punctuation mark that ends it (None for the last
    one when it ends without any)."""
    found: list[tuple[str, str | None]] = []
    start = 0
    for end in _CLAUSE_END.finditer(sentence):
        found.append((sentence[start:end.end()], end.group()[-1]))
        start = end.end()
    if sentence[start:].strip():
        found.append((sentence[start:], None))
    return [(text, mark) for text, mark in found if text.strip()]


def phonemes_of(sentence: str, config: PiperConfig, espeak_voice: str | None) -> list[str]:
    """The phonemes of one piece of text (see the module docstring)."""
    if config.phoneme_type == "text":
        return list(unicodedata.normalize("NFD", sentence))
    assert espeak_voice is not None  # the engine finds one for every voice of phoneme_type espeak
    phonemes: list[str] = []
    for clause, mark in clauses_of(sentence):
        phonemes += unicodedata.normalize("NFD", " ".join(ipa_clauses(clause, espeak_voice)))
        if mark in (".", "?", "!"):
            phonemes.append(mark)
        elif mark in (",", ":", ";"):
            phonemes += [mark, " "]
    return phonemes


def ids_of(phonemes: list[str], id_map: dict[str, list[int]]) -> list[int]:
    """Piper's id sequence: ``^ _`` then each known phoneme followed by ``_``, then ``$``."""
    pad = id_map[PAD]
    ids = [*id_map[BOS], *pad]
    missing = set()
    for phoneme in phonemes:
        if phoneme in id_map:
            ids += [*id_map[phoneme], *pad]
        else:
            missing.add(phoneme)
    if missing:
        log.debug("phonemes missing from the voice's id map, skipped: %s", "".join(sorted(missing)))
    return ids + id_map[EOS]


class PiperVoice:
    """A loaded Piper voice: an onnxruntime session and its config."""

    def __init__(self, name: str, config: PiperConfig, session, espeak_voice: str | None) -> None:
        self.name = name
        self.config = config
        self.session = session
        self.espeak_voice = espeak_voice
        self.takes_speaker = "sid" in {i.name for i in session.get_inputs()}
        self._nothing_to_say = ids_of([], config.phoneme_id_map)  # just ^ _ $

    def voices(self) -> list[str]:
        """The voice's speakers (by id), or the voice itself when it has one speaker."""
        if self.config.num_speakers <= 1:
            return [self.name]
        by_id = {i: name for name, i in self.config.speaker_id_map.items()}
        return [by_id.get(i, str(i)) for i in range(self.config.num_speakers)]

    def speaker_id(self, voice: str | None) -> int | None:
        if self.config.num_speakers <= 1:
            if voice not in (None, self.name):
                raise EngineError(f"the Piper voice {self.name} has one speaker; there is no {voice!r}")
            return None
        if voice is None:
            return 0
        if voice in self.config.speaker_id_map:
            return self.config.speaker_id_map[voice]
        if voice.isdigit() and int(voice) < self.config.num_speakers:
            return int(voice)
        raise EngineError(f"the Piper voice {self.name} has no speaker {voice!r}; its speakers: "
                          f"{', '.join(self.voices()[:20])}")

    def speak(self, text: str, voice: str | None = None, emotion: str | None = None,
              speed: float = 1.0) -> Iterator[AudioChunk]:
        """Audio of ``text`` piece by piece; ``voice`` picks a speaker; ``emotion`` is ignored."""
        speaker = self.speaker_id(voice)
        length_scale = self.config.length_scale / check_speed(speed)
        return self._stream(split_for_speech(text), speaker, length_scale)

    def _stream(self, pieces: list[str], speaker: int | None, length_scale: float) -> Iterator[AudioChunk]:
        for piece in pieces:
            ids = ids_of(phonemes_of(piece, self.config, self.espeak_voice), self.config.phoneme_id_map)
            if ids != self._nothing_to_say:
                yield AudioChunk(pcm=self.synthesize(ids, speaker, length_scale), sample_rate=self.config.sample_rate)

    def synthesize(self, ids: list[int], speaker: int | None, length_scale: float) -> bytes:
        """One run of the model: phoneme ids in, int16 PCM out."""
        import numpy as np

        feed = {"input": np.array([ids], dtype=np.int64),
                "input_lengths": np.array([len(ids)], dtype=np.int64),
                "scales": np.array([self.config.noise_scale, length_scale, self.config.noise_w], dtype=np.float32)}
        if self.takes_speaker:
            feed["sid"] = np.array([speaker or 0], dtype=np.int64)
        audio = np.asarray(self.session.run(None, feed)[0], dtype=np.float32).reshape(-1)
        return (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()


class PiperEngine(Engine):
    info = EngineInfo(kind="tts", name="piper", formats=("onnx",),
                      capabilities=frozenset({"streaming", "voices", "languages"}),
                      description="Piper neural voices (VITS in ONNX, one model and config per voice): "
                                  "natural speech in real time on a CPU, in dozens of languages.")

    def unavailable(self) -> str | None:
        for module in ("onnxruntime", "numpy"):
            if importlib.util.find_spec(module) is None:
                return f"needs {module}: pip install 'zishu[tts]'"
        if shutil.which(COMMAND) is None:
            return f"{MISSING}, to turn text into phonemes"
        return None

    def load(self, model: ModelRef, device: str = "cpu") -> PiperVoice:
        if model is None:
            raise EngineError("the piper engine needs a voice: a Piper voice resource or a folder with "
                              "<name>.onnx and <name>.onnx.json")
        onnx_path = model.file(".onnx")
        config_path = onnx_path.with_name(onnx_path.name + ".json")
        if not config_path.is_file():
            raise EngineError(f"{model.label}: the Piper voice {onnx_path.name} has no {config_path.name} beside it "
                              f"in {onnx_path.parent}; a Piper voice is two files, the .onnx model and its "
                              ".onnx.json config")
        config = read_config(config_path)
        espeak_voice = None
        if config.phoneme_type == "espeak":
            assert config.espeak_voice is not None  # read_config requires espeak.voice for these
            try:
                espeak_voice = usable_voice(config.espeak_voice)
            except EngineError as e:
                raise EngineError(f"{config_path}: espeak.voice: {e}") from None
        session = _session(onnx_path, device)
        missing = [n for n in MODEL_INPUTS if n not in {i.name for i in session.get_inputs()}]
        if missing:
            raise EngineError(f"{onnx_path}: not a Piper model: it has no input {', '.join(missing)}")
        return PiperVoice(onnx_path.name.removesuffix(".onnx"), config, session, espeak_voice)


def _session(path: Path, device: str):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: Piper models warn about unused initializers
    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda") and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=providers)
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own untyped errors for a bad file
        raise EngineError(f"{path}: onnxruntime cannot load it: {e}") from None
