"""The built-in FunASR engines (plugins/zishu_funasr) on tiny random models built here with funasr's
own classes (tests/tiny_funasr.py) and real speech from espeak-ng: SenseVoice with its rich tags,
long audio cut at VAD segments or quiet moments, streaming Paraformer's live partials, the FSMN VAD,
and every rejection. Each is used directly and through the host (entry point -> Runtime.engines ->
zishu.engines.use). Nothing touches the network."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tiny_funasr import speech_wav, write_tiny_fsmn_vad, write_tiny_paraformer_streaming, write_tiny_sensevoice
from zishu.engines import Transcript, use
from zishu.errors import EngineError
from zishu_funasr.audio import join_text, quiet_cuts, speech_pieces
from zishu_funasr.engines import FsmnVadEngine, FunasrEngine
from zishu_funasr.paraformer import CHUNK_BYTES
from zishu_funasr.tags import merged, parse_rich

RATE = 16000
SILENCE = bytes(2 * 4 * RATE)  # 4 s


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """sensevoice (plain), sensevoice+vad (with a vad/ subfolder), paraformer, vad."""
    root = tmp_path_factory.mktemp("funasr")
    plain = write_tiny_sensevoice(root / "sensevoice")
    with_vad = shutil.copytree(plain, root / "sensevoice-vad")
    write_tiny_fsmn_vad(with_vad / "vad")
    return {"sensevoice": plain, "sensevoice+vad": with_vad, "vad": write_tiny_fsmn_vad(root / "vad"),
            "paraformer": write_tiny_paraformer_streaming(root / "paraformer")}


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> bytes:
    return speech_wav("你好，今天天气很好。", tmp_path_factory.mktemp("wav") / "hello.wav")


@pytest.fixture(scope="module")
def long_audio(speech) -> bytes:
    """About 70 s: nine times (the sentence, 4 s of silence)."""
    return (speech + SILENCE) * 9



def spy_on_pieces(handle, monkeypatch) -> list[int]:
    """The length (samples) of every piece of audio the handle's AutoModel is asked to recognise."""
    seen: list[int] = []
    real = handle.model.generate

    def generate(input, **kwargs):
        seen.extend(len(piece) for piece in input)
        return real(input=input, **kwargs)

    monkeypatch.setattr(handle.model, "generate", generate)
    return seen


# ---- the plugin ------------------------------------------------------------------------------------


def test_the_host_lists_both_engines_from_the_entry_point(runtime):
    asr, vad = runtime.engines.engines["funasr"], runtime.engines.engines["fsmn-vad"]
    assert (asr.info.kind, asr.info.formats) == ("asr", ("funasr",))
    assert asr.info.capabilities == {"streaming", "emotions", "languages"}
    assert (vad.info.kind, vad.info.formats) == ("vad", ("funasr",))
    assert asr.unavailable() is None and vad.unavailable() is None


def test_a_missing_library_is_named_with_what_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "funasr" else real(name, *a))
    assert FunasrEngine().unavailable() == "needs funasr: pip install 'zishu[asr]'"


def test_importing_the_plugin_imports_no_heavy_library():
    code = "import sys, zishu_funasr; print(sorted({'funasr', 'torch', 'numpy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_loading_is_offline_and_leaves_the_hosts_output_and_logging_alone(models, tmp_path):
    """In a fresh process with every outgoing connection refused: funasr's version print, its root
    logger set-up and its load logging do not reach the host."""
    script = textwrap.dedent(f"""
        import json, logging, socket, sys
        from pathlib import Path

        def refuse(*args, **kwargs):
            raise OSError("network use in a test")
        socket.socket.connect = socket.socket.connect_ex = socket.create_connection = refuse
        from zishu.engines import ModelRef
        from zishu_funasr.engines import FunasrEngine
        folder = Path({str(models["sensevoice"])!r})
        handle = FunasrEngine().load(ModelRef(key=str(folder), path=folder))
        root = logging.getLogger()
        print(json.dumps({{"level": root.level, "handlers": len(root.handlers),
                          "disabled": logging.root.manager.disable,
                          "language": handle.transcribe(bytes(32000)).language}}))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"level": 30, "handlers": 0, "disabled": 0, "language": "zh"}
    assert done.stderr.strip() == ""


# ---- SenseVoice's tags -----------------------------------------------------------------------------

# SenseVoiceSmall's output: language, emotion, event, text normalisation, text. The first two are what
# it says for FunASR's example recordings; the rest show the other tags it emits, in the same form.
GOLD = "the tribal chieftain called for the boy and presented him with fifty pieces of gold"
REAL_OUTPUT = [
    ("<|zh|><|NEUTRAL|><|Speech|><|withitn|>欢迎大家来体验达摩院推出的语音识别模型。",
     Transcript("欢迎大家来体验达摩院推出的语音识别模型。", "zh", "NEUTRAL", "Speech")),
    (f"<|en|><|NEUTRAL|><|Speech|><|woitn|>{GOLD}", Transcript(GOLD, "en", "NEUTRAL", "Speech")),
    ("<|yue|><|HAPPY|><|Laughter|><|withitn|>哈哈，真系好好笑。",
     Transcript("哈哈，真系好好笑。", "yue", "HAPPY", "Laughter")),
    ("<|ja|><|SAD|><|Speech|><|woitn|>うち の 中学 は 弁当 制",
     Transcript("うち の 中学 は 弁当 制", "ja", "SAD", "Speech")),
    ("<|ko|><|ANGRY|><|BGM|><|withitn|>그만해!", Transcript("그만해!", "ko", "ANGRY", "BGM")),
    ("<|nospeech|><|EMO_UNKNOWN|><|Event_UNK|><|woitn|>", Transcript("")),
    ("<|en|><|NEUTRAL|><|Applause|><|withitn|>", Transcript("", "en", "NEUTRAL", "Applause")),
]


@pytest.mark.parametrize("raw,expected", REAL_OUTPUT, ids=[r[:14] for r, _ in REAL_OUTPUT])
def test_sensevoice_output_is_parsed_into_a_transcript(raw, expected):
    assert parse_rich(raw) == expected


def test_pieces_are_merged_in_order_with_the_most_common_tags():
    pieces = [parse_rich("<|zh|><|NEUTRAL|><|Speech|><|withitn|>你好。"),
              parse_rich("<|en|><|HAPPY|><|Speech|><|withitn|>OK then."),
              parse_rich("<|nospeech|><|EMO_UNKNOWN|><|Event_UNK|><|woitn|>"),
              parse_rich("<|zh|><|HAPPY|><|Laughter|><|withitn|>哈哈")]
    assert merged(pieces) == Transcript("你好。OK then.哈哈", "zh", "HAPPY", "Speech")
    assert merged([]) == Transcript("")


def test_text_is_joined_with_a_space_only_between_non_cjk_words():
    assert join_text("你好。", "今天") == "你好。今天"
    assert join_text("hello", "world ") == "hello world"
    assert join_text("dog", "来") == "dog来"
    assert join_text("", "x") == "x"


# ---- SenseVoice ------------------------------------------------------------------------------------


def test_sensevoice_transcribes_speech_through_the_host(runtime, models, speech):
    ready = use(runtime, "asr", str(models["sensevoice"]))
    assert ready.engine.info.name == "funasr" and ready.model.format == "funasr"
    result = ready.handle.transcribe(speech)
    assert (result.language, result.emotion, result.event, result.final) == ("zh", "NEUTRAL", "Speech", True)
    assert result.text and "<|" not in result.text
    assert use(runtime, "asr", str(models["sensevoice"])).handle is ready.handle  # loaded once
    assert ready.handle.transcribe(speech, language="zh-CN").language == "zh"


def test_sensevoice_refuses_a_language_it_does_not_know(models, speech):
    handle = _load(FunasrEngine(), models["sensevoice"])
    with pytest.raises(EngineError, match="does not know the language 'fr'; it knows auto, zh, en, yue, ja, ko"):
        handle.transcribe(speech, language="fr")


def test_long_audio_is_cut_at_the_speech_segments_of_the_folders_vad(runtime, models, long_audio, monkeypatch):
    handle = use(runtime, "asr", str(models["sensevoice+vad"])).handle
    pieces = spy_on_pieces(handle, monkeypatch)
    result = handle.transcribe(long_audio)
    assert (result.language, result.emotion, result.event) == ("zh", "NEUTRAL", "Speech")
    assert len(pieces) >= 3 and max(pieces) <= 30 * RATE
    assert sum(pieces) < len(long_audio) // 2 - 3 * RATE  # the silence after the last sentence is left out


def test_a_vad_loaded_on_its_own_can_be_paired_with_sensevoice(runtime, models, long_audio, monkeypatch):
    handle = use(runtime, "asr", str(models["sensevoice"])).handle
    handle.use_vad(use(runtime, "vad", str(models["vad"])).handle)
    pieces = spy_on_pieces(handle, monkeypatch)
    assert handle.transcribe(long_audio).language == "zh"
    assert sum(pieces) < len(long_audio) // 2 - 3 * RATE


def test_without_a_vad_long_audio_is_cut_into_30_s_windows_at_quiet_moments(models, long_audio, monkeypatch):
    handle = _load(FunasrEngine(), models["sensevoice"])
    pieces = spy_on_pieces(handle, monkeypatch)
    assert handle.transcribe(long_audio).language == "zh"
    assert len(pieces) == 3 and max(pieces) <= 30 * RATE and sum(pieces) == len(long_audio) // 2
    samples = np.frombuffer(long_audio, "<i2")
    for cut in np.cumsum(pieces)[:-1]:
        assert not samples[cut - 400:cut + 400].any()  # in silence


def test_cuts_and_segment_grouping():
    quiet = np.ones(100 * RATE, np.float32)
    quiet[27 * RATE:28 * RATE] = 0
    assert quiet_cuts(quiet, 0, len(quiet), 30 * RATE)[0] == (0, 27 * RATE + 400)
    assert quiet_cuts(quiet, 5, 10, 30 * RATE) == [(5, 10)]
    segments = [(1.0, 5.0), (6.0, 20.0), (25.0, 40.0), (41.0, 100.0)]
    assert speech_pieces(quiet, segments, 30 * RATE)[:3] == [(RATE, 20 * RATE), (25 * RATE, 40 * RATE),
                                                             (41 * RATE, 41 * RATE + 24 * RATE + 400)]
    assert speech_pieces(quiet, [(200.0, 210.0)], 30 * RATE) == []  # past the end


def test_sensevoice_stream_reads_to_the_end_and_yields_one_final_transcript(models, speech):
    handle = _load(FunasrEngine(), models["sensevoice"])
    results = list(handle.stream(iter([speech[:5001], speech[5001:]])))
    assert results == [handle.transcribe(speech)] and results[0].final


# ---- streaming Paraformer --------------------------------------------------------------------------


def test_paraformer_yields_partials_while_the_audio_is_still_arriving(runtime, models, speech):
    handle = use(runtime, "asr", str(models["paraformer"])).handle
    step = 3200  # 100 ms a chunk
    consumed = []

    def microphone():
        for i in range(0, len(speech), step):
            consumed.append(i)
            yield speech[i:i + step]

    results = []
    for transcript in handle.stream(microphone()):
        results.append((len(consumed), transcript))
    chunks = -(-len(speech) // step)
    partials = [t for n, t in results if not t.final]
    assert partials and results[0][0] < chunks and not results[0][1].final  # before the input ran out
    assert results[0][0] == CHUNK_BYTES // step  # as soon as the first 600 ms were in
    assert [t.final for _, t in results] == [False] * len(partials) + [True]
    texts = [t.text for _, t in results]
    assert all(b.startswith(a) for a, b in itertools.pairwise(texts))  # each partial grows the last
    assert results[-1][1] == handle.transcribe(speech)  # the stream ends where a whole-utterance call does
    assert results[-1][1].language is None and results[-1][1].emotion is None


# ---- FSMN VAD --------------------------------------------------------------------------------------


def test_the_vad_finds_where_someone_speaks(runtime, models, speech):
    handle = use(runtime, "vad", str(models["vad"])).handle
    spoken = len(speech) / 2 / RATE
    segments = handle.speech(SILENCE + speech + SILENCE + speech)
    assert len(segments) == 2
    for (start, end), expected in zip(segments, (4.0, 8.0 + spoken), strict=True):
        assert abs(start - expected) < 0.5 and abs(end - (expected + spoken)) < 0.5
    assert handle.speech(SILENCE) == [] and handle.speech(b"") == []


# ---- rejections ------------------------------------------------------------------------------------


def _load(engine, folder: Path):
    from zishu.engines import ModelRef

    return engine.load(ModelRef(key=str(folder), path=folder, format="funasr"))


@pytest.mark.parametrize("which", ["sensevoice", "paraformer"])
def test_pcm_with_an_odd_byte_count_or_not_bytes_is_refused(models, which):
    handle = _load(FunasrEngine(), models[which])
    with pytest.raises(EngineError, match=r"16-bit PCM .*: 3 bytes is an odd count"):
        handle.transcribe(b"\x00\x01\x02")
    with pytest.raises(EngineError, match="must be bytes of 16-bit PCM, not str"):
        handle.transcribe("hello")
    with pytest.raises(EngineError, match="odd count"):
        list(handle.stream(iter([bytes(CHUNK_BYTES + 1)])))


def test_the_vad_refuses_an_odd_byte_count(models):
    with pytest.raises(EngineError, match="5 bytes is an odd count"):
        _load(FsmnVadEngine(), models["vad"]).speech(bytes(5))


@pytest.mark.parametrize("which", ["sensevoice", "paraformer"])
def test_empty_audio_gives_an_empty_transcript_and_a_sliver_is_heard(models, which):
    handle = _load(FunasrEngine(), models[which])
    assert handle.transcribe(b"") == Transcript("")
    assert list(handle.stream(iter([]))) == [Transcript("")]
    assert handle.transcribe(bytes(2)).final  # one sample: padded to a frame, not an error


@pytest.mark.parametrize("missing", ["model.pt", "config.yaml", "bpe.model"])
def test_a_folder_missing_a_file_is_refused_naming_it(runtime, models, tmp_path, missing):
    folder = shutil.copytree(models["sensevoice"], tmp_path / "broken")
    (folder / missing).unlink()
    with pytest.raises(EngineError, match=f"{missing} is missing from the model folder {re.escape(str(folder))}"):
        use(runtime, "asr", str(folder), engine="funasr")
    assert runtime.models.loaded() == []


def test_a_folder_whose_vad_model_is_incomplete_is_refused(runtime, models, tmp_path):
    folder = shutil.copytree(models["sensevoice+vad"], tmp_path / "broken")
    (folder / "vad" / "model.pt").unlink()
    with pytest.raises(EngineError, match=r"\(its vad/ model\): model.pt is missing"):
        use(runtime, "asr", str(folder))


def test_a_folder_without_configuration_json_needs_config_and_weights(models, tmp_path):
    folder = shutil.copytree(models["paraformer"], tmp_path / "bare")
    (folder / "configuration.json").unlink()
    assert _load(FunasrEngine(), folder).transcribe(bytes(3200)).final  # funasr finds tokens.json, am.mvn itself
    (folder / "model.pt").unlink()
    with pytest.raises(EngineError, match=re.escape("model.pt is missing")):
        _load(FunasrEngine(), folder)


@pytest.mark.parametrize("config,error", [
    ("encoder: SenseVoiceEncoderSmall\n", "`model:` .* is missing"),
    ("model: [1, 2\n", "not valid YAML"),
    ("model: Paraformer\n", "model 'Paraformer' is not one the funasr engine runs"),
])
def test_a_config_that_names_no_model_it_runs_is_refused(models, tmp_path, config, error):
    folder = shutil.copytree(models["sensevoice"], tmp_path / "odd")
    (folder / "config.yaml").write_text(config)
    with pytest.raises(EngineError, match=f"config.yaml: {error}"):
        _load(FunasrEngine(), folder)


def test_each_engine_refuses_the_others_model(runtime, models, tmp_path):
    with pytest.raises(EngineError, match="is an FSMN voice activity model: load it as vad"):
        use(runtime, "asr", str(models["vad"]))
    with pytest.raises(EngineError, match="model 'SenseVoiceSmall' is not an FSMN voice activity model"):
        use(runtime, "vad", str(models["sensevoice"]))
    with pytest.raises(EngineError, match="a FunASR model is a folder"):
        _load(FunasrEngine(), models["sensevoice"] / "model.pt")
