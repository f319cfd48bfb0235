"""Storyboards over HTTP, behind the launch secret (the work is ``zishu.storyboard``'s)::

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
    POST   /api/storyboards/<id>/export              {burn_subtitles?, music?} → 202 {"job"}
    GET    /api/storyboards/<id>/files/<path>        a made file (picture, narration, the MP4 and its SRT)

Jobs report through the usual job routes and event stream (``/api/jobs``).
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request, send_from_directory

from zishu.errors import UsageError
from zishu.storyboard.projects import project_dict, shot_dict
from zishu.storyboard.render import submit_shots
from zishu.storyboard.writer import write_storyboard

from .api import _body, whole_number
from .app import runtime

storyboard = Blueprint("storyboard", __name__)
MAX_ID = 2**62


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
    return project_dict(boards.get(pid), boards.shots(pid)) | {"can_undo": boards.can_undo(pid)}


@storyboard.get("/api/storyboards")
def list_storyboards():
    boards = runtime().storyboards
    return jsonify(storyboards=[project_dict(p) for p in boards.projects()])


@storyboard.post("/api/storyboards")
def create_storyboard():
    rt = runtime()
    body = _body()
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
    body = _body()
    burn, music = body.get("burn_subtitles", False), body.get("music", True)
    for name, value in (("burn_subtitles", burn), ("music", music)):
        if not isinstance(value, bool):
            raise UsageError(f"{name}: expected true or false, got {value!r}")
    rt.storyboards.get(_id(pid))
    job = rt.jobs.submit("storyboard-export", {"project": _id(pid), "burn_subtitles": burn, "music": music})
    return jsonify(job=job.id), 202


@storyboard.get("/api/storyboards/<pid>/files/<path:name>")
def made_file(pid: str, name: str):
    folder = runtime().storyboards.folder(_id(pid))
    return send_from_directory(folder, name)  # refuses paths that leave the folder
