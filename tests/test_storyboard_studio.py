"""A shot's picture through the studio (issue 16, item 3): the ``storyboard-shot`` job on the real
queue draws with the real diffusers engine on a tiny random SD pipeline and its LoRA
(``tiny_diffusers``), for a character with an ``image_style``: its appearance, style and LoRA and the
project's seed (the character's stable seed) in every shot, the pictures kept in the gallery with
their A1111 parameters; regenerating one shot touches no other shot's files."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import install_resource
from tiny_diffusers import write_tiny_lora, write_tiny_sd
from zishu import settings
from zishu.companion import characters as chars
from zishu.storyboard.shots import image_request, picture_size
from zishu.studio.characters import character_seed
from zishu.studio.metadata import read_parameters

STORY = "A fox spirit walks through a bamboo forest. She finds a lantern. She carries it home."
SIDE = 64
SHOTS = [{"prompt": "walking in a bamboo forest", "narration": "A fox spirit walks through the forest."},
         {"prompt": "finding a glowing lantern", "narration": "She finds a lantern."},
         {"prompt": "carrying the lantern home at night", "narration": "She carries it home."}]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("storyboard-studio")
    sd = write_tiny_sd(folder / "sd")
    return {"sd": sd, "lora": write_tiny_lora(folder / "lora", sd).parent}


def parts(folder: Path) -> dict[str, Path]:
    """A diffusers folder's files and component folders, as an installed version holds them."""
    return {p.name: p for p in folder.iterdir()}


def wait(runtime, job_id: int, seconds: float = 300) -> dict:
    deadline = time.monotonic() + seconds
    while (job := runtime.jobs.get(job_id).as_dict())["status"] in ("PENDING", "RUNNING"):
        assert time.monotonic() < deadline, f"job {job_id} did not finish: {job}"
        time.sleep(0.05)
    return job


def setup_aoi(runtime, tiny) -> str:
    """The tiny model (the studio's default: the only image model installed), Aoi's LoRA made for
    it, and Aoi, who names the LoRA, a style and her look in her ``image_style``. Shots are drawn
    64 pixels high, the size the tiny model draws at."""
    settings.change({"storyboard_picture_side": SIDE})
    install_resource(runtime.home, "acme/tiny-sd", {"format": "diffusers", "role": "image",
                                                    "base_model": "runwayml/stable-diffusion-v1-5"},
                     files=parts(tiny["sd"]))
    install_resource(runtime.home, "acme/aoi-lora", {"target": "image",
                                                     "base_model": "runwayml/stable-diffusion-v1-5"},
                     kind="lora", files={"lora": tiny["lora"]})
    return chars.create_character(runtime, {
        "name": "Aoi", "persona": "You are {{char}}, a fox spirit.",
        "image_style": {"prompt_prefix": "1girl, fox ears, silver hair", "negative_prompt": "extra tails",
                        "lora": "acme/aoi-lora", "lora_weight": 0.7, "style": "anime"}})


def render(runtime, project_id: int, shot_ids: list[int], redo: list[str] | None = None) -> None:
    jobs = [runtime.jobs.submit("storyboard-shot", {"project": project_id, "shot": sid, "redo": redo or []})
            for sid in shot_ids]
    for job in jobs:
        done = wait(runtime, job.id)
        assert done["status"] == "SUCCESS", (done["error"], done["message"])


def test_each_shot_is_drawn_with_the_characters_look_style_lora_and_the_projects_seed(runtime, tiny):
    aoi = setup_aoi(runtime, tiny)
    boards = runtime.storyboards
    project = boards.create({"story": STORY, "character": aoi, "aspect": "1:1"})
    assert project.seed == character_seed(aoi)  # the face the studio draws for Aoi everywhere
    shots = boards.replace_shots(project.id, SHOTS)
    request = image_request(boards, project, shots[0])
    assert request["prompt"] == "1girl, fox ears, silver hair, walking in a bamboo forest"
    assert (request["negative_prompt"], request["character"], request["style"], request["seed"]) == (
        "extra tails", aoi, "anime", project.seed)
    assert request["loras"] == [{"id": "acme/aoi-lora", "weight": 0.7}]
    assert (request["width"], request["height"]) == (SIDE, SIDE)
    assert picture_size("16:9") == (912, 512) and picture_size("9:16", 64) == (64, 112)  # 512: the default

    runtime.jobs.start_consumer(1)
    render(runtime, project.id, [s.id for s in shots])
    rows, count = runtime.studio.gallery.search()
    assert count == 3  # one picture per shot, kept in the gallery too
    by_job = {row.job_id: row for row in rows}
    for shot in boards.shots(project.id):
        assert shot.status == "SUCCESS" and shot.image == f"shot-{shot.id}.png"
        row = by_job[shot.job_id]  # the picture the shot's own job drew
        assert "1girl, fox ears, silver hair" in row.prompt and shot.prompt in row.prompt
        assert (row.seed, row.character, row.style, row.model) == (project.seed, aoi, "anime", "acme/tiny-sd@1.0.0")
        with Image.open(boards.file(project.id, shot.image)) as png:
            assert png.size == (SIDE, SIDE)
            said = read_parameters(png.info["parameters"])  # the copy keeps the A1111 parameters
        assert (said["Seed"], said["Style"], said["Character"]) == (str(project.seed), "anime", aoi)
        assert "extra tails" in said["Negative prompt"]
        assert "<lora:aoi-lora:0.7>" in said["Prompt"] and said["Lora hashes"].startswith("aoi-lora: ")
        with Image.open(runtime.studio.gallery.folder / row.file) as kept:
            assert np.array_equal(np.asarray(kept), np.asarray(Image.open(boards.file(project.id, shot.image))))


def test_regenerating_one_shot_redraws_it_alone(runtime, tiny):
    aoi = setup_aoi(runtime, tiny)
    boards = runtime.storyboards
    project = boards.create({"story": STORY, "character": aoi, "aspect": "1:1"})
    shots = boards.replace_shots(project.id, SHOTS)
    runtime.jobs.start_consumer(1)
    render(runtime, project.id, [s.id for s in shots])
    files = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in boards.folder(project.id).iterdir()}
    assert sorted(files) == sorted([f"shot-{s.id}.png" for s in shots] + [f"shot-{s.id}.wav" for s in shots])

    middle = shots[1]
    boards.edit_shot(middle.id, {"prompt": "finding a red paper lantern by a stream"})
    assert boards.shot(middle.id).image is None and boards.shot(middle.id).audio == f"shot-{middle.id}.wav"
    from zishu.storyboard.render import submit_shots

    job_ids = submit_shots(runtime.jobs, boards, project.id)  # only what is not SUCCESS: the edited shot
    assert job_ids == [boards.shot(middle.id).job_id]
    assert wait(runtime, job_ids[0])["status"] == "SUCCESS"

    after = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in boards.folder(project.id).iterdir()}
    changed = sorted(name for name in files if after[name] != files[name])
    assert changed == [f"shot-{middle.id}.png"]  # its narration and the other shots are untouched
    assert runtime.studio.gallery.search()[1] == 4
    redrawn = runtime.studio.gallery.search("red paper lantern")[0][0]
    assert redrawn.seed == project.seed  # still the character's seed: the same face
    assert [s.status for s in boards.shots(project.id)] == ["SUCCESS"] * 3

    # Regenerating its narration by name redoes that alone.
    render(runtime, project.id, [middle.id], redo=["narration"])
    again = {p.name: p.stat().st_mtime_ns for p in boards.folder(project.id).iterdir()}
    assert sorted(n for n in again if again[n] != after[n][0]) == [f"shot-{middle.id}.wav"]
