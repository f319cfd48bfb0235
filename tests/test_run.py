"""``zishu run llm|asr|tts|image|embedding``: each built-in engine answers from the terminal with its
tiny test model, by local path or by installed catalog id; what goes wrong says so with its exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import pytest
from PIL import Image

from conftest import install_resource
from tiny_diffusers import write_tiny_sd
from tiny_funasr import speech_wav, write_tiny_sensevoice
from tiny_gguf import write_tiny_gguf
from tiny_voice import write_tiny_piper_voice


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {
        "gguf": write_tiny_gguf(root / "tiny.gguf"),
        "sensevoice": write_tiny_sensevoice(root / "sensevoice"),
        "piper": write_tiny_piper_voice(root / "voice"),
        "sd": write_tiny_sd(root / "sd"),
        "speech": root / "hello.wav",
        "_": speech_wav("你好，今天天气很好。", root / "hello.wav"),
    }


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


def zishu(home, *args, env=None):
    env = {**os.environ, "ZISHU_HOME": str(home), **(env or {})}
    return subprocess.run([sys.executable, "-m", "zishu.cli", "run", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=180)


def install(home: Path, rid: str, files: dict[str, Path], spec: dict, kind: str = "model") -> None:
    install_resource(home, rid, spec, kind, files)


def test_llm_streams_a_reply_from_a_local_gguf(models, home):
    done = zishu(home, "llm", "--model", models["gguf"], "--max-tokens", 24, "--seed", 3, "hello")
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip()) > 0
    assert "llama-cpp" in done.stderr and "pieces in" in done.stderr and "first after" in done.stderr
    again = zishu(home, "llm", "--model", models["gguf"], "--max-tokens", 24, "--seed", 3, "hello")
    assert again.stdout == done.stdout  # the same seed, the same reply


def test_llm_by_installed_catalog_id(models, home):
    install(home, "acme/tiny-chat", {"tiny.gguf": models["gguf"]}, {"format": "gguf", "role": "llm"})
    done = zishu(home, "llm", "--model", "acme/tiny-chat", "--max-tokens", 8, "hi")
    assert done.returncode == 0, done.stderr
    assert "acme/tiny-chat@1.0.0" in done.stderr


def test_a_model_that_is_not_installed_fails_at_once_with_its_id(home):
    done = zishu(home, "llm", "--model", "qwen/qwen2.5-0.5b-instruct-gguf", "hello")
    assert done.returncode == 3
    assert "qwen/qwen2.5-0.5b-instruct-gguf" in done.stderr and "not installed" in done.stderr


def test_a_model_over_the_memory_budget_is_refused_with_the_numbers(models, home):
    done = zishu(home, "llm", "--model", models["gguf"], "hello", env={"ZISHU_RAM_BUDGET_MB": "0"})
    assert done.returncode == 10, done.stderr
    assert "of RAM with llama-cpp; the budget is 0 B" in done.stderr
    bad = zishu(home, "llm", "--model", models["gguf"], "hello", env={"ZISHU_RAM_BUDGET_MB": "lots"})
    assert bad.returncode == 2 and "ZISHU_RAM_BUDGET_MB must be a whole number of megabytes, not 'lots'" in bad.stderr


def test_embedding_prints_one_vector_per_text(models, home):
    done = zishu(home, "embedding", "--model", models["gguf"], "first text", "second text")
    assert done.returncode == 0, done.stderr
    vectors = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(vectors) == 2 and len(vectors[0]) == 64 and vectors[0] != vectors[1]


def test_asr_transcribes_a_wav_with_its_tags(models, home):
    done = zishu(home, "asr", "--model", models["sensevoice"], models["speech"])
    assert done.returncode == 0, done.stderr
    assert "funasr" in done.stderr and "language zh" in done.stderr and "emotion NEUTRAL" in done.stderr


def test_asr_refuses_a_file_that_is_not_a_wav(models, home, tmp_path):
    (tmp_path / "talk.mp3").write_bytes(b"ID3\x04\x00not a wav")
    done = zishu(home, "asr", "--model", models["sensevoice"], tmp_path / "talk.mp3")
    assert done.returncode == 2 and "talk.mp3: not a PCM WAV file" in done.stderr


def test_tts_speaks_with_the_offline_default_voice_without_a_model(home, tmp_path):
    out = tmp_path / "hi.wav"
    done = zishu(home, "tts", "你好，欢迎回来。", "--out", out)
    assert done.returncode == 0, done.stderr
    assert "espeak-ng" in done.stderr and "first audio after" in done.stderr
    with wave.open(str(out)) as w:
        assert w.getnchannels() == 1 and w.getnframes() > w.getframerate() // 2


def test_tts_with_a_piper_voice_folder(models, home, tmp_path):
    out = tmp_path / "piper.wav"
    done = zishu(home, "tts", "--model", models["piper"], "你好，世界。", "--out", out)
    assert done.returncode == 0, done.stderr
    assert "piper" in done.stderr
    with wave.open(str(out)) as w:
        assert w.getframerate() == 16000 and w.getnframes() > 0


def test_image_draws_pngs_of_the_asked_size(models, home, tmp_path):
    out = tmp_path / "a.png"
    done = zishu(home, "image", "--model", models["sd"], "a girl with silver hair", "--out", out, "--steps", 2,
                 "--width", 64, "--height", 48, "--batch", 2, "--seed", 7)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(out), str(tmp_path / "a-2.png")]
    assert Image.open(out).size == (64, 48) and Image.open(tmp_path / "a-2.png").size == (64, 48)
    assert "2 steps in" in done.stderr


def test_engine_choice_errors_name_what_exists(models, home):
    wrong_kind = zishu(home, "tts", "--engine", "llama-cpp", "hi", "--out", "x.wav")
    assert wrong_kind.returncode == 11 and "llama-cpp is a llm engine, not tts" in wrong_kind.stderr
    unknown = zishu(home, "llm", "--engine", "nope", "--model", models["gguf"], "hi")
    assert unknown.returncode == 11 and "no engine named 'nope'" in unknown.stderr and "llama-cpp" in unknown.stderr
    no_model = zishu(home, "llm", "hi")
    assert no_model.returncode == 11 and "needs a model" in no_model.stderr


def test_an_installed_voice_is_spoken_by_the_engine_it_names(models, home, tmp_path):
    voice_files = {p.name: p for p in models["piper"].iterdir()}
    install(home, "acme/tiny-voice", voice_files, {"engine": "piper", "language": "zh-CN"}, kind="voice")
    out = tmp_path / "voice.wav"
    done = zishu(home, "tts", "--model", "acme/tiny-voice", "你好。", "--out", out)
    assert done.returncode == 0, done.stderr
    assert "piper · acme/tiny-voice@1.0.0" in done.stderr
    listed = subprocess.run([sys.executable, "-m", "zishu.cli", "engines", "--json"], capture_output=True, text=True,
                            env={**os.environ, "ZISHU_HOME": str(home)}, timeout=60)
    engines = {e["name"]: e for e in json.loads(listed.stdout)["engines"]}
    assert engines["piper"]["models"] == ["acme/tiny-voice@1.0.0"] and engines["espeak-ng"]["models"] == []
