"""The character's avatar in the window: what to show, the files it needs, the expression calibrator.

    GET /api/avatar/<owner>/<name>                 what the page needs to show character owner/name
    PUT /api/avatar/<owner>/<name>/emotions        save the calibration {tag: {"expression", "motion"}}
    GET /avatar/core.js                            the Cubism Core from ZISHU_HOME/live2d/ (404 without)
    GET /avatar/models/<owner>/<name>/<path>       a file of the installed Live2D model owner/name
    GET /api/avatar/<owner>/<name>/sheet/<emotion> the avatar sheet's picture for an emotion
    GET /characters/<owner>/<name>/expressions     the expression calibrator

What the avatar shows and how a calibration is checked is ``zishu.companion.avatar``'s work. Ids
from a URL are checked against the id pattern and looked up in the registry before any path is
built; a model file is served only when ``service.model_file`` finds it inside the version folder
and not through a symbolic link.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template, send_file

from zishu.companion import avatar as service
from zishu.ids import parse_id

from .api import _body
from .app import runtime

avatar = Blueprint("avatar", __name__)


def _rid(owner: str, name: str) -> str:
    return parse_id(f"{owner}/{name}".lower())


def avatar_info(rid: str) -> dict:
    """The /api/avatar answer for character ``rid`` in this app's home."""
    rt = runtime()
    return service.avatar_info(rt.registry, rt.home, rid)


@avatar.get("/api/avatar/<owner>/<name>")
def avatar_api(owner: str, name: str):
    return jsonify(avatar_info(_rid(owner, name)))


@avatar.put("/api/avatar/<owner>/<name>/emotions")
def save_emotions(owner: str, name: str):
    """Body: the whole calibration ``{tag: {"expression": str | null, "motion": str | null}}`` (``{}``
    clears it). Answers the new avatar info plus ``previous``, the calibration it replaced (Undo)."""
    rt = runtime()
    return jsonify(service.save_calibration(rt.registry, rt.home, _rid(owner, name), _body()))


# -- the files ----------------------------------------------------------------------------------


def _not_found(message: str):
    response = jsonify(error={"code": "NOT_FOUND", "message": message})
    response.status_code = 404
    return response


@avatar.get("/avatar/core.js")
def core_js():
    path = service.core_file(runtime().home)
    if not path.is_file():
        return _not_found(f"the Live2D Cubism Core is not installed: run `zishu live2d core PATH_OR_URL` "
                          f"or put live2dcubismcore.min.js in {path.parent}")
    return send_file(path, mimetype="text/javascript", max_age=0)


@avatar.get("/api/avatar/<owner>/<name>/sheet/<emotion>")
def sheet_picture(owner: str, name: str, emotion: str):
    return send_file(service.sheet_file(runtime().registry, _rid(owner, name), emotion), max_age=3600)


@avatar.get("/avatar/models/<owner>/<name>/<path:file>")
def model_file(owner: str, name: str, file: str):
    return send_file(service.model_file(runtime().registry, _rid(owner, name), file), max_age=3600)


# -- the calibrator -----------------------------------------------------------------------------


@avatar.get("/characters/<owner>/<name>/expressions")
def calibrator(owner: str, name: str):
    info = avatar_info(_rid(owner, name))
    return render_template("expressions.html", title=f"{info['name']} · Expressions", active="/companion",
                           info=info)
