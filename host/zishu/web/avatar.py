"""The character's avatar in the window: what to show, the files it needs, the expression calibrator.

    GET /api/avatar/<owner>/<name>                 what the page needs to show character owner/name
    PUT /api/avatar/<owner>/<name>/emotions        save the calibration {tag: {"expression", "motion"}}
    GET /avatar/core.js                            the Cubism Core from ZISHU_HOME/live2d/ (404 without)
    GET /avatar/models/<owner>/<name>/<path>       a file of the installed Live2D model owner/name
    GET /characters/<owner>/<name>/expressions     the expression calibrator

The avatar is Live2D when the character names an installed Live2D model and the Cubism Core is in
place (Zishu may not ship it: ``zishu live2d core``); otherwise it is static, the character's image
or its initial, and ``why`` says what is missing. Ids from a URL are checked against the id
pattern and looked up in the registry before any path is built; model files are served with
``send_from_directory`` (no path leaves the version folder).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import quote

from flask import Blueprint, jsonify, render_template, send_file, send_from_directory

from zishu.catalog.manifest import ID_PATTERN
from zishu.errors import NotFound, ResourceNotAvailable, UsageError

from .api import _body
from .app import runtime

avatar = Blueprint("avatar", __name__)

_ID = re.compile(ID_PATTERN)
MAX_MODEL3_BYTES = 1024 * 1024  # a .model3.json is a few KB


def _rid(owner: str, name: str) -> str:
    rid = f"{owner}/{name}".lower()
    if not _ID.match(rid):
        raise UsageError(f"{rid!r} is not a resource id (owner/name, lowercase letters, digits, dots and dashes)")
    return rid


def _character(rid: str):
    from zishu.companion.brain import Character

    return Character.installed(runtime().registry, rid)


# -- what the page shows ------------------------------------------------------------------------


def _model3_names(path: Path) -> tuple[list[str], list[str]]:
    """Expression names and motion groups a .model3.json lists (empty when it cannot be read)."""
    try:
        if path.stat().st_size > MAX_MODEL3_BYTES:
            return [], []
        refs = json.loads(path.read_text(encoding="utf-8")).get("FileReferences") or {}
        expressions = [e["Name"] for e in refs.get("Expressions") or [] if isinstance(e, dict) and isinstance(e.get("Name"), str)]
        motions = [g for g in (refs.get("Motions") or {}) if isinstance(g, str)]
        return expressions, motions
    except (OSError, ValueError, AttributeError, TypeError):
        return [], []


def live2d_model(registry, live2d_id: str) -> dict:
    """The installed Live2D model ``live2d_id``: {"id", "folder", "entry", "expressions", "motions"}.
    Raises ResourceNotAvailable (not installed) or UsageError (not a Live2D model, entry missing)."""
    from zishu.resources.install import manifest_of

    folder = registry.path(live2d_id)
    manifest = manifest_of(folder)
    if manifest.kind != "live2d":
        raise UsageError(f"{live2d_id} is a {manifest.kind}, not a Live2D model")
    entry = folder / manifest.spec.entry
    if not entry.is_file():
        raise UsageError(f"{live2d_id}'s model file {manifest.spec.entry} is missing; reinstall it: "
                         f"zishu uninstall {live2d_id} && zishu install {live2d_id}")
    expressions, motions = _model3_names(entry)
    return {"id": live2d_id, "folder": folder, "entry": manifest.spec.entry,
            "expressions": list(dict.fromkeys([*manifest.spec.expressions, *expressions])),
            "motions": list(dict.fromkeys([*manifest.spec.motions, *motions]))}


def static_expressions(emotions) -> list[str]:
    """What a static avatar can show: the canonical emotions and any expression the map names."""
    from zishu.companion.expressions import canonical_emotions

    named = [t.expression for t in emotions.values() if t.expression]
    return list(dict.fromkeys([*canonical_emotions(), *named]))


def avatar_info(rid: str) -> dict:
    """The /api/avatar answer for character ``rid`` (see avatar.js for how the page uses it)."""
    from zishu.companion.expressions import calibration, effective_targets, emotion_map, emotion_tags
    from zishu.live2d_command import LICENSE_URL, core_path

    rt = runtime()
    character = _character(rid)
    spec_avatar = character.spec.avatar
    core = core_path(rt.home).is_file()
    owner, name = rid.split("/")
    info = {"id": rid, "name": character.name, "initial": (character.name.strip() or "?")[0].upper(),
            "kind": "placeholder", "model_url": None, "image_url": None, "live2d": None,
            "core": core, "moc": None, "why": ""}
    model, why = None, ""
    if spec_avatar and spec_avatar.live2d:
        info["live2d"] = spec_avatar.live2d
        try:
            model = live2d_model(rt.registry, spec_avatar.live2d)
        except (ResourceNotAvailable, UsageError) as e:
            why = f"{character.name}'s Live2D model is not available: {e}"
        else:
            m_owner, m_name = spec_avatar.live2d.split("/")
            info["model_url"] = f"/avatar/models/{m_owner}/{m_name}/{quote(model['entry'])}"
            if not core:
                why = (f"Live2D needs the Cubism Core, which Zishu may not include: run `zishu live2d core "
                       f"PATH_OR_URL`, or put live2dcubismcore.min.js in {core_path(rt.home).parent} "
                       f"(licence: {LICENSE_URL})")
    elif spec_avatar and spec_avatar.image:
        if character.folder and (character.folder / spec_avatar.image).is_file():
            info["image_url"] = f"/api/characters/{owner}/{name}/avatar?v={character.folder.name}"
        else:
            why = f"{character.name}'s avatar image {spec_avatar.image} is missing from its folder"
    else:
        why = f"{character.name} has no avatar in its template: showing its initial"
    if model and core:
        from zishu.companion.cubism_core import check_live2d

        info["moc"], refusal = check_live2d(core_path(rt.home), model["folder"] / model["entry"])
        why = f"Live2D is off for {character.name}: {refusal}." if refusal else why
    if model and core and not why:
        info["kind"] = "live2d"
    elif info["image_url"]:
        info["kind"] = "image"
    info["why"] = why

    emotions = emotion_map(character)
    tags = emotion_tags(character)
    if model:
        info["expressions"], info["motions"] = model["expressions"], model["motions"]
    else:
        info["expressions"], info["motions"] = static_expressions(emotions), []
    info["tags"] = tags
    info["emotions"] = effective_targets(emotions, tags)
    info["defaults"] = effective_targets(character.spec.emotions, tags)
    info["calibration"] = {tag: t.model_dump() for tag, t in calibration(rid).items()}
    return info


@avatar.get("/api/avatar/<owner>/<name>")
def avatar_api(owner: str, name: str):
    return jsonify(avatar_info(_rid(owner, name)))


@avatar.put("/api/avatar/<owner>/<name>/emotions")
def save_emotions(owner: str, name: str):
    """Body: the whole calibration ``{tag: {"expression": str | null, "motion": str | null}}`` (``{}``
    clears it). Answers the new avatar info plus ``previous``, the calibration it replaced (Undo)."""
    from zishu.companion.expressions import save_emotion_map

    rid = _rid(owner, name)
    info = avatar_info(rid)
    motions = info["motions"] if info["model_url"] else None  # a static avatar has no motion groups to check
    previous = save_emotion_map(rid, _body(), info["expressions"], motions)
    return jsonify({**avatar_info(rid), "previous": previous})


# -- the files ----------------------------------------------------------------------------------


def _not_found(message: str):
    response = jsonify(error={"code": "NOT_FOUND", "message": message})
    response.status_code = 404
    return response


@avatar.get("/avatar/core.js")
def core_js():
    from zishu.live2d_command import core_path

    path = core_path(runtime().home)
    if not path.is_file():
        return _not_found(f"the Live2D Cubism Core is not installed: run `zishu live2d core PATH_OR_URL` "
                          f"or put live2dcubismcore.min.js in {path.parent}")
    return send_file(path, mimetype="text/javascript", max_age=0)


@avatar.get("/avatar/models/<owner>/<name>/<path:file>")
def model_file(owner: str, name: str, file: str):
    rid = _rid(owner, name)
    registry = runtime().registry
    folder = registry.path(rid)
    version = folder.name
    if registry.load().get(rid, {}).get(version, {}).get("kind") != "live2d":
        raise NotFound(f"{rid} is not an installed Live2D model")
    return send_from_directory(folder, file, max_age=3600)


# -- the calibrator -----------------------------------------------------------------------------


@avatar.get("/characters/<owner>/<name>/expressions")
def calibrator(owner: str, name: str):
    info = avatar_info(_rid(owner, name))
    return render_template("expressions.html", title=f"{info['name']} · Expressions", active="/companion",
                           info=info)
