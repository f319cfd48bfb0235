"""``Storyboards``: the one service the API, the CLI and the jobs call for projects and their shots.

Every input is checked here, once, and a refusal is a ``UsageError`` (or ``NotFound``) naming the
field: ``story: must not be empty``, ``character: acme/nobody is not installed``, ``shots: must be
from 1 to 24``, ``music: song.txt is not an audio file``.

Each edit of a project's shot list (add, edit, move, delete, replace) first keeps the list as it
was in an undo ``Step``; ``undo`` puts the newest one back, ids, files and statuses included, so an
undone delete brings back the shot with its picture and narration. At most ``UNDO_STEPS`` are kept.
"""

from __future__ import annotations

import json
import math
import secrets
import shutil
import time
import unicodedata
from pathlib import Path
from typing import Any, cast

from zishu.db import database
from zishu.errors import NotFound, UsageError

from .motion import choose_move
from .records import ASPECTS, RESOLUTIONS, Project, Shot, Step

MAX_SHOTS = 24
MAX_STORY = 20_000  # characters
MAX_TITLE = 200
MAX_PROMPT = 1000
MAX_NARRATION = 2000
MIN_DURATION, MAX_DURATION = 1.5, 60.0  # seconds a shot may last (a crossfade takes 0.5 s at each end)
UNDO_STEPS = 50
SHOT_FIELDS = ("prompt", "narration", "duration", "subtitle")
PROJECT_FIELDS = ("title", "story", "style", "aspect", "resolution", "character", "voice", "music")


def story_language(text: str) -> str:
    """The story's language as a short code: "zh", "ja", "ko" when their scripts make up a fifth of
    its letters, else "en". The narration is written in it and the subtitles set in a font for it."""
    counts = {"zh": 0, "ja": 0, "ko": 0}
    letters = 0
    for ch in text:
        if not ch.isalpha():
            continue
        letters += 1
        name = unicodedata.name(ch, "")
        if name.startswith(("HIRAGANA", "KATAKANA")):
            counts["ja"] += 1
        elif name.startswith("HANGUL"):
            counts["ko"] += 1
        elif name.startswith("CJK UNIFIED"):
            counts["zh"] += 1
    if counts["ja"] and counts["ja"] + counts["zh"] >= letters / 5:
        return "ja"
    best = max(counts, key=lambda k: counts[k])
    return best if letters and counts[best] >= letters / 5 else "en"


def spoken_seconds(narration: str, language: str) -> float:
    """How long ``narration`` takes to say, estimated (about 4.5 CJK characters or 2.7 English
    words a second), within the shot limits: a shot's duration until its narration is spoken."""
    if language in ("zh", "ja", "ko"):
        seconds = sum(not ch.isspace() for ch in narration) / 4.5
    else:
        seconds = len(narration.split()) / 2.7
    return round(min(MAX_DURATION, max(3.0, seconds + 0.6)), 2)


class Storyboards:
    """Projects and shots of one ZISHU_HOME; ``registry`` (the version store) answers which
    characters are installed; ``host`` (``engines.use``'s Host: registry, engines, model cache) loads
    the language model and the voices; files live under ``home/storyboards/<project id>/``."""

    def __init__(self, home: Path, registry: Any = None, host: Any = None) -> None:
        self.home = Path(home)
        self.host = host
        self.registry = registry if registry is not None or host is None else host.registry

    def folder(self, project: Project | int) -> Path:
        pid = project.id if isinstance(project, Project) else int(project)
        return self.home / "storyboards" / str(pid)

    # -- projects ------------------------------------------------------------------------------

    def create(self, data: Any) -> Project:
        """A new project from ``data`` (title, story, style, aspect, resolution, character, voice,
        music); its shots come later (``replace_shots``, ``add_shot`` or the writer)."""
        fields = self._project_fields(_object(data, "project"), creating=True)
        fields.setdefault("title", _first_line(fields["story"]))
        fields["language"] = story_language(fields["story"])
        fields["seed"] = _seed_for(fields.get("character"))
        now = time.time()
        project = Project.create(created=now, updated=now, **fields)
        self.folder(project).mkdir(parents=True, exist_ok=True)
        return project

    def get(self, project_id: int) -> Project:
        project = Project.get_or_none(Project.id == project_id)
        if project is None:
            raise NotFound(f"no storyboard {project_id}")
        return project

    def projects(self) -> list[Project]:
        return list(Project.select().order_by(Project.updated.desc()))

    def update(self, project_id: int, data: Any) -> Project:
        project = self.get(project_id)
        fields = self._project_fields(_object(data, "project"), creating=False)
        if "story" in fields:
            fields["language"] = story_language(fields["story"])
        if "character" in fields and fields["character"] != project.character:
            fields["seed"] = _seed_for(fields["character"])
        for name, value in fields.items():
            setattr(project, name, value)
        project.updated = time.time()
        project.save()
        return project

    def delete(self, project_id: int) -> None:
        project = self.get(project_id)
        project.delete_instance(recursive=True)
        shutil.rmtree(self.folder(project_id), ignore_errors=True)

    def _project_fields(self, data: dict, *, creating: bool) -> dict:
        unknown = sorted(set(data) - set(PROJECT_FIELDS) - {"shots"})
        if unknown:
            raise UsageError(f"{unknown[0]}: unknown field (known: {', '.join(PROJECT_FIELDS)})")
        out: dict[str, Any] = {}
        if creating or "story" in data:
            story = data.get("story")
            if not isinstance(story, str) or not story.strip():
                raise UsageError("story: must not be empty (write the story the shots tell)")
            if len(story) > MAX_STORY:
                raise UsageError(f"story: at most {MAX_STORY} characters, got {len(story)}")
            out["story"] = story.strip()
        if data.get("title") is not None:
            out["title"] = _text(data["title"], "title", MAX_TITLE, empty=False)
        for name, choices, default in (("aspect", ASPECTS, "16:9"), ("resolution", RESOLUTIONS, "720p")):
            if name in data or creating:
                value = data.get(name) or default
                if value not in choices:
                    raise UsageError(f"{name}: must be one of {', '.join(choices)}, got {value!r}")
                out[name] = value
        if "style" in data:
            out["style"] = _text(data["style"], "style", 200) or None if data["style"] is not None else None
        if "character" in data:
            out["character"] = self._character(data["character"])
        if "voice" in data:
            out["voice"] = _voice(data["voice"])
        if "music" in data:
            out["music"] = _music(data["music"])
        return out

    def _character(self, value: Any) -> str | None:
        if value in (None, ""):
            return None
        if not isinstance(value, str):
            raise UsageError(f"character: expected a character id like acme/mei, got {value!r}")
        if self.registry is not None:
            from zishu.ids import is_id

            if not is_id(value):
                raise UsageError(f"character: {value!r} is not a character id (owner/name)")
            if not self.registry.versions(value):
                raise UsageError(f"character: {value} is not installed (zishu install {value}, or pick one "
                                 "from the Characters panel)")
        return value

    def character_of(self, project: Project) -> Any:
        """The project's character (its CharacterResource), None when it names none."""
        if not project.character or self.registry is None:
            return None
        from zishu.catalog.manifest import CharacterResource
        from zishu.resources.install import manifest_of

        if not self.registry.versions(project.character):
            raise UsageError(f"character: {project.character} is not installed any more")
        found = manifest_of(self.registry.path(project.character))
        if not isinstance(found, CharacterResource):
            raise UsageError(f"character: {project.character} is a {found.kind}, not a character")
        return found

    # -- shots ---------------------------------------------------------------------------------

    def shots(self, project_id: int) -> list[Shot]:
        self.get(project_id)
        return list(Shot.select().where(Shot.project == project_id).order_by(Shot.position))

    def shot(self, shot_id: int, project_id: int | None = None) -> Shot:
        shot = Shot.get_or_none(Shot.id == shot_id)
        if shot is None or (project_id is not None and _project_of(shot) != project_id):
            raise NotFound(f"no shot {shot_id}" + (f" in storyboard {project_id}" if project_id else ""))
        return shot

    def replace_shots(self, project_id: int, shots: Any, *, label: str = "write the shots") -> list[Shot]:
        """The project's shots become ``shots`` (a list of {prompt, narration, duration?, subtitle?}),
        written by hand or by the writer; the old list is one Undo away."""
        project = self.get(project_id)
        if not isinstance(shots, list) or not 1 <= len(shots) <= MAX_SHOTS:
            raise UsageError(f"shots: must be a list of 1 to {MAX_SHOTS} shots, each {{prompt, narration}}")
        checked = [self._shot_fields(_object(s, f"shots.{i}"), f"shots.{i}.", project, new=True)
                   for i, s in enumerate(shots)]
        with database.atomic():
            self._keep_step(project, label)
            Shot.delete().where(Shot.project == project).execute()
            for position, fields in enumerate(checked):
                self._new_shot(project, position, fields)
        return self.shots(project_id)

    def add_shot(self, project_id: int, data: Any, position: int | None = None) -> Shot:
        project = self.get(project_id)
        fields = self._shot_fields(_object(data, "shot"), "", project, new=True)
        with database.atomic():
            current = self.shots(project_id)
            if len(current) >= MAX_SHOTS:
                raise UsageError(f"shots: a storyboard holds at most {MAX_SHOTS} shots")
            at = len(current) if position is None else _position(position, len(current))
            self._keep_step(project, "add a shot")
            Shot.update(position=Shot.position + 1).where(Shot.project == project,
                                                          Shot.position >= at).execute()
            return self._new_shot(project, at, fields)

    def edit_shot(self, shot_id: int, data: Any, project_id: int | None = None) -> Shot:
        """Change a shot's prompt, narration, duration or subtitle. A new prompt drops its picture, a
        new narration its audio, so the shot's job makes them again (and nothing else)."""
        shot = self.shot(shot_id, project_id)
        fields = self._shot_fields(_object(data, "shot"), "", shot.project, new=False)
        with database.atomic():
            self._keep_step(shot.project, "edit a shot")
            if "prompt" in fields and fields["prompt"] != shot.prompt:
                shot.image, shot.clip, shot.status = None, None, "PENDING"
            if "narration" in fields and fields["narration"] != shot.narration:
                shot.audio, shot.status = None, "PENDING"
                if "subtitle" not in fields and shot.subtitle == shot.narration:
                    fields["subtitle"] = fields["narration"]
                if "duration" not in fields:
                    fields["duration"] = spoken_seconds(fields["narration"], shot.project.language)
            for name, value in fields.items():
                setattr(shot, name, value)
            shot.updated = time.time()
            shot.save()
        return shot

    def move_shot(self, shot_id: int, position: Any, project_id: int | None = None) -> list[Shot]:
        """Put the shot at ``position`` (0 first); the others keep their order around it."""
        shot = self.shot(shot_id, project_id)
        order = self.shots(_project_of(shot))
        to = _position(position, len(order) - 1)
        with database.atomic():
            self._keep_step(shot.project, "move a shot")
            ids = [s.id for s in order if s.id != shot.id]
            ids.insert(to, shot.id)
            self._renumber(ids)
        return self.shots(_project_of(shot))

    def reorder(self, project_id: int, ids: Any) -> list[Shot]:
        """The shots in the order ``ids`` gives (every shot's id once): what dragging a card sends."""
        project = self.get(project_id)
        current = {s.id for s in self.shots(project_id)}
        if not isinstance(ids, list) or sorted(i for i in ids if isinstance(i, int)) != sorted(current) \
                or len(ids) != len(current):
            raise UsageError(f"order: must list every shot id of storyboard {project_id} once "
                             f"({sorted(current)})")
        with database.atomic():
            self._keep_step(project, "reorder the shots")
            self._renumber(ids)
        return self.shots(project_id)

    def delete_shot(self, shot_id: int, project_id: int | None = None) -> list[Shot]:
        shot = self.shot(shot_id, project_id)
        with database.atomic():
            self._keep_step(shot.project, "delete a shot")
            shot.delete_instance()
            self._renumber([s.id for s in self.shots(_project_of(shot))])
        return self.shots(_project_of(shot))

    def undo(self, project_id: int) -> dict:
        """Put back the shot list as it was before the newest edit; {"undone": label, "shots"}."""
        project = self.get(project_id)
        step = Step.select().where(Step.project == project).order_by(Step.id.desc()).first()
        if step is None:
            raise UsageError(f"storyboard {project_id} has nothing to undo")
        with database.atomic():
            Shot.delete().where(Shot.project == project).execute()
            for row in json.loads(step.shots):
                Shot.insert(**row).execute()
            step.delete_instance()
        return {"undone": step.label, "shots": self.shots(project_id)}

    def can_undo(self, project_id: int) -> str | None:
        step = Step.select().where(Step.project == project_id).order_by(Step.id.desc()).first()
        return step.label if step else None

    def set_made(self, shot_id: int, **fields: Any) -> Shot:
        """Record what a shot's job made (image, audio, clip, duration, status, error, job_id); no
        undo step: these are results, not the user's edits."""
        fields["updated"] = time.time()
        Shot.update(**fields).where(Shot.id == shot_id).execute()
        return self.shot(shot_id)

    def file(self, project_id: int, name: str | None) -> Path | None:
        """A made file of the project (a shot's image or audio) as a path, None when none is made."""
        if not name:
            return None
        path = Path(name)
        return path if path.is_absolute() else self.folder(project_id) / path

    # -- inside --------------------------------------------------------------------------------

    def _shot_fields(self, data: dict, where: str, project: Project, *, new: bool) -> dict:
        unknown = sorted(set(data) - set(SHOT_FIELDS))
        if unknown:
            raise UsageError(f"{where}{unknown[0]}: unknown field (known: {', '.join(SHOT_FIELDS)})")
        out: dict[str, Any] = {}
        if new or "prompt" in data:
            out["prompt"] = _text(data.get("prompt"), f"{where}prompt", MAX_PROMPT, empty=False)
        if new or "narration" in data:
            out["narration"] = _text(data.get("narration", ""), f"{where}narration", MAX_NARRATION)
        if "subtitle" in data:
            out["subtitle"] = _text(data["subtitle"], f"{where}subtitle", MAX_NARRATION)
        elif new:
            out["subtitle"] = out["narration"]
        if data.get("duration") is not None:
            value = data["duration"]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or not MIN_DURATION <= value <= MAX_DURATION:
                raise UsageError(f"{where}duration: must be {MIN_DURATION} to {MAX_DURATION} seconds, got {value!r}")
            out["duration"] = float(value)
        elif new:
            out["duration"] = spoken_seconds(out["narration"], project.language)
        return out

    def _new_shot(self, project: Project, position: int, fields: dict) -> Shot:
        shot = Shot.create(project=project, position=position, status="PENDING", **fields)
        shot.motion = choose_move(project.seed, shot.id)
        shot.save()
        return shot

    @staticmethod
    def _renumber(ids: list[int]) -> None:
        for position, sid in enumerate(ids):
            Shot.update(position=position).where(Shot.id == sid).execute()

    def _keep_step(self, project: Project, label: str) -> None:
        rows = cast("list[dict]", list(Shot.select().where(Shot.project == project).order_by(Shot.position).dicts()))
        Step.create(project=project, label=label, shots=json.dumps(rows, ensure_ascii=False))
        old = (Step.select(Step.id).where(Step.project == project).order_by(Step.id.desc()).offset(UNDO_STEPS))
        Step.delete().where(Step.id.in_([s.id for s in old])).execute()
        project.updated = time.time()
        project.save()


def _project_of(shot: Shot) -> int:
    """The id of the shot's project, without loading the project."""
    return int(shot.__data__["project"])


def shot_dict(shot: Shot) -> dict:
    return {"id": shot.id, "position": shot.position, "prompt": shot.prompt, "narration": shot.narration,
            "duration": shot.duration, "image": shot.image, "clip": shot.clip, "audio": shot.audio,
            "subtitle": shot.subtitle, "motion": shot.motion, "status": shot.status, "error": shot.error,
            "job_id": shot.job_id}


def project_dict(project: Project, shots: list[Shot] | None = None) -> dict:
    out = {"id": project.id, "title": project.title, "story": project.story, "language": project.language,
           "style": project.style, "aspect": project.aspect, "resolution": project.resolution,
           "character": project.character, "voice": json.loads(project.voice) if project.voice else None,
           "music": project.music, "seed": project.seed,
           "export": json.loads(project.export) if project.export else None,
           "created": project.created, "updated": project.updated}
    if shots is not None:
        out["shots"] = [shot_dict(s) for s in shots]
        out["duration"] = round(sum(s.duration for s in shots), 3)
    return out


def _object(data: Any, what: str) -> dict:
    if not isinstance(data, dict):
        raise UsageError(f"{what}: expected a JSON object, got {type(data).__name__}")
    return data


def _text(value: Any, field: str, most: int, *, empty: bool = True) -> str:
    if not isinstance(value, str):
        raise UsageError(f"{field}: expected text, got {value!r}")
    value = value.strip()
    if not empty and not value:
        raise UsageError(f"{field}: must not be empty")
    if len(value) > most:
        raise UsageError(f"{field}: at most {most} characters, got {len(value)}")
    return value


def _position(value: Any, last: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= last:
        raise UsageError(f"position: must be a whole number from 0 to {last}, got {value!r}")
    return value


def _first_line(story: str) -> str:
    line = story.strip().splitlines()[0].strip()
    return line[:60] + ("…" if len(line) > 60 else "")


def _seed_for(character: str | None) -> int:
    """The project's seed: the character's stable seed (its face stays the same in every shot and in
    the studio), else a random one kept with the project."""
    if character:
        from zishu.studio.characters import character_seed

        return character_seed(character)
    return secrets.randbelow(2**32)


def _voice(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, dict) or not isinstance(value.get("engine"), str) or not value["engine"].strip():
        raise UsageError('voice: expected {"engine": "espeak-ng", "voice": "cmn"} (voice optional)')
    voice = value.get("voice")
    if voice is not None and not isinstance(voice, str):
        raise UsageError(f"voice.voice: expected text, got {voice!r}")
    return json.dumps({"engine": value["engine"].strip(), "voice": voice}, ensure_ascii=False)


def _music(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise UsageError(f"music: expected the path of an audio file, got {value!r}")
    from .media import audio_seconds

    path = Path(value).expanduser()
    if not path.is_file():
        raise UsageError(f"music: {value} is not a file")
    audio_seconds(path, field="music")  # refuses a file with no audio stream
    return str(path.resolve())


__all__ = ["MAX_SHOTS", "Storyboards", "project_dict", "shot_dict", "spoken_seconds", "story_language"]
