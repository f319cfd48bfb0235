"""Storyboards through the app's API (behind the secret) and the ``zishu storyboard`` commands."""

from __future__ import annotations

import json
import os
import sys

import pytest
from PIL import Image

from conftest import zishu
from zishu.storyboard.media import probe

STORY = "The lighthouse keeper found a message in a bottle. She sailed to the island it named. A friend waited there."


@pytest.fixture
def client(runtime):
    from zishu.web.app import create_app

    app = create_app(runtime, "s3cret")
    test_client = app.test_client()
    test_client.environ_base.update(HTTP_X_ZISHU_TOKEN="s3cret")
    return test_client


def test_the_api_needs_the_secret(runtime):
    from zishu.web.app import create_app

    answer = create_app(runtime, "s3cret").test_client().post("/api/storyboards", json={"story": STORY})
    assert answer.status_code in (401, 403)


@pytest.mark.parametrize(("body", "field"), [
    ({"story": ""}, "story: must not be empty"),
    ({"story": STORY, "character": "acme/nobody"}, "character: acme/nobody is not installed"),
    ({"story": STORY, "shots": 0}, "shots: must be a whole number from 1 to 24"),
    ({"story": STORY, "shots": 99}, "shots: must be a whole number from 1 to 24"),
    ({"story": STORY, "aspect": "4:3"}, "aspect: must be one of"),
])
def test_bad_input_is_a_400_naming_the_field_and_leaves_no_project(client, body, field):
    answer = client.post("/api/storyboards", json=body)
    assert answer.status_code == 400, answer.json
    assert answer.json["error"]["message"].startswith(field)
    assert client.get("/api/storyboards").json["storyboards"] == []


def test_audio_that_is_not_audio_is_a_400_naming_the_field(client, tmp_path):
    fake = tmp_path / "song.mp3"
    fake.write_bytes(b"\x00not an mp3" * 100)
    answer = client.post("/api/storyboards", json={"story": STORY, "music": str(fake)})
    assert answer.status_code == 400 and answer.json["error"]["message"].startswith("music: song.mp3 is not an audio")


def test_hand_written_shots_are_edited_reordered_and_undone_through_the_api(client):
    made = client.post("/api/storyboards", json={"story": STORY, "aspect": "1:1", "shots": [
        {"prompt": "a lighthouse at dusk", "narration": "The keeper found a bottle."},
        {"prompt": "a small boat at sea", "narration": "She sailed to the island."}]})
    assert made.status_code == 201, made.json
    pid = made.json["id"]
    first, second = (s["id"] for s in made.json["shots"])
    added = client.post(f"/api/storyboards/{pid}/shots", json={"prompt": "two friends", "narration": "A friend."})
    assert added.status_code == 201
    edited = client.patch(f"/api/storyboards/{pid}/shots/{first}", json={"narration": "She found a bottle."})
    assert edited.json["narration"] == "She found a bottle."
    order = [added.json["id"], first, second]
    assert [s["id"] for s in client.post(f"/api/storyboards/{pid}/order", json={"order": order}).json["shots"]] == order
    bad = client.patch(f"/api/storyboards/{pid}/shots/{first}", json={"duration": "long"})
    assert bad.status_code == 400 and bad.json["error"]["message"].startswith("duration:")
    undone = client.post(f"/api/storyboards/{pid}/undo").json
    assert undone["undone"] == "reorder the shots" and [s["id"] for s in undone["shots"]] == [first, second,
                                                                                               added.json["id"]]
    assert client.delete(f"/api/storyboards/{pid}/shots/{second}").json["can_undo"] == "delete a shot"
    assert client.get("/api/storyboards/999").status_code == 404
    export = client.post(f"/api/storyboards/{pid}/export", json={"burn_subtitles": "yes"})
    assert export.status_code == 400 and export.json["error"]["message"].startswith("burn_subtitles:")


def test_the_cli_makes_renders_and_exports_a_storyboard(runtime, tmp_path):
    env = {**os.environ, "ZISHU_HOME": str(runtime.home), "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("ZISHU_QUEUE", None)
    pid = int(zishu(env, "storyboard", "new", STORY, "--aspect", "9:16").stdout.strip())
    shots = [{"prompt": "a lighthouse", "narration": "The keeper found a bottle."},
             {"prompt": "an island", "narration": "A friend waited there."}]
    runtime.storyboards.replace_shots(pid, shots)
    for shot in runtime.storyboards.shots(pid):  # pictures as the studio would leave them
        Image.new("RGB", (512, 912), (30, 90, 160)).save(runtime.storyboards.folder(pid) / f"shot-{shot.id}.png")
        runtime.storyboards.set_made(shot.id, image=f"shot-{shot.id}.png")
    assert "2 shot(s) made" in zishu(env, "storyboard", "render", str(pid)).stdout
    listed = json.loads(zishu(env, "storyboard", "shots", str(pid), "--json").stdout)
    assert [s["status"] for s in listed["shots"]] == ["SUCCESS", "SUCCESS"]
    out = tmp_path / "story.mp4"
    printed = zishu(env, "storyboard", "export", str(pid), "--out", str(out), "--burn-subtitles").stdout.strip()
    assert printed == str(out) and (tmp_path / "story.srt").is_file()
    video = next(s for s in probe(out)["streams"] if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (720, 1280)
    again = zishu(env, "storyboard", "shots", "12345", check=False)
    assert again.returncode == 12 and "no storyboard 12345" in again.stderr
