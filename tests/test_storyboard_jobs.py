"""Storyboards with real models: the tiny GGUF writes shots under a JSON-schema grammar, espeak-ng
narrates them through the ``storyboard-shot`` job, and the ``storyboard-export`` job encodes the MP4."""

from __future__ import annotations

import json
import time

import pytest
from PIL import Image

from conftest import install_resource
from tiny_gguf import write_tiny_gguf
from zishu.errors import EngineError, UsageError
from zishu.jobs import JobQueue
from zishu.storyboard.media import probe
from zishu.storyboard.writer import parse_shots, write_storyboard

CONTEXT = 16_384  # room for the longest answer the shots' grammar allows (writer.answer_tokens(6), plus the chat)
STORY = "小猫在雨中迷路了。它找到一只友好的狗。它们一起回到了温暖的家。"


def wait(queue: JobQueue, job_id: int, *statuses: str, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while (job := queue.get(job_id)).status not in statuses:
        assert time.monotonic() < deadline, f"job {job_id} is still {job.status}: {job.message}"
        time.sleep(0.02)
    return job


@pytest.fixture(scope="module")
def rambler(tmp_path_factory):
    """A random-weight GGUF: left alone it writes noise that is not JSON."""
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "rambler.gguf", dim=128, layers=2, heads=4, ffn=256,
                           context=CONTEXT)


def test_a_model_writing_noise_still_gives_the_asked_number_of_shots_under_the_grammar(runtime, rambler):
    install_resource(runtime.home, "acme/rambler", {"format": "gguf", "role": "llm", "context_length": CONTEXT},
                     files={"m.gguf": rambler})
    project = runtime.storyboards.create({"story": STORY})
    shots = write_storyboard(runtime, runtime.storyboards, project.id, 6)  # the bench's six
    assert len(shots) == 6
    for shot in shots:
        assert shot.prompt.strip() and shot.prompt == " ".join(shot.prompt.split())
        assert shot.status == "PENDING" and shot.duration >= 1.5
    assert runtime.storyboards.undo(project.id)["shots"] == []  # the written list is one Undo away
    with pytest.raises(UsageError, match="shots: must be a whole number from 1 to 24"):
        write_storyboard(runtime, runtime.storyboards, project.id, 25)


def test_a_context_window_too_small_for_the_shots_is_named_as_such(runtime, rambler):
    # the same model given a small context: the grammar-held answer runs out of room mid-way
    install_resource(runtime.home, "acme/rambler", {"format": "gguf", "role": "llm", "context_length": 1024},
                     files={"m.gguf": rambler})
    project = runtime.storyboards.create({"story": STORY})
    with pytest.raises(EngineError, match=r"storyboard was cut off after [\d,]+ characters, before its 24 shots "
                                          r"were complete: the model's context window ran out; ask for fewer shots"):
        write_storyboard(runtime, runtime.storyboards, project.id, 24)
    assert runtime.storyboards.shots(project.id) == []  # nothing half-written


def test_without_a_grammar_the_same_noise_is_a_clear_error_not_a_traceback(runtime, rambler):
    from zishu.engines import ChatOptions, use

    install_resource(runtime.home, "acme/rambler", {"format": "gguf", "role": "llm", "context_length": CONTEXT},
                     files={"m.gguf": rambler})
    chat = use(runtime, "llm", "acme/rambler").handle
    noise = "".join(chat.chat([{"role": "user", "content": STORY}], ChatOptions(max_tokens=60, seed=3)))
    with pytest.raises(EngineError, match=r"storyboard is not valid JSON .*write the shots by hand"):
        parse_shots(noise, 3)
    with pytest.raises(EngineError, match="cut off after 48 characters, before its 3 shots were complete"):
        parse_shots('{"shots": [{"prompt": "a cat", "narration": "喵"}', 3)  # stops mid-way: the context ran out
    with pytest.raises(EngineError, match="is not valid JSON"):
        parse_shots('{"shots": [}, "more"', 3)  # broken, not cut off
    with pytest.raises(EngineError, match="wrote 1 shots instead of 3"):
        parse_shots('{"shots": [{"prompt": "a cat", "narration": "喵"}]}', 3)


def test_the_writer_asks_for_english_prompts_and_narration_in_the_story_language():
    from zishu.storyboard.writer import messages, shots_schema

    system = messages(STORY, 4, "zh")[0]["content"]
    assert "exactly 4 shots" in system and "English description" in system and "Chinese" in system
    schema = shots_schema(4)["properties"]["shots"]
    assert (schema["minItems"], schema["maxItems"]) == (4, 4)


def _picture(runtime, project_id: int, shot_id: int, colour) -> None:
    """A picture for a shot as the studio would leave it (until the studio's image job draws it)."""
    folder = runtime.storyboards.folder(project_id)
    Image.new("RGB", (912, 512), colour).save(folder / f"shot-{shot_id}.png")
    runtime.storyboards.set_made(shot_id, image=f"shot-{shot_id}.png")


def test_shot_jobs_narrate_each_shot_and_the_export_job_encodes_them(runtime):
    boards = runtime.storyboards
    project = boards.create({"story": STORY, "aspect": "16:9"})
    shots = boards.replace_shots(project.id, [
        {"prompt": "a lost kitten in the rain", "narration": "小猫在雨中迷路了。"},
        {"prompt": "a friendly dog", "narration": "它找到一只友好的狗。"}])
    for n, shot in enumerate(shots):
        _picture(runtime, project.id, shot.id, (200, 80 * n, 60))
    runtime.jobs.start_consumer()
    jobs = [runtime.jobs.submit("storyboard-shot", {"project": project.id, "shot": s.id}) for s in shots]
    for job in jobs:
        assert wait(runtime.jobs, job.id, "SUCCESS", "FAILED").status == "SUCCESS", runtime.jobs.get(job.id).error
    made = boards.shots(project.id)
    for shot in made:
        assert shot.status == "SUCCESS" and shot.audio == f"shot-{shot.id}.wav"
        spoken = float(probe(boards.file(project.id, shot.audio))["format"]["duration"])
        assert shot.duration == pytest.approx(spoken + 0.6, abs=1 / 30 + 1e-6)  # the duration follows the audio

    # Regenerating one shot's narration leaves the other untouched.
    other = boards.file(project.id, made[0].audio).stat().st_mtime_ns
    boards.edit_shot(made[1].id, {"narration": "它们一起回到了温暖的家，小猫很开心。"})
    again = runtime.jobs.submit("storyboard-shot", {"project": project.id, "shot": made[1].id})
    assert wait(runtime.jobs, again.id, "SUCCESS", "FAILED").status == "SUCCESS"
    assert boards.file(project.id, made[0].audio).stat().st_mtime_ns == other
    assert boards.shot(made[1].id).duration > made[1].duration

    export = runtime.jobs.submit("storyboard-export", {"project": project.id, "burn_subtitles": True})
    done = wait(runtime.jobs, export.id, "SUCCESS", "FAILED")
    assert done.status == "SUCCESS", done.error
    result = json.loads(done.result) if isinstance(done.result, str) else done.result
    total = sum(s.duration for s in boards.shots(project.id)) - 0.5
    found = probe(result["path"])
    assert abs(float(found["format"]["duration"]) - total) <= 0.050
    assert sorted(s["codec_name"] for s in found["streams"]) == ["aac", "h264"]
    assert boards.get(project.id).export is not None


def test_an_export_of_shots_without_pictures_names_the_shot(runtime):
    project = runtime.storyboards.create({"story": STORY})
    runtime.storyboards.replace_shots(project.id, [{"prompt": "a cat", "narration": "喵。"}])
    from zishu.storyboard.render import export_project

    with pytest.raises(UsageError, match=r"shots\.0: shot 1 has no picture yet"):
        export_project(runtime.storyboards, project.id)
