"""The built-in TTS engines (plugins/zishu_tts): espeak-ng through the real command, Piper on a tiny
random ONNX voice built here, and the GPT-SoVITS and CosyVoice clients against real local HTTP
servers that speak those servers' APIs. Each is used directly and through the host
(entry point -> Runtime.engines -> zishu.engines.use)."""

from __future__ import annotations

import io
import json
import shutil
import socket
import threading
import urllib.parse
import wave
from dataclasses import replace
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from conftest import LoopbackServer
from tiny_voice import write_tiny_piper_voice
from zishu.audio import write_wav
from zishu.engines import AudioChunk, ModelRef, use
from zishu.errors import EngineError
from zishu_tts.cosyvoice import CosyVoiceEngine
from zishu_tts.espeak import EspeakEngine, default_voice, run_espeak, usable_voice
from zishu_tts.gpt_sovits import GptSovitsEngine
from zishu_tts.piper import PiperEngine, ids_of, phonemes_of
from zishu_tts.text import split_for_speech
from zishu_tts.wav import pcm_of_wav, wav_stream

CHINESE = "你好，我是小雨。今天天气很好！"
ENGLISH = "Hello there, how are you? I am fine."


def pcm_of(chunks) -> bytes:
    return b"".join(c.pcm for c in chunks)


@pytest.fixture(scope="module")
def zh_voice(tmp_path_factory) -> Path:
    return write_tiny_piper_voice(tmp_path_factory.mktemp("piper") / "zh")


@pytest.fixture(scope="module")
def duo_voice(tmp_path_factory) -> Path:
    return write_tiny_piper_voice(tmp_path_factory.mktemp("piper") / "duo", name="en_US-duo-x_low",
                                  espeak_voice="en-us", sample_rate=22050, speakers=("alice", "bob"))



# ---- text ----------------------------------------------------------------------------------------


def test_text_is_cut_into_sentences_and_the_first_at_its_comma():
    assert split_for_speech(CHINESE) == ["你好，", "我是小雨。", "今天天气很好！"]
    assert split_for_speech("Pi is 3.14, and 1,000 is big. “Yes!” she said") == [
        "Pi is 3.14,", "and 1,000 is big.", "“Yes!”", "she said"]
    assert split_for_speech("好，") == ["好，"]
    assert split_for_speech("…。!") == []


# ---- espeak-ng -----------------------------------------------------------------------------------


def test_espeak_streams_the_short_first_piece_first():
    handle = EspeakEngine().load(None)
    chunks = handle.speak(CHINESE)
    first = next(chunks)
    assert isinstance(first, AudioChunk) and first.sample_rate == 22050
    assert first.pcm == pcm_of(handle.speak("你好，"))  # the piece before the comma, on its own
    rest = list(chunks)
    assert len(rest) == 2 and all(c.sample_rate == 22050 for c in rest)
    assert first.seconds < rest[1].seconds


def test_espeak_picks_mandarin_for_chinese_and_english_otherwise():
    assert (default_voice(CHINESE), default_voice(ENGLISH)) == ("cmn", "en")
    mandarin = usable_voice("cmn")  # cmn-latn-pinyin where espeak-ng 1.51 reads tones as English
    assert "(en)" not in run_espeak(["-q", "--ipa", "-v", mandarin], "你好").decode()
    handle = EspeakEngine().load(None)
    assert pcm_of(handle.speak("你好")) == pcm_of(handle.speak("你好", voice=mandarin))
    assert pcm_of(handle.speak("你好")) != pcm_of(handle.speak("你好", voice="en"))
    assert pcm_of(handle.speak("Hello")) == pcm_of(handle.speak("Hello", voice="en"))
    assert {"cmn", "en-us", "fr-fr"} <= set(handle.voices())


def test_espeak_speed_and_its_rejections():
    handle = EspeakEngine().load(None)
    assert len(pcm_of(handle.speak(ENGLISH, speed=2))) < 0.7 * len(pcm_of(handle.speak(ENGLISH)))
    with pytest.raises(EngineError, match="espeak-ng has no voice 'klingon'"):
        handle.speak("hi", voice="klingon")
    with pytest.raises(EngineError, match="speed 9 is out of range"):
        handle.speak("hi", speed=9)


def test_espeak_says_how_to_install_it_when_the_command_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    engine = EspeakEngine()
    assert engine.unavailable() == "needs espeak-ng (apt install espeak-ng / brew install espeak-ng)"
    with pytest.raises(EngineError, match="apt install espeak-ng"):
        run_espeak(["--voices"], "")
    assert "espeak-ng" in PiperEngine().unavailable()


def test_a_catalog_espeak_voice_speaks_in_its_speaker(tmp_path):
    folder = tmp_path / "voice"
    folder.mkdir()
    ref = ModelRef(key="k", path=folder, id="espeak-ng/en-us", engine="espeak-ng", spec={"speaker": "en-us"})
    handle = EspeakEngine().load(ref)
    assert pcm_of(handle.speak("Hello")) == pcm_of(handle.speak("Hello", voice="en-us"))
    with pytest.raises(EngineError, match="no voice 'nope'"):
        EspeakEngine().load(ModelRef(key="k", path=folder, spec={"speaker": "nope"}))


# ---- WAV -----------------------------------------------------------------------------------------


def test_wav_round_trip(tmp_path):
    chunks = list(EspeakEngine().load(None).speak(ENGLISH))
    rate, seconds = write_wav(tmp_path / "out.wav", chunks)
    data = (tmp_path / "out.wav").read_bytes()
    assert pcm_of_wav(data, "out.wav") == (pcm_of(chunks), rate)
    assert seconds == pytest.approx(sum(c.seconds for c in chunks))
    # the same file arriving 7 bytes at a time, as over a network
    got_rate, pcm = wav_stream((data[i:i + 7] for i in range(0, len(data), 7)), "test")
    pieces = list(pcm)
    assert got_rate == rate and b"".join(pieces) == pcm_of(chunks)
    assert all(len(p) % 2 == 0 for p in pieces)


def test_wavs_that_are_not_16_bit_mono_are_refused():
    stereo = io.BytesIO()
    with wave.open(stereo, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(bytes(8))
    with pytest.raises(EngineError, match="2 channels"):
        pcm_of_wav(stereo.getvalue(), "x")
    with pytest.raises(EngineError, match="2 channels"):
        wav_stream([stereo.getvalue()], "x")
    with pytest.raises(EngineError, match="not a WAV"):
        wav_stream([b"<html>oops</html>"], "x")
    with pytest.raises(EngineError, match="no audio"):
        wav_stream([], "x")


# ---- Piper ---------------------------------------------------------------------------------------


def test_piper_streams_a_voice_at_its_rate(zh_voice):
    handle = PiperEngine().load(ModelRef(key="k", path=zh_voice))
    assert handle.voices() == ["zh_CN-tiny-x_low"]
    chunks = handle.speak(CHINESE)
    first = next(chunks)
    assert first.sample_rate == 16000 and first.pcm
    assert first.pcm == pcm_of(handle.speak("你好，"))
    rest = list(chunks)
    assert len(rest) == 2 and all(c.sample_rate == 16000 for c in rest)
    # speed divides length_scale, which the model honours like a real voice
    normal, fast = len(pcm_of(handle.speak("我是小雨。"))), len(pcm_of(handle.speak("我是小雨。", speed=2)))
    assert abs(2 * fast - normal) <= 4
    assert list(handle.speak("……！")) == []  # nothing to say
    with pytest.raises(EngineError, match="has one speaker; there is no 'bob'"):
        handle.speak("hi", voice="bob")


def test_piper_phonemes_and_ids_follow_pipers_scheme(duo_voice):
    handle = PiperEngine().load(ModelRef(key="k", path=duo_voice))
    phonemes = phonemes_of("Hello, world. Pi is 3.14!", handle.config, handle.espeak_voice)
    text = "".join(phonemes)
    assert text.startswith("həlˈoʊ, wˈɜːld.") and text.endswith("!") and "3" not in text
    id_map = {"_": [0], "^": [1], "$": [2], "a": [7], "b": [8, 9]}
    assert ids_of(["a", "x", "b"], id_map) == [1, 0, 7, 0, 8, 9, 0, 2]  # "x" is not in the map: skipped
    as_text = replace(handle.config, phoneme_type="text")  # voices trained on letters, not phonemes
    assert phonemes_of("Café.", as_text, None) == ["C", "a", "f", "e", "\u0301", "."]


def test_piper_speakers_of_a_multi_speaker_voice(duo_voice):
    handle = PiperEngine().load(ModelRef(key="k", path=duo_voice))
    assert handle.voices() == ["alice", "bob"]
    alice = pcm_of(handle.speak(ENGLISH))
    assert alice == pcm_of(handle.speak(ENGLISH, voice="alice")) == pcm_of(handle.speak(ENGLISH, voice="0"))
    bob = list(handle.speak(ENGLISH, voice="bob"))
    assert pcm_of(bob) != alice and bob[0].sample_rate == 22050
    with pytest.raises(EngineError, match="no speaker 'carol'; its speakers: alice, bob"):
        handle.speak(ENGLISH, voice="carol")


def test_piper_loads_a_voice_folder_through_the_host(runtime, zh_voice):
    assert {"espeak-ng", "piper", "gpt-sovits", "cosyvoice"} <= set(runtime.engines.engines)
    ready = use(runtime, "tts", str(zh_voice))
    assert ready.engine.info.name == "piper" and ready.model.format == "onnx"
    chunks = list(ready.handle.speak("你好，世界。"))
    assert [c.sample_rate for c in chunks] == [16000, 16000]
    assert use(runtime, "tts").engine.info.name == "espeak-ng"  # no model: the offline default
    with pytest.raises(EngineError, match="the piper engine needs a voice"):
        use(runtime, "tts", engine="piper")


def test_a_piper_folder_without_its_config_is_refused(runtime, zh_voice, tmp_path):
    folder = tmp_path / "half"
    folder.mkdir()
    shutil.copy(zh_voice / "zh_CN-tiny-x_low.onnx", folder)
    with pytest.raises(EngineError, match=r"has no zh_CN-tiny-x_low\.onnx\.json beside it"):
        use(runtime, "tts", str(folder))
    assert runtime.models.loaded() == []


@pytest.mark.parametrize("change, message", [
    (lambda c: c["audio"].pop("sample_rate"), "audio.sample_rate: missing"),
    (lambda c: c.update(phoneme_type="pinyin"), "phoneme_type: 'pinyin' is not supported"),
    (lambda c: c["phoneme_id_map"].pop("^"), "phoneme_id_map: has no '\\^'"),
    (lambda c: c["espeak"].update(voice="xx-nowhere"), "espeak.voice: espeak-ng has no voice 'xx-nowhere'"),
    (lambda c: c["inference"].update(noise_scale="loud"), "inference.noise_scale: expected a number"),
    (lambda c: c.update(speaker_id_map={"alice": "zero"}), "speaker_id_map: 'alice' must map to an integer"),
])
def test_a_broken_piper_config_is_refused_naming_the_field(zh_voice, tmp_path, change, message):
    folder = tmp_path / "broken"
    shutil.copytree(zh_voice, folder)
    path = folder / "zh_CN-tiny-x_low.onnx.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    change(config)
    path.write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(EngineError, match=f"onnx.json: {message}"):
        PiperEngine().load(ModelRef(key="k", path=folder))


def test_a_file_that_is_not_an_onnx_model_is_refused(zh_voice, tmp_path):
    folder = tmp_path / "junk"
    shutil.copytree(zh_voice, folder)
    (folder / "zh_CN-tiny-x_low.onnx").write_bytes(b"not a model")
    with pytest.raises(EngineError, match="onnxruntime cannot load it"):
        PiperEngine().load(ModelRef(key="k", path=folder))


# ---- the speech servers --------------------------------------------------------------------------


class SpeechServer(LoopbackServer):
    """A local HTTP server answering POSTs like a speech server: ``answer(server, path, fields)``
    returns (status, headers, body pieces). Between the first piece and the rest it waits for
    ``gate`` (set by default), so a test can hold the answer open and see audio arrive early."""

    def __init__(self, answer):
        self.requests: list[tuple[str, dict]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.finished = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                if self.headers["Content-Type"] == "application/json":
                    fields = json.loads(body)
                else:
                    fields = dict(urllib.parse.parse_qsl(body))
                server.requests.append((self.path, fields))
                status, headers, pieces = answer(server, self.path, fields)
                self.send_response(status)
                for name, value in {"Transfer-Encoding": "chunked", **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                for i, piece in enumerate(pieces):
                    if i == 1:
                        server.gate.wait(30)
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                server.finished.set()

        super().__init__(Handler)


def samples(text: str, count: int) -> bytes:
    """``count`` int16 samples that depend on ``text``, so each piece's audio is recognisable."""
    seed = sum(text.encode())
    return b"".join(((seed + i) % 2000 - 1000).to_bytes(2, "little", signed=True) for i in range(count))


def wav_header(rate: int) -> bytes:
    """The header GPT-SoVITS streams first: a WAV with no frames yet (its sizes say 0)."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
    return out.getvalue()


def gpt_sovits_answer(server, path, fields):
    if path != "/tts":
        return 404, {}, [b'{"detail":"Not Found"}']
    if fields.get("prompt_lang") not in ("zh", "en", "ja", "ko", "yue"):
        return 400, {"Content-Type": "application/json"}, [
            json.dumps({"message": f"prompt_lang: {fields.get('prompt_lang')} is not supported in version v2"})
            .encode()]
    audio = samples(fields["text"], 3000)
    # the header, then the audio in pieces that split samples, as a network may
    return 200, {"Content-Type": "audio/wav"}, [wav_header(32000) + audio[:1001], audio[1001:4001], audio[4001:]]


def cosyvoice_answer(server, path, fields):
    if path != "/inference_sft":
        return 404, {}, [b'{"detail":"Not Found"}']
    if fields.get("spk_id") not in ("中文女", "英文女", "中文男"):
        return 400, {"Content-Type": "application/json"}, [json.dumps({"detail": "unknown spk_id"}).encode()]
    audio = samples(fields["tts_text"], 2000)
    return 200, {}, [audio[:999], audio[999:]]


@pytest.fixture
def gpt_sovits(monkeypatch):
    with SpeechServer(gpt_sovits_answer) as server:
        monkeypatch.setenv("ZISHU_GPT_SOVITS_URL", server.url)
        yield server


@pytest.fixture
def cosyvoice(monkeypatch):
    with SpeechServer(cosyvoice_answer) as server:
        monkeypatch.setenv("ZISHU_COSYVOICE_URL", server.url)
        monkeypatch.delenv("ZISHU_COSYVOICE_SAMPLE_RATE", raising=False)
        yield server


def gpt_sovits_folder(root: Path, **neutral) -> Path:
    """A GPT-SoVITS voice folder: a neutral and a happy reference clip."""
    folder = root / "xiaoyu-gsv"
    folder.mkdir()
    for name in ("neutral.wav", "happy.wav"):
        (folder / name).write_bytes(wav_header(32000))
    config = {"neutral": {"ref_audio": "neutral.wav", "prompt_text": "我是参考音频。", **neutral},
              "happy": {"ref_audio": "happy.wav", "prompt_text": "太好了！", "prompt_lang": "zh"}}
    (folder / "gpt-sovits.json").write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    return folder


def test_gpt_sovits_streams_audio_before_the_server_finishes(gpt_sovits, tmp_path):
    folder = gpt_sovits_folder(tmp_path)
    handle = GptSovitsEngine().load(ModelRef(key="k", path=folder))
    gpt_sovits.gate.clear()
    chunks = handle.speak(CHINESE, emotion="HAPPY", speed=1.25)
    first = next(chunks)
    assert not gpt_sovits.finished.is_set()  # the server is still holding its answer open
    assert first.sample_rate == 32000 and first.pcm == samples("你好，", 3000)[:1000]
    assert [fields["text"] for _, fields in gpt_sovits.requests] == ["你好，"]
    gpt_sovits.gate.set()
    rest = list(chunks)
    assert pcm_of([first, *rest]) == b"".join(samples(p, 3000) for p in ["你好，", "我是小雨。", "今天天气很好！"])
    _path, fields = gpt_sovits.requests[0]
    assert fields == {"text": "你好，", "text_lang": "zh", "ref_audio_path": str(folder / "happy.wav"),
                      "prompt_text": "太好了！", "prompt_lang": "zh", "media_type": "wav",
                      "streaming_mode": True, "speed_factor": 1.25}


def test_gpt_sovits_emotions_fall_back_to_neutral(gpt_sovits, tmp_path):
    folder = gpt_sovits_folder(tmp_path)
    handle = GptSovitsEngine().load(ModelRef(key="k", path=folder, id="alice/xiaoyu-gsv"))
    assert handle.voices() == ["alice/xiaoyu-gsv"] and handle.emotions() == ["neutral", "happy"]
    list(handle.speak("Hi.", emotion="angry"))
    list(handle.speak("Hi."))
    for _, fields in gpt_sovits.requests:
        assert fields["ref_audio_path"] == str(folder / "neutral.wav")
        assert (fields["prompt_text"], fields["prompt_lang"], fields["text_lang"]) == ("我是参考音频。", "zh", "en")


def test_gpt_sovits_through_the_host_and_with_a_clip_as_the_voice(runtime, gpt_sovits, tmp_path):
    folder = gpt_sovits_folder(tmp_path)
    ready = use(runtime, "tts", str(folder), engine="gpt-sovits")
    assert {c.sample_rate for c in ready.handle.speak("你好。")} == {32000}
    assert [m["ram_bytes"] for m in runtime.models.loaded()] == [0]  # the model lives in the server
    bare = use(runtime, "tts", engine="gpt-sovits").handle
    with pytest.raises(EngineError, match="needs a reference clip"):
        bare.speak("你好。")
    assert pcm_of(bare.speak("你好。", voice=str(folder / "happy.wav"))) == samples("你好。", 3000)
    assert gpt_sovits.requests[-1][1]["ref_audio_path"] == str(folder / "happy.wav")
    with pytest.raises(EngineError, match="neither this voice"):
        bare.speak("你好。", voice="nobody")


def test_a_gpt_sovits_error_carries_the_servers_message(gpt_sovits, tmp_path):
    handle = GptSovitsEngine().load(ModelRef(key="k", path=gpt_sovits_folder(tmp_path, prompt_lang="xx")))
    with pytest.raises(EngineError, match=rf"GPT-SoVITS server at {gpt_sovits.url}/tts refused the request "
                                          r"\(HTTP 400\): prompt_lang: xx is not supported in version v2"):
        list(handle.speak("你好。"))


@pytest.mark.parametrize("config, message", [
    (None, "no gpt-sovits.json"),
    ({"neutral": {"prompt_text": "x"}}, "neutral.ref_audio: missing"),
    ({"neutral": {"ref_audio": "../outside.wav"}}, "neutral.ref_audio: '../outside.wav' is not a file in"),
    ({"neutral": {"ref_audio": "gone.wav"}}, "neutral.ref_audio: 'gone.wav' is not a file in"),
    ([], "expected an object mapping each emotion"),
])
def test_a_broken_gpt_sovits_folder_is_refused(tmp_path, config, message):
    folder = tmp_path / "voice"
    folder.mkdir()
    (tmp_path / "outside.wav").write_bytes(wav_header(32000))
    if config is not None:
        (folder / "gpt-sovits.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(EngineError, match=message):
        GptSovitsEngine().load(ModelRef(key="k", path=folder))


def test_cosyvoice_streams_raw_pcm_before_the_server_finishes(cosyvoice):
    handle = CosyVoiceEngine().load(None)
    assert "中文女" in handle.voices()
    cosyvoice.gate.clear()
    chunks = handle.speak(CHINESE)
    first = next(chunks)
    assert not cosyvoice.finished.is_set()
    assert first.sample_rate == 22050 and first.pcm == samples("你好，", 2000)[:998]  # whole samples only
    cosyvoice.gate.set()
    rest = list(chunks)
    assert pcm_of([first, *rest]) == b"".join(samples(p, 2000) for p in ["你好，", "我是小雨。", "今天天气很好！"])
    assert cosyvoice.requests[0] == ("/inference_sft", {"tts_text": "你好，", "spk_id": "中文女"})
    list(handle.speak("Hello.", voice="中文男"))
    list(handle.speak("Hello."))
    assert [f["spk_id"] for _, f in cosyvoice.requests[-2:]] == ["中文男", "英文女"]


def test_cosyvoice_through_the_host_at_the_rate_configured(runtime, cosyvoice, monkeypatch):
    monkeypatch.setenv("ZISHU_COSYVOICE_SAMPLE_RATE", "24000")
    ready = use(runtime, "tts", engine="cosyvoice")
    assert {c.sample_rate for c in ready.handle.speak("你好。")} == {24000}
    with pytest.raises(EngineError, match="no speed setting"):
        ready.handle.speak("你好。", speed=1.5)
    with pytest.raises(EngineError, match=r"CosyVoice server at .*/inference_sft refused the request "
                                          r"\(HTTP 400\): unknown spk_id"):
        list(ready.handle.speak("你好。", voice="路人"))
    monkeypatch.setenv("ZISHU_COSYVOICE_SAMPLE_RATE", "fast")
    with pytest.raises(EngineError, match="ZISHU_COSYVOICE_SAMPLE_RATE='fast' is not a sample rate"):
        CosyVoiceEngine().load(None)


@pytest.mark.parametrize("engine, env, hint", [
    (GptSovitsEngine, "ZISHU_GPT_SOVITS_URL", "python api_v2.py"),
    (CosyVoiceEngine, "ZISHU_COSYVOICE_URL", "python server.py"),
])
def test_a_server_that_is_down_is_named_with_how_to_start_it(monkeypatch, tmp_path, engine, env, hint):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv(env, url)
    model = ModelRef(key="k", path=gpt_sovits_folder(tmp_path)) if engine is GptSovitsEngine else None
    with pytest.raises(EngineError, match=rf"no \S+ server answers at {url}/.*{hint}.*{env}"):
        list(engine().load(model).speak("你好。"))
    monkeypatch.setenv(env, "ftp://nowhere")
    with pytest.raises(EngineError, match="is not an http"):
        engine().load(model)
