"""Storyboards: the tables (migration from the previous version), projects and shots with Undo, and
the MP4 export through the real ffmpeg, checked with ffprobe."""

from __future__ import annotations

import threading
import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zishu import db
from zishu.db import MIGRATIONS, open_database, schema_version
from zishu.errors import JobCancelled, NotFound, UsageError
from zishu.storyboard.export import CROSSFADE, ExportSettings, ShotMedia, export_video, frame_size, timeline
from zishu.storyboard.media import audio_seconds, probe
from zishu.storyboard.projects import Storyboards, story_language
from zishu.storyboard.records import Project, Shot

STORY = "小猫在雨中找到了回家的路。它穿过小巷，遇到了一只友好的狗。最后它回到了温暖的家。"


@pytest.fixture
def boards(tmp_path):
    open_database(tmp_path / "zishu.db")
    yield Storyboards(tmp_path)
    db.database.obj.close()


def write_tone(path: Path, seconds: float, rate: int = 16000) -> Path:
    samples = (np.sin(np.arange(int(rate * seconds)) * 0.05) * 8000).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


def test_the_storyboard_migration_upgrades_the_previous_version_and_keeps_its_data(tmp_path):
    path = tmp_path / "zishu.db"
    open_database(path, migrations=MIGRATIONS[:4])  # v5 adds the storyboards
    db.set_setting("catalog_url", "https://example.org/")
    db.database.obj.close()
    upgraded = open_database(path)
    assert schema_version(upgraded) == len(MIGRATIONS)
    assert db.get_setting("catalog_url") == "https://example.org/"
    for model in (Project, Shot):
        columns = {c.name: c for c in upgraded.get_columns(model._meta.table_name)}
        assert set(columns) == {f.column_name for f in model._meta.sorted_fields}
        for f in model._meta.sorted_fields:
            assert columns[f.column_name].null == f.null, f.name
    project = Project.create(title="t", story="s", language="en", aspect="16:9", resolution="720p", seed=1)
    Shot.create(project=project, position=0, prompt="p", narration="n", duration=3.0)
    project.delete_instance()  # the shots go with their project (foreign key, cascade)
    assert Shot.select().count() == 0
    upgraded.close()


def test_a_project_keeps_its_fields_and_the_story_language(boards):
    project = boards.create({"story": STORY, "aspect": "9:16", "resolution": "1080p", "style": "anime",
                             "voice": {"engine": "espeak-ng", "voice": "cmn"}})
    again = boards.get(project.id)
    assert (again.title, again.language, again.aspect, again.resolution, again.style) == (
        STORY, "zh", "9:16", "1080p", "anime")
    assert story_language("The cat found its way home.") == "en"
    assert boards.folder(project).is_dir()


@pytest.mark.parametrize(("data", "field"), [
    ({"story": "   "}, "story: must not be empty"),
    ({"story": "x", "aspect": "4:3"}, "aspect: must be one of 16:9, 9:16, 1:1"),
    ({"story": "x", "resolution": "4k"}, "resolution: must be one of 720p, 1080p"),
    ({"story": "x", "colour": "red"}, "colour: unknown field"),
    ({"story": "x", "voice": {"engine": ""}}, "voice: expected"),
    ({"story": "x", "music": "/no/such/song.mp3"}, "music: /no/such/song.mp3 is not a file"),
])
def test_bad_project_fields_are_refused_naming_the_field(boards, data, field):
    with pytest.raises(UsageError, match=field.replace(".", r"\.").replace("(", r"\(")):
        boards.create(data)


def test_music_that_is_not_audio_is_refused_naming_the_field(boards, tmp_path):
    text = tmp_path / "song.mp3"
    text.write_text("la la la, not audio at all\n" * 50)
    with pytest.raises(UsageError, match=r"music: song\.mp3 is not an audio file"):
        boards.create({"story": "x", "music": str(text)})
    tone = write_tone(tmp_path / "tone.wav", 1.0)
    assert boards.create({"story": "x", "music": str(tone)}).music == str(tone)


def test_an_unknown_character_is_refused_naming_the_field(tmp_path):
    from zishu.resources.versions import VersionStore

    open_database(tmp_path / "zishu.db")
    try:
        with pytest.raises(UsageError, match="character: acme/nobody is not installed"):
            Storyboards(tmp_path, VersionStore(tmp_path)).create({"story": "x", "character": "acme/nobody"})
    finally:
        db.database.obj.close()


def test_shots_are_edited_reordered_added_and_deleted_and_every_edit_undoes(boards):
    project = boards.create({"story": "A cat walks home in the rain."})
    shots = boards.replace_shots(project.id, [{"prompt": f"shot {n}", "narration": f"Line {n}."} for n in range(3)])
    ids = [s.id for s in shots]
    assert [s.position for s in shots] == [0, 1, 2] and all(s.motion for s in shots)
    boards.set_made(ids[1], image="1.png", audio="1.wav", status="SUCCESS", duration=4.25)

    edited = boards.edit_shot(ids[1], {"narration": "A new line."})
    assert (edited.audio, edited.image, edited.status, edited.subtitle) == (None, "1.png", "PENDING", "A new line.")
    assert boards.undo(project.id)["undone"] == "edit a shot"
    back = boards.shot(ids[1])
    assert (back.narration, back.audio, back.status, back.duration) == ("Line 1.", "1.wav", "SUCCESS", 4.25)

    assert [s.id for s in boards.move_shot(ids[2], 0)] == [ids[2], ids[0], ids[1]]
    assert [s.id for s in boards.reorder(project.id, [ids[1], ids[2], ids[0]])] == [ids[1], ids[2], ids[0]]
    added = boards.add_shot(project.id, {"prompt": "the end", "narration": "Home."}, position=1)
    assert [s.id for s in boards.shots(project.id)] == [ids[1], added.id, ids[2], ids[0]]
    assert [s.id for s in boards.delete_shot(ids[1])] == [added.id, ids[2], ids[0]]

    for label, order in (("delete a shot", [ids[1], added.id, ids[2], ids[0]]),
                         ("add a shot", [ids[1], ids[2], ids[0]]),
                         ("reorder the shots", [ids[2], ids[0], ids[1]]),
                         ("move a shot", ids)):
        undone = boards.undo(project.id)
        assert undone["undone"] == label
        assert [s.id for s in undone["shots"]] == order
    assert boards.shot(ids[1]).image == "1.png"  # an undone delete brings back what was made
    assert boards.undo(project.id)["undone"] == "write the shots"
    with pytest.raises(UsageError, match="nothing to undo"):
        boards.undo(project.id)


@pytest.mark.parametrize(("call", "field"), [
    (lambda b, p, s: b.replace_shots(p, []), "shots: must be a list of 1 to 24"),
    (lambda b, p, s: b.replace_shots(p, [{"prompt": "x"}] * 25), "shots: must be a list of 1 to 24"),
    (lambda b, p, s: b.replace_shots(p, [{"prompt": ""}]), r"shots\.0\.prompt: must not be empty"),
    (lambda b, p, s: b.edit_shot(s, {"duration": 0.2}), "duration: must be 1.5 to 60.0 seconds"),
    (lambda b, p, s: b.edit_shot(s, {"camera": "wide"}), "camera: unknown field"),
    (lambda b, p, s: b.move_shot(s, 7), "position: must be a whole number from 0 to 0"),
    (lambda b, p, s: b.reorder(p, [s, s]), "order: must list every shot id"),
])
def test_bad_shot_edits_are_refused_naming_the_field(boards, call, field):
    project = boards.create({"story": "A story."})
    shot = boards.replace_shots(project.id, [{"prompt": "x", "narration": "y"}])[0]
    with pytest.raises(UsageError, match=field):
        call(boards, project.id, shot.id)


def test_an_unknown_project_or_shot_is_not_found(boards):
    with pytest.raises(NotFound, match="no storyboard 9"):
        boards.get(9)
    with pytest.raises(NotFound, match="no shot 9"):
        boards.shot(9)


def test_frame_sizes_follow_aspect_and_resolution():
    assert frame_size("16:9", "720p") == (1280, 720)
    assert frame_size("9:16", "1080p") == (1080, 1920)
    assert frame_size("1:1", "720p") == (720, 720)


def _media(tmp_path: Path, seconds: list[float], with_audio: bool = True) -> list[ShotMedia]:
    shots = []
    for i, sec in enumerate(seconds):
        picture = tmp_path / f"{i}.png"
        Image.new("RGB", (320, 240), (60 * i % 255, 120, 200)).save(picture)
        audio = write_tone(tmp_path / f"{i}.wav", sec * 0.6) if with_audio else None
        move = ("zoom-in", "pan-left", "zoom-out")[i % 3]
        shots.append(ShotMedia(picture, sec, audio, f"第{i + 1}句旁白 line {i + 1}", move))
    return shots


def test_the_export_is_h264_aac_at_the_size_asked_and_lasts_the_shots_minus_the_crossfades(tmp_path):
    durations = [2.0, 2.4, 3.1]
    shots = _media(tmp_path, durations)
    music = write_tone(tmp_path / "music.wav", 1.3, rate=44100)
    seen: list[float] = []
    made = export_video(shots, tmp_path / "out" / "story.mp4",
                        ExportSettings(aspect="9:16", resolution="720p", burn_subtitles=True, music=music),
                        progress=lambda done, total: seen.append(done))
    expected = sum(durations) - (len(durations) - 1) * CROSSFADE  # the overlaps are counted once
    assert made.duration == pytest.approx(expected, abs=1e-9) == timeline(durations)[1]
    found = probe(made.path)
    assert abs(float(found["format"]["duration"]) - expected) <= 0.050
    video = [s for s in found["streams"] if s["codec_type"] == "video"]
    audio = [s for s in found["streams"] if s["codec_type"] == "audio"]
    assert len(video) == 1 and len(audio) == 1
    assert (video[0]["codec_name"], video[0]["pix_fmt"], video[0]["width"], video[0]["height"]) == (
        "h264", "yuv420p", 720, 1280)
    assert audio[0]["codec_name"] == "aac"
    data = made.path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # faststart: the index comes first
    assert seen and seen[-1] == pytest.approx(expected) and seen == sorted(seen)
    cues = made.subtitles.read_text(encoding="utf-8")
    assert made.subtitles == tmp_path / "out" / "story.srt"
    assert "00:00:00,000 --> 00:00:01,500\n第1句旁白 line 1" in cues and "第3句旁白 line 3" in cues
    assert [p.name for p in made.path.parent.iterdir()] != [] and not list(made.path.parent.glob(".*partial"))


def test_a_cancelled_export_stops_ffmpeg_and_leaves_no_file_that_looks_finished(tmp_path):
    shots = _media(tmp_path, [20.0, 20.0], with_audio=False)
    started = threading.Event()
    out = tmp_path / "out" / "long.mp4"

    def progress(done: float, total: float) -> None:
        if done > 0:
            started.set()

    with pytest.raises(JobCancelled, match="ffmpeg was stopped"):
        export_video(shots, out, ExportSettings(resolution="1080p", preset="medium"), progress=progress,
                     cancelled=started.is_set)
    assert list(out.parent.iterdir()) == []


def test_audio_that_is_not_audio_is_refused_naming_the_field(tmp_path):
    picture = tmp_path / "p.png"
    Image.new("RGB", (64, 64)).save(picture)
    with pytest.raises(UsageError, match=r"audio: p\.png is not an audio file"):
        audio_seconds(picture)
    assert audio_seconds(write_tone(tmp_path / "t.wav", 1.5)) == pytest.approx(1.5, abs=0.01)
