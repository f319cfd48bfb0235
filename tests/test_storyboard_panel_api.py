"""The routes the Storyboard panel adds: the page, background music uploads, an export checked before
it is queued, Open folder (through the desktop's ``xdg-open``), and where a made export is served."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image

from zishu.jobs import records

STORY = "The lighthouse keeper found a message in a bottle. She sailed to the island it named."


@pytest.fixture
def client(runtime):
    from zishu.web.app import create_app

    app = create_app(runtime, "s3cret")
    test_client = app.test_client()
    test_client.environ_base.update(HTTP_X_ZISHU_TOKEN="s3cret")
    return test_client


def tone(path: Path, seconds: float = 2.0) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
                    str(path)], check=True)
    return path


def upload(client, data: bytes, name: str):
    return client.post("/api/storyboards/music", data={"file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def test_the_panel_is_in_the_navigation_and_its_page_renders(client):
    page = client.get("/storyboard", headers={"Accept": "text/html"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-testid="nav-storyboard"' in html and 'href="/storyboard"' in html
    assert "storyboard.js" in html and 'data-testid="project-form"' in html


def test_music_is_kept_once_by_content_under_a_safe_name_and_a_project_uses_it(client, runtime, tmp_path):
    song = tone(tmp_path / "song.wav").read_bytes()
    kept = upload(client, song, "../../etc/my song!.wav")
    assert kept.status_code == 201, kept.json
    path = Path(kept.json["path"])
    assert path.parent == runtime.home / "storyboards" / "music" and path.name.endswith("-my-song.wav")
    assert path.read_bytes() == song and kept.json["seconds"] == pytest.approx(2.0, abs=0.05)
    assert upload(client, song, "again.wav").json["path"] != str(path)  # another name: kept beside it
    assert upload(client, song, "my song!.wav").json["path"] == str(path)  # the same file: kept once
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no upload left half way
    made = client.post("/api/storyboards", json={"story": STORY, "music": str(path)})
    assert made.status_code == 201 and made.json["music"] == str(path)


@pytest.mark.parametrize(("data", "name", "message"), [
    (b"\x00not an mp3" * 100, "song.mp3", "music: song.mp3 is not an audio file"),
    (b"", "song.wav", "music: song.wav is empty"),
])
def test_music_that_is_not_audio_is_a_400_naming_the_field_and_is_not_kept(client, runtime, data, name, message):
    answer = upload(client, data, name)
    assert answer.status_code == 400 and answer.json["error"]["message"].startswith(message)
    folder = runtime.home / "storyboards" / "music"
    assert not folder.exists() or list(folder.iterdir()) == []


def test_an_upload_without_a_file_is_a_400_naming_the_field(client):
    answer = client.post("/api/storyboards/music", data={"other": "x"}, content_type="multipart/form-data")
    assert answer.status_code == 400 and answer.json["error"]["message"].startswith("music: send the song")


def _project_with_pictures(client, runtime, durations: list[float]) -> int:
    shots = [{"prompt": f"shot {n}", "narration": "", "duration": d} for n, d in enumerate(durations)]
    pid = client.post("/api/storyboards", json={"story": STORY, "shots": shots}).json["id"]
    for shot in runtime.storyboards.shots(pid):
        Image.new("RGB", (912, 512), (90, 40, 160)).save(runtime.storyboards.folder(pid) / f"shot-{shot.id}.png")
        runtime.storyboards.set_made(shot.id, image=f"shot-{shot.id}.png", status="SUCCESS")
    return pid


@pytest.mark.parametrize(("body", "message"), [
    ({"crossfade": "long"}, "crossfade: must be 0 to 2 seconds, got 'long'"),
    ({"crossfade": 2.5}, "crossfade: must be 0 to 2 seconds"),
    ({"crossfade": True}, "crossfade: must be 0 to 2 seconds"),
    ({"crossfade": 1}, "crossfade: 1 s at both ends is too long for shot 1 (2 s)"),
])
def test_an_export_that_cannot_work_is_a_400_naming_the_field_and_queues_nothing(client, runtime, body, message):
    pid = _project_with_pictures(client, runtime, [2.0, 3.0])
    answer = client.post(f"/api/storyboards/{pid}/export", json=body)
    assert answer.status_code == 400 and answer.json["error"]["message"].startswith(message), answer.json
    assert records.recent() == []


def test_an_export_of_a_shot_without_its_picture_is_a_400_naming_the_shot(client):
    shots = [{"prompt": "a", "narration": "b"}]
    pid = client.post("/api/storyboards", json={"story": STORY, "shots": shots}).json["id"]
    answer = client.post(f"/api/storyboards/{pid}/export", json={})
    assert answer.status_code == 400 and answer.json["error"]["message"].startswith("shots.0: shot 1 has no picture")
    assert records.recent() == []


def test_the_crossfade_chosen_reaches_the_export_and_the_project_serves_the_mp4(client, runtime):
    pid = _project_with_pictures(client, runtime, [2.0, 2.5])
    runtime.jobs.start_consumer(1)
    job = client.post(f"/api/storyboards/{pid}/export", json={"crossfade": 0})
    assert job.status_code == 202 and records.recent()[0].as_dict()["params"]["crossfade"] == 0.0
    deadline = time.monotonic() + 120
    while (done := runtime.jobs.get(job.json["job"])).status not in ("SUCCESS", "FAILED"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert done.status == "SUCCESS", done.error
    made = client.get(f"/api/storyboards/{pid}").json["export"]
    assert made["crossfade"] == 0.0 and made["duration"] == pytest.approx(4.5 - 1 / 30, abs=1e-6)  # a 1-frame cut
    assert made["url"] == f"/api/storyboards/{pid}/files/export/{Path(made['path']).name}"
    video = client.get(made["url"])
    assert video.status_code == 200 and video.mimetype == "video/mp4"
    assert client.get(made["subtitles_url"]).status_code == 200
    Path(made["path"]).unlink()
    assert client.get(f"/api/storyboards/{pid}").json["export"]["url"] is None  # gone: nothing to play


def test_open_folder_asks_the_desktop_to_show_the_projects_folder(client, runtime, tmp_path, monkeypatch):
    desktop = tmp_path / "desktop"  # an ``xdg-open`` first on PATH that writes down what it was asked to open
    desktop.mkdir()
    opener = desktop / "xdg-open"
    opener.write_text(f'#!/bin/sh\nprintf "%s\\n" "$1" >> "{tmp_path / "opened.part"}"\n'
                      f'mv "{tmp_path / "opened.part"}" "{tmp_path / "opened.txt"}"\n')
    opener.chmod(opener.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{desktop}{os.pathsep}{os.environ['PATH']}")
    pid = client.post("/api/storyboards", json={"story": STORY}).json["id"]
    answer = client.post(f"/api/storyboards/{pid}/open")
    folder = str(runtime.storyboards.folder(pid))
    assert answer.json == {"path": folder, "opened": True}
    deadline = time.monotonic() + 30
    while not (tmp_path / "opened.txt").exists():  # xdg-open runs beside the app, as on a desktop
        assert time.monotonic() < deadline, "xdg-open was not run"
        time.sleep(0.05)
    assert (tmp_path / "opened.txt").read_text().split() == [folder]
    assert client.post("/api/storyboards/999/open").status_code == 404


def test_open_folder_says_so_when_the_desktop_has_no_opener(client, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no xdg-open anywhere
    pid = client.post("/api/storyboards", json={"story": STORY}).json["id"]
    assert client.post(f"/api/storyboards/{pid}/open").json["opened"] is False


def test_a_project_exported_outside_its_folder_has_no_url(client, runtime, tmp_path):
    pid = client.post("/api/storyboards", json={"story": STORY}).json["id"]
    elsewhere = tmp_path / "out.mp4"
    elsewhere.write_bytes(b"not served")
    project = runtime.storyboards.get(pid)
    project.export = json.dumps({"path": str(elsewhere), "subtitles": None, "duration": 1.0})
    project.save()
    made = client.get(f"/api/storyboards/{pid}").json["export"]
    assert made["url"] is None and made["subtitles_url"] is None
