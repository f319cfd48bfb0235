"""The Storyboard panel (``/storyboard``) and storyboards over HTTP, behind the launch secret (the work
is ``zishu.storyboard``'s)::

    GET    /storyboard                               the panel (``?project=<id>`` opens that project)
    GET    /api/storyboards                          {"storyboards": [project]}
    POST   /api/storyboards                          {story, title?, aspect?, resolution?, style?, character?,
                                                     voice?, music?, shots: N (the LLM writes them; model?)
                                                     or shots: [{prompt, narration, duration?}]} → 201 project
    GET    /api/storyboards/<id>                     the project with its shots
    PATCH  /api/storyboards/<id>                     project fields → the project
    DELETE /api/storyboards/<id>                     {"deleted": id}
    POST   /api/storyboards/<id>/write               {shots: N, model?} → the project (Undo brings the old shots)
    PUT    /api/storyboards/<id>/shots               [{prompt, narration, ...}] hand-written → the project
    POST   /api/storyboards/<id>/shots               {prompt, narration, duration?, position?} → 201 the shot
    PATCH  /api/storyboards/<id>/shots/<shot>        {prompt?, narration?, duration?, subtitle?, position?}
    DELETE /api/storyboards/<id>/shots/<shot>        → the project
    POST   /api/storyboards/<id>/order               {order: [shot ids]} → the project
    POST   /api/storyboards/<id>/undo                → {"undone": label, ...project}
    POST   /api/storyboards/<id>/render              {shots?: [ids], redo?: [image|narration|clip]} → 202 {"jobs"}
    POST   /api/storyboards/<id>/export              {burn_subtitles?, music?, crossfade? (0 to 2 s)} → 202 {"job"}
    POST   /api/storyboards/<id>/open                asks the desktop to show the export's folder (else the
                                                     project's) → {"path", "opened"}
    GET    /api/storyboards/<id>/files/<path>        a made file (picture, narration, the MP4 and its SRT)
    POST   /api/storyboards/music                    multipart "file": background music kept for projects
                                                     → 201 {"path", "name", "seconds", "size"}

A project as JSON carries ``can_undo`` (the label of the edit Undo takes back) and, once exported,
``export.url``/``export.subtitles_url`` (where this app serves the MP4 and its SRT; null when the
file is gone or was written outside the project's folder).

Jobs report through the usual job routes and event stream (``/api/jobs``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from flask import Blueprint, current_app, jsonify, render_template, request, send_from_directory
from werkzeug.exceptions import RequestEntityTooLarge

from zishu.errors import UsageError
from zishu.storyboard.export import CROSSFADE
from zishu.storyboard.music import MAX_MUSIC_BYTES, keep_music
from zishu.storyboard.projects import project_dict, shot_dict
from zishu.storyboard.render import check_export, submit_shots
from zishu.storyboard.requests import ExportRequest, StoryboardRequest
from zishu.storyboard.writer import write_storyboard

from .api import _body, whole_number
from .app import runtime

storyboard = Blueprint("storyboard", __name__)
MAX_ID = 2**62
FORM_OVERHEAD = 64 * 1024  # the multipart form around an uploaded file


def _id(value: str, what: str = "storyboard id") -> int:
    return whole_number(value, what, low=1, high=MAX_ID)


def _list_body() -> list:
    """The request's JSON list (hand-written shots); 400 for anything else."""
    raw = request.get_data(cache=True)
    if not request.is_json:
        raise UsageError("shots: send a JSON list of shots with Content-Type: application/json")
    try:
        data = current_app.json.loads(raw)
    except ValueError:
        raise UsageError("shots: the request body is not JSON") from None
    if not isinstance(data, list):
        raise UsageError("shots: expected a JSON list of {prompt, narration} objects")
    return data


def _project(pid: int):
    boards = runtime().storyboards
    out = project_dict(boards.get(pid), boards.shots(pid)) | {"can_undo": boards.can_undo(pid)}
    if out["export"]:
        folder = boards.folder(pid)
        out["export"] |= {"url": _file_url(pid, folder, out["export"].get("path")),
                          "subtitles_url": _file_url(pid, folder, out["export"].get("subtitles"))}
    return out


def _file_url(pid: int, folder: Path, path: str | None) -> str | None:
    """Where ``files/`` serves ``path``: None when it is gone or lies outside the project's folder."""
    if not path or not Path(path).is_file():
        return None
    try:
        inside = Path(path).resolve().relative_to(folder.resolve())
    except ValueError:
        return None
    return f"/api/storyboards/{pid}/files/{inside.as_posix()}"


@storyboard.get("/storyboard")
def panel():
    engines = sorted(engine.info.name for engine in runtime().engines.of_kind("tts"))
    return render_template("storyboard.html", title="Storyboard", active="/storyboard", voice_engines=engines)


@storyboard.get("/api/storyboards")
def list_storyboards():
    boards = runtime().storyboards
    return jsonify(storyboards=[project_dict(p) for p in boards.projects()])


@storyboard.post("/api/storyboards")
def create_storyboard():
    rt = runtime()
    body = _body()
    StoryboardRequest.parse(body)  # the shape (types, lengths, choices); the service checks the rest
    shots = body.get("shots")
    model = body.pop("model", None)
    if model is not None and not isinstance(model, str):
        raise UsageError("model: expected a model id or path")
    project = rt.storyboards.create(body)
    try:
        if isinstance(shots, list):
            rt.storyboards.replace_shots(project.id, shots)
        elif shots is not None:
            write_storyboard(rt, rt.storyboards, project.id, shots, model=model)
    except Exception:
        rt.storyboards.delete(project.id)  # a refused request leaves no half-made project behind
        raise
    return jsonify(_project(project.id)), 201


@storyboard.get("/api/storyboards/<pid>")
def get_storyboard(pid: str):
    return jsonify(_project(_id(pid)))


@storyboard.patch("/api/storyboards/<pid>")
def update_storyboard(pid: str):
    runtime().storyboards.update(_id(pid), _body())
    return jsonify(_project(_id(pid)))


@storyboard.delete("/api/storyboards/<pid>")
def delete_storyboard(pid: str):
    runtime().storyboards.delete(_id(pid))
    return jsonify(deleted=_id(pid))


@storyboard.post("/api/storyboards/<pid>/write")
def write_shots(pid: str):
    rt = runtime()
    body = _body()
    write_storyboard(rt, rt.storyboards, _id(pid), body.get("shots"), model=body.get("model"))
    return jsonify(_project(_id(pid)))


@storyboard.put("/api/storyboards/<pid>/shots")
def replace_shots(pid: str):
    runtime().storyboards.replace_shots(_id(pid), _list_body())
    return jsonify(_project(_id(pid)))


@storyboard.post("/api/storyboards/<pid>/shots")
def add_shot(pid: str):
    body = _body()
    position = body.pop("position", None)
    shot = runtime().storyboards.add_shot(_id(pid), body, position)
    return jsonify(shot_dict(shot)), 201


@storyboard.patch("/api/storyboards/<pid>/shots/<sid>")
def edit_shot(pid: str, sid: str):
    boards = runtime().storyboards
    body = _body()
    position = body.pop("position", None)
    shot = boards.edit_shot(_id(sid, "shot id"), body, _id(pid)) if body else boards.shot(_id(sid, "shot id"), _id(pid))
    if position is not None:
        boards.move_shot(shot.id, position, _id(pid))
    return jsonify(shot_dict(boards.shot(shot.id)))


@storyboard.delete("/api/storyboards/<pid>/shots/<sid>")
def delete_shot(pid: str, sid: str):
    runtime().storyboards.delete_shot(_id(sid, "shot id"), _id(pid))
    return jsonify(_project(_id(pid)))


@storyboard.post("/api/storyboards/<pid>/order")
def reorder(pid: str):
    runtime().storyboards.reorder(_id(pid), _body().get("order"))
    return jsonify(_project(_id(pid)))


@storyboard.post("/api/storyboards/<pid>/undo")
def undo(pid: str):
    undone = runtime().storyboards.undo(_id(pid))
    return jsonify(_project(_id(pid)) | {"undone": undone["undone"]})


@storyboard.post("/api/storyboards/<pid>/render")
def render(pid: str):
    rt = runtime()
    body = _body()
    jobs = submit_shots(rt.jobs, rt.storyboards, _id(pid), body.get("shots"), body.get("redo"))
    return jsonify(jobs=jobs), 202


@storyboard.post("/api/storyboards/<pid>/export")
def export(pid: str):
    rt = runtime()
    asked = ExportRequest.parse(_body())
    params: dict[str, Any] = {"project": _id(pid), "burn_subtitles": asked.burn_subtitles, "music": asked.music}
    crossfade = check_export(rt.storyboards, _id(pid), CROSSFADE if asked.crossfade is None else asked.crossfade)
    if asked.crossfade is not None:
        params["crossfade"] = crossfade
    job = rt.jobs.submit("storyboard-export", params)
    return jsonify(job=job.id), 202


@storyboard.post("/api/storyboards/<pid>/open")
def open_folder(pid: str):
    """Show the folder in the desktop's file manager, as the Library's "Open folder" does."""
    boards = runtime().storyboards
    project = _project(_id(pid))
    made = (project["export"] or {}).get("path")
    folder = Path(made).parent if made and Path(made).is_file() else boards.folder(_id(pid))
    folder.mkdir(parents=True, exist_ok=True)
    opened = click.launch(str(folder)) == 0
    return jsonify(path=str(folder), opened=opened)


@storyboard.post("/api/storyboards/music")
def upload_music():
    request.max_content_length = MAX_MUSIC_BYTES + FORM_OVERHEAD
    try:
        upload = request.files.get("file")
    except RequestEntityTooLarge:
        raise RequestEntityTooLarge(f"music: the file is too big (at most {MAX_MUSIC_BYTES // 2**20} MiB)") from None
    if upload is None:
        raise UsageError("music: send the song as a multipart form field named 'file'")
    return jsonify(keep_music(runtime().home, upload.stream, upload.filename or "music")), 201


@storyboard.get("/api/storyboards/<pid>/files/<path:name>")
def made_file(pid: str, name: str):
    folder = runtime().storyboards.folder(_id(pid))
    return send_from_directory(folder, name)  # refuses paths that leave the folder
