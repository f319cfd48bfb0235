"""TTS, ASR and LLM completions across machines: the app (its own ZISHU_HOME, with none of the
models) submits ``speech``, ``transcription`` and ``completion`` jobs; of two ``zishu worker``
processes with ZISHU_HOMEs of their own, the one with the voice and the LLM (``speaker``) speaks and
answers, the one with the ASR model (``ear``) hears. The audio comes back as a result file, sha256
checked; the audio to transcribe travels to the worker with the task, sha256 checked there, and
still reaches the right node after a node without the model refused it (MODEL_NOT_AVAILABLE).
Real redis-server, real Piper-format ONNX voice, real FunASR SenseVoice, real llama.cpp."""

from __future__ import annotations

import base64
import hashlib
import os
import time
import wave

import pytest
import redis

from conftest import install_resource
from test_cluster import start_redis, stop, worker
from test_cluster_routing import advertised
from tiny_companion import REPLY
from zishu.cluster.relay import Relay, input_key
from zishu.errors import ChecksumMismatch

KINDS = "speech,transcription,completion"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, companion_models):
    """Redis, the app's Runtime (it runs nothing itself) and two workers: ``speaker`` (acme/piper,
    acme/scripted) and ``ear`` (acme/ear)."""
    from tiny_voice import write_tiny_piper_voice
    from zishu.runtime import Runtime

    tmp = tmp_path_factory.mktemp("voice-cluster")
    server, port = start_redis(tmp)
    url = f"redis://127.0.0.1:{port}/0"
    piper = write_tiny_piper_voice(tmp / "piper")
    install_resource(tmp / "speaker", "acme/piper", {"engine": "piper", "language": "zh-CN"}, kind="voice",
                     files={p.name: p for p in piper.iterdir()})
    install_resource(tmp / "speaker", "acme/scripted", {"format": "gguf", "role": "llm"},
                     files={"m.gguf": companion_models["scripted"]})
    install_resource(tmp / "ear", "acme/ear", {"format": "funasr", "role": "asr"},
                     files={p.name: p for p in companion_models["ear"].iterdir()})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZISHU_HOME", str(tmp / "app"))
        rt = Runtime(tmp / "app", queue_url=url, accept=[])
        procs = []
        try:
            speaker = worker(tmp, "speaker", url, os.environ.get("PYTHONPATH", ""), tmp / "app", "--accept", KINDS)
            ear = worker(tmp, "ear", url, os.environ.get("PYTHONPATH", ""), tmp / "app", "--accept", KINDS)
            procs = [speaker, ear]
            advertised(url, speaker, "acme/piper", timeout=120)
            advertised(url, ear, "acme/ear", timeout=120)
            yield {"rt": rt, "url": url, "tmp": tmp, "speaker": speaker, "ear": ear}
        finally:
            stop(*procs)
            rt.close()
            server.terminate()
            server.wait(10)


def finished(cluster, job_id: int, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while (job := cluster["rt"].jobs.get(job_id)).status in ("PENDING", "RUNNING"):
        for name in ("speaker", "ear"):
            assert cluster[name].poll() is None, f"{name} exited: {cluster[name].stderr.read()}"
        assert time.monotonic() < deadline, f"job {job_id} is still {job.status}: {job.message}"
        time.sleep(0.05)
    assert job.status == "SUCCESS", f"{job.error_code}: {job.error}"
    return job


def ran_on(job, proc) -> bool:
    return job.worker.split(":")[1] == str(proc.pid)


def test_speech_is_spoken_by_the_node_with_the_voice_and_its_audio_arrives_checked(cluster):
    rt, tmp = cluster["rt"], cluster["tmp"]
    job = finished(cluster, rt.jobs.submit("speech", {"text": "你好，我是小雨。", "voice": "acme/piper"}).id)
    assert ran_on(job, cluster["speaker"])
    result = job.as_dict()["result"]
    audio = tmp / "app" / result["audio"]
    assert result["files"] == [result["audio"]] and audio.is_relative_to(tmp / "app" / "audio" / "speech")
    data = audio.read_bytes()
    assert hashlib.sha256(data).hexdigest() == result["sha256"] and len(data) == result["size"]
    with wave.open(str(audio)) as w:
        assert w.getframerate() == result["sample_rate"] == 16000 and w.getnframes() > 0
    assert result["seconds"] == pytest.approx(w.getnframes() / 16000, abs=0.01)
    assert not (tmp / "ear" / "audio").exists()  # the node without the voice made nothing

    mp3 = finished(cluster, rt.jobs.submit("speech", {"text": "你好。", "voice": "acme/piper", "format": "mp3",
                                                      "speed": 1.5}).id).as_dict()["result"]
    head = (tmp / "app" / mp3["audio"]).read_bytes()[:3]
    assert mp3["media_type"] == "audio/mpeg" and (head == b"ID3" or head[0] == 0xFF)


def test_a_transcription_ships_its_audio_to_the_node_with_the_asr_model_and_returns_text(cluster, tmp_path):
    from tiny_funasr import speech_wav

    rt, tmp = cluster["rt"], cluster["tmp"]
    speech_wav("你好世界", tmp_path / "said.wav")
    wav = (tmp_path / "said.wav").read_bytes()
    job = rt.jobs.submit("transcription", {"audio": "data:audio/wav;base64," + base64.b64encode(wav).decode(),
                                           "model": "acme/ear", "language": "zh"})
    queued = job.as_dict()["params"]
    assert queued["sha256"] == hashlib.sha256(wav).hexdigest() and "audio" not in queued  # the copy, not the text
    assert (tmp / "app" / queued["input"]).read_bytes() == wav
    job = finished(cluster, job.id)
    assert ran_on(job, cluster["ear"])
    result = job.as_dict()["result"]
    assert isinstance(result["text"], str) and result["segments"] and result["model"] == "acme/ear"
    with wave.open(str(tmp_path / "said.wav")) as w:
        assert result["duration"] == pytest.approx(w.getnframes() / w.getframerate(), abs=0.01)  # heard it all
    assert result["language"] == "zh"  # the tiny SenseVoice's tag
    assert not (tmp / "app" / queued["input"]).exists()  # done with: the app's copy is removed
    assert not list((tmp / "ear").glob("audio/inputs/*"))  # and so is the worker's
    assert not redis.Redis.from_url(cluster["url"]).exists(input_key(rt.jobs.node, job.id, 0))


def test_a_transcription_sent_to_a_node_without_the_model_is_rerouted_with_its_audio(cluster, tmp_path):
    from tiny_funasr import speech_wav
    from zishu.cluster import routing
    from zishu.jobs import records

    rt = cluster["rt"]
    speech_wav("一二三", tmp_path / "said.wav")
    queued = rt.jobs.types["transcription"].check({"path": str(tmp_path / "said.wav"), "model": "acme/ear"},
                                                  rt.jobs.service)
    made = records.create("transcription", "stale pick", queued, 0)
    lacking = advertised(cluster["url"], cluster["speaker"], None)["worker"]
    rt.jobs._enqueue(made.id, 0, None, route=routing.worker_route(lacking))  # as a stale advertisement would
    first = rt.jobs.get(made.id).task_id
    job = finished(cluster, made.id)
    assert job.task_id != first  # refused (MODEL_NOT_AVAILABLE) and sent on under a new task id
    assert ran_on(job, cluster["ear"]) and job.attempts == 1  # refused before it ran, then heard once
    assert isinstance(job.as_dict()["result"]["text"], str)
    assert not list((cluster["tmp"] / "speaker").glob("audio/inputs/*"))  # the refusing node kept nothing


def test_a_completion_runs_on_the_node_with_the_llm(cluster):
    rt = cluster["rt"]
    job = finished(cluster, rt.jobs.submit("completion", {
        "model": "acme/scripted", "messages": [{"role": "system", "content": "Be kind."},
                                               {"role": "user", "content": "Hello"}],
        "max_tokens": 64, "temperature": 0, "seed": 3}).id)
    assert ran_on(job, cluster["speaker"])
    result = job.as_dict()["result"]
    assert result["text"] == REPLY and result["finish_reason"] == "stop"
    usage = result["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    cut = finished(cluster, rt.jobs.submit("completion", {"model": "acme/scripted", "prompt": "Hi",
                                                          "max_tokens": 3}).id).as_dict()["result"]
    assert cut["finish_reason"] == "length" and REPLY.startswith(cut["text"]) and cut["text"] != REPLY


def test_an_input_file_changed_in_redis_is_refused_by_the_worker(tmp_path):
    server, port = start_redis(tmp_path)
    try:
        conn = redis.Redis(port=port)
        relay = Relay(conn)
        (tmp_path / "app" / "audio").mkdir(parents=True)
        (tmp_path / "app" / "audio" / "in.wav").write_bytes(b"RIFF...")
        sent = relay.send_input(tmp_path / "app", "node-a", 7, 0, "audio/in.wav")
        assert sent["key"] == input_key("node-a", 7, 0) and sent["size"] == 7
        assert relay.receive_input(tmp_path / "worker", sent).read_bytes() == b"RIFF..."
        conn.set(sent["key"], b"RIFF!!!")
        with pytest.raises(ChecksumMismatch, match="sha256"):
            relay.receive_input(tmp_path / "other", sent)
        assert not (tmp_path / "other" / "audio" / "in.wav").exists()
        relay.drop_inputs("node-a", 7, 1)
        with pytest.raises(ChecksumMismatch, match="no longer in Redis"):
            relay.receive_input(tmp_path / "other", sent)
    finally:
        server.terminate()
        server.wait(10)
