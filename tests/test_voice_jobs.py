"""The ``speech``, ``transcription`` and ``completion`` job types on one machine, through
``POST /api/jobs``: every bad parameter refused at submit with a message naming its field (nothing
queued), and the three run by the app's own queue with the tiny models (a Piper-format voice, a
FunASR SenseVoice, the scripted GGUF). Across machines: tests/test_cluster_voice.py."""

from __future__ import annotations

import base64
import hashlib
import time
import wave

import pytest

from conftest import install_resource
from tiny_companion import REPLY
from zishu.jobs import records

WAV_HEADER_ONLY = base64.b64encode(b"hello, not audio").decode()


@pytest.fixture(scope="module")
def piper(tmp_path_factory):
    from tiny_voice import write_tiny_piper_voice

    return write_tiny_piper_voice(tmp_path_factory.mktemp("piper") / "piper")


@pytest.fixture
def client(companion_home, piper, runtime):
    from zishu.web.app import create_app

    install_resource(companion_home, "acme/piper", {"engine": "piper", "language": "zh-CN"}, kind="voice",
                     files={p.name: p for p in piper.iterdir()})
    test_client = create_app(runtime, "s3cret").test_client()
    test_client.environ_base.update(HTTP_X_ZISHU_TOKEN="s3cret")
    return test_client


SPEAK = {"text": "你好。", "voice": "acme/piper"}
ASK = {"model": "acme/scripted", "prompt": "Hello"}
REFUSED = [
    ("speech", {"voice": "acme/piper"}, 400, '"text": Field required'),
    ("speech", {**SPEAK, "text": "   "}, 400, '"text" must hold some text'),
    ("speech", {**SPEAK, "text": "a" * 4097}, 400, '"text": String should have at most 4096'),
    ("speech", {"text": "hi"}, 400, '"voice": Field required'),
    ("speech", {**SPEAK, "format": "ogg"}, 400, '"format": Input should be'),
    ("speech", {**SPEAK, "speed": 9}, 400, '"speed": Input should be less than or equal to 4'),
    ("speech", {**SPEAK, "speaker": ""}, 400, '"speaker": String should have at least 1'),
    ("speech", {**SPEAK, "volume": 3}, 400, '"volume": Extra inputs are not permitted'),
    ("speech", {**SPEAK, "voice": "acme/scripted"}, 400, '"voice": acme/scripted@1.0.0 is a llm model, not tts'),
    ("speech", {**SPEAK, "voice": "acme/nothing"}, 404, '"voice": acme/nothing'),
    ("speech", {**SPEAK, "voice": "acme/mei"}, 400, '"voice": acme/mei@1.0.0 is a character, not a model'),
    ("transcription", {"model": "acme/ear"}, 400, 'give the audio as "audio"'),
    ("transcription", {"audio": WAV_HEADER_ONLY, "path": "/tmp/x.wav"}, 400, 'give the audio as "audio"'),
    ("transcription", {"audio": "not base64!"}, 400, '"audio" is not base64'),
    ("transcription", {"audio": "data:audio/wav,abc"}, 400, '"audio": a data URL must be'),
    ("transcription", {"audio": WAV_HEADER_ONLY}, 400, '"audio": it is not audio ffmpeg can read'),
    ("transcription", {"path": "said.wav"}, 400, '"path": \'said.wav\' is not an absolute path'),
    ("transcription", {"path": "/no/such/said.wav"}, 400, '"path": \'/no/such/said.wav\' is not a file'),
    ("transcription", {"audio": WAV_HEADER_ONLY, "language": "english!"}, 400, '"language": String should match'),
    ("transcription", {"audio": WAV_HEADER_ONLY, "model": "acme/scripted"}, 400,
     '"model": acme/scripted@1.0.0 is a llm model, not asr'),
    ("transcription", {"audio": WAV_HEADER_ONLY, "model": "acme/nothing"}, 404, '"model": acme/nothing'),
    ("completion", {"model": "acme/scripted"}, 400, 'give "messages"'),
    ("completion", {**ASK, "messages": [{"role": "user", "content": "hi"}]}, 400, 'give "messages"'),
    ("completion", {"model": "acme/scripted", "messages": []}, 400, '"messages" must not be empty'),
    ("completion", {"model": "acme/scripted", "messages": [{"role": "tool", "content": "hi"}]}, 400,
     '"messages[0].role": Input should be'),
    ("completion", {"model": "acme/scripted", "messages": [{"role": "user", "content": "x" * 4001}]}, 400,
     "messages[0] is 4,001 characters long"),
    ("completion", {**ASK, "prompt": "  "}, 400, '"prompt" must hold some text'),
    ("completion", {**ASK, "max_tokens": 0}, 400, '"max_tokens": Input should be greater than or equal to 1'),
    ("completion", {**ASK, "temperature": 3}, 400, '"temperature": Input should be less than or equal to 2'),
    ("completion", {**ASK, "top_p": 0}, 400, '"top_p": Input should be greater than 0'),
    ("completion", {**ASK, "seed": "7"}, 400, '"seed": Input should be a valid integer'),
    ("completion", {**ASK, "stop": ["a", "b", "c", "d", "e"]}, 400, '"stop": List should have at most 4'),
    ("completion", {"prompt": "hi"}, 400, '"model": Field required'),
    ("completion", {**ASK, "model": "acme/ear"}, 400, '"model": acme/ear@1.0.0 is a asr model, not llm'),
    ("completion", {**ASK, "model": "acme/nothing"}, 404, '"model": acme/nothing'),
    ("completion", {**ASK, "model": "acme/mei"}, 400, '"model": acme/mei@1.0.0 is a character, not a model'),
]


def test_every_bad_parameter_is_refused_at_submit_naming_its_field(client):
    for kind, params, status, message in REFUSED:
        answer = client.post("/api/jobs", json={"kind": kind, "params": params})
        assert answer.status_code == status and message in answer.json["error"]["message"], (kind, params, answer.json)
    assert records.recent() == []  # nothing was queued


def wait(client, job_id: int, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while (job := client.get(f"/api/jobs/{job_id}").json["job"])["status"] in ("PENDING", "RUNNING"):
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
    assert job["status"] == "SUCCESS", job
    return job


def test_speech_transcription_and_completion_run_on_the_apps_own_queue(client, runtime, companion_home, tmp_path):
    from tiny_funasr import speech_wav

    runtime.jobs.start_consumer(1)
    submitted = client.post("/api/jobs", json={"kind": "speech", "params": {**SPEAK, "format": "flac"}})
    assert submitted.status_code == 202
    spoken = wait(client, submitted.json["job"]["id"])["result"]
    audio = companion_home / spoken["audio"]
    assert audio.read_bytes()[:4] == b"fLaC" and spoken["media_type"] == "audio/flac"
    assert hashlib.sha256(audio.read_bytes()).hexdigest() == spoken["sha256"] and spoken["seconds"] > 0

    speech_wav("你好世界", tmp_path / "said.wav")
    heard = client.post("/api/jobs", json={"kind": "transcription", "params": {"path": str(tmp_path / "said.wav")}})
    assert heard.status_code == 202
    params = heard.json["job"]["params"]
    assert params["model"] == "acme/ear"  # the first installed ASR model, as none is set
    assert (companion_home / params["input"]).read_bytes() == (tmp_path / "said.wav").read_bytes()
    result = wait(client, heard.json["job"]["id"])["result"]
    with wave.open(str(tmp_path / "said.wav")) as w:
        assert result["duration"] == pytest.approx(w.getnframes() / w.getframerate(), abs=0.01)
    assert isinstance(result["text"], str) and len(result["segments"]) >= 1
    assert not (companion_home / params["input"]).exists()  # its copy is removed once heard

    answered = client.post("/api/jobs", json={"kind": "completion", "params": {**ASK, "max_tokens": 64}})
    result = wait(client, answered.json["job"]["id"])["result"]
    assert result["text"] == REPLY and result["finish_reason"] == "stop" and result["usage"]["completion_tokens"] > 0
