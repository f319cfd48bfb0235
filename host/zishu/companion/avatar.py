"""What a character's avatar shows, the files it needs, and the data of the expression calibrator.

``avatar_info(registry, home, rid)``
    What the window needs to show character ``rid`` (see ``web/static/avatar.js``): ``kind`` is
    ``live2d`` when the character names an installed Live2D model and the Cubism Core is in place
    (Zishu may not ship it: ``zishu live2d core``), ``image`` when it has a picture, else
    ``placeholder`` (its initial); ``why`` says what is missing. With it come the expressions and
    motion groups the avatar has, the emotion tags a calibrator offers, what each tag resolves to
    with and without the user's calibration, and the calibration itself.

``save_calibration(registry, home, rid, mapping)``
    Checks a whole calibration against the avatar (its expressions; its motion groups when it is a
    Live2D model) and stores it; returns the new info plus ``previous``, what it replaced (Undo).

``sheet_file(registry, rid, emotion)``  the picture of ``rid``'s avatar sheet for ``emotion`` (an
    expression sheet made in the studio: ``avatar.sheet`` maps emotions to pictures, and the
    page shows the emotion's picture on each emotion event, the avatar's own picture otherwise).
``live2d_model(registry, id)``  the installed Live2D model: folder, entry file, expressions, motions.
``model_folder(registry, id)``  the folder model files are served from (only a Live2D model's).
``model_file(registry, id, file)``  one file of it to serve: never a symlink, never outside it.
``core_file(home)``             where the Cubism Core is kept (it may not exist).

The URLs in the info are the routes of ``web/avatar.py``; ids are checked by the caller.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from zishu.errors import NotFound, ResourceNotAvailable, UsageError

from .brain import Character
from .cubism_core import check_live2d
from .expressions import (
    calibration,
    canonical_emotions,
    effective_targets,
    emotion_map,
    emotion_tags,
    save_emotion_map,
    tag_key,
)
from .stream_text import canonical_emotion

MAX_MODEL3_BYTES = 1024 * 1024  # a .model3.json is a few KB


def core_file(home: Path) -> Path:
    """Where the Live2D Cubism Core is kept in ``home`` (present or not)."""
    # The core's place and licence belong to `zishu live2d core`'s service module.
    from zishu.companion.live2d_core import core_path

    return core_path(home)


def _core_licence_url() -> str:
    from zishu.companion.live2d_core import LICENSE_URL

    return LICENSE_URL


def model3_names(path: Path) -> tuple[list[str], list[str]]:
    """Expression names and motion groups a .model3.json lists (empty when it cannot be read)."""
    try:
        if path.stat().st_size > MAX_MODEL3_BYTES:
            return [], []
        refs = json.loads(path.read_text(encoding="utf-8")).get("FileReferences") or {}
        expressions = [e["Name"] for e in refs.get("Expressions") or []
                       if isinstance(e, dict) and isinstance(e.get("Name"), str)]
        motions = [g for g in (refs.get("Motions") or {}) if isinstance(g, str)]
        return expressions, motions
    except (OSError, ValueError, AttributeError, TypeError):
        return [], []


def live2d_model(registry: Any, live2d_id: str) -> dict[str, Any]:
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
    expressions, motions = model3_names(entry)
    return {"id": live2d_id, "folder": folder, "entry": manifest.spec.entry,
            "expressions": list(dict.fromkeys([*manifest.spec.expressions, *expressions])),
            "motions": list(dict.fromkeys([*manifest.spec.motions, *motions]))}


def model_folder(registry: Any, rid: str) -> Path:
    """The folder of the installed Live2D model ``rid``, whose files the window may load."""
    folder = registry.path(rid)
    if registry.load().get(rid, {}).get(folder.name, {}).get("kind") != "live2d":
        raise NotFound(f"{rid} is not an installed Live2D model")
    return folder


def model_file(registry: Any, rid: str, file: str) -> Path:
    """The file ``file`` of the installed Live2D model ``rid`` to serve; NotFound when it is missing,
    is a symbolic link (or lies under one), or would leave the model's version folder."""
    from zishu.resources.versions import file_inside

    path = file_inside(model_folder(registry, rid), file)
    if path is None:
        raise NotFound(f"{rid} has no file {file[:200]!r} (symbolic links in a model are never served)")
    return path


def sheet_emotion(emotion: Any) -> str:
    """An emotion as the companion's emotion events name it (``event.name``): the canonical name of
    a built-in emotion word (``开心`` → ``happy``), else the tag itself, trimmed and in lower case.
    UsageError when it cannot be an emotion (empty, over 32 characters, brackets or slashes)."""
    key = tag_key(emotion) if isinstance(emotion, str) else ""
    if not key or len(key) > 32 or any(c in "[]【】［］()（）\r\n/\\" for c in key):
        raise UsageError(f"{str(emotion)[:40]!r} is not an emotion name (1 to 32 characters, no brackets or slashes)")
    return canonical_emotion(key) or key


def sheet_pictures(character: Character) -> dict[str, str]:
    """``character``'s avatar sheet: emotion (as events name it) → picture file, for a picture avatar."""
    avatar = character.spec.avatar
    out: dict[str, str] = {}
    for emotion, file in (avatar.sheet.items() if avatar is not None and avatar.image else []):
        try:
            out.setdefault(sheet_emotion(emotion), file)
        except UsageError:
            continue  # a hand-written key that no event can carry
    return out


def sheet_file(registry: Any, rid: str, emotion: str) -> Path:
    """The picture of ``rid``'s avatar sheet shown for ``emotion``; NotFound when there is none
    (or it is a symbolic link, or outside the character's folder)."""
    from zishu.resources.versions import file_inside

    character = Character.installed(registry, rid)
    try:
        file = sheet_pictures(character).get(sheet_emotion(emotion))
    except UsageError:
        file = None
    path = file_inside(character.folder, file) if file and character.folder else None
    if path is None:
        raise NotFound(f"{rid}'s avatar has no picture for {str(emotion)[:40]!r}")
    return path


def static_expressions(emotions: dict) -> list[str]:
    """What a static avatar can show: the canonical emotions and any expression the map names."""
    named = [t.expression for t in emotions.values() if t.expression]
    return list(dict.fromkeys([*canonical_emotions(), *named]))


def avatar_info(registry: Any, home: Path, rid: str) -> dict[str, Any]:
    """The /api/avatar answer for character ``rid`` (see avatar.js for how the page uses it)."""
    character = Character.installed(registry, rid)
    spec_avatar = character.spec.avatar
    core_at = core_file(home)
    core = core_at.is_file()
    owner, name = rid.split("/")
    info: dict[str, Any] = {"id": rid, "name": character.name, "initial": (character.name.strip() or "?")[0].upper(),
                            "kind": "placeholder", "model_url": None, "image_url": None, "live2d": None,
                            "core": core, "moc": None, "why": "", "sheet": {}}
    model, why = None, ""
    if spec_avatar and spec_avatar.live2d:
        info["live2d"] = spec_avatar.live2d
        try:
            model = live2d_model(registry, spec_avatar.live2d)
        except (ResourceNotAvailable, UsageError) as e:
            why = f"{character.name}'s Live2D model is not available: {e}"
        else:
            m_owner, m_name = spec_avatar.live2d.split("/")
            info["model_url"] = f"/avatar/models/{m_owner}/{m_name}/{quote(model['entry'])}"
            if not core:
                why = (f"Live2D needs the Cubism Core, which Zishu may not include: run `zishu live2d core "
                       f"PATH_OR_URL`, or put live2dcubismcore.min.js in {core_at.parent} "
                       f"(licence: {_core_licence_url()})")
    elif spec_avatar and spec_avatar.image:
        if character.folder and (character.folder / spec_avatar.image).is_file():
            info["image_url"] = f"/api/characters/{owner}/{name}/avatar?v={character.folder.name}"
            info["sheet"] = {emotion: f"/api/avatar/{owner}/{name}/sheet/{quote(emotion, safe='')}"
                                      f"?v={character.folder.name}"
                             for emotion, file in sheet_pictures(character).items()
                             if (character.folder / file).is_file()}
        else:
            why = f"{character.name}'s avatar image {spec_avatar.image} is missing from its folder"
    else:
        why = f"{character.name} has no avatar in its template: showing its initial"
    if model and core:
        info["moc"], refusal = check_live2d(core_at, model["folder"] / model["entry"])
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


def save_calibration(registry: Any, home: Path, rid: str, mapping: Any) -> dict[str, Any]:
    """Store ``mapping`` as the whole calibration of character ``rid`` (``{}`` clears it), checked
    against the avatar's expressions (and motion groups, for a Live2D model: a static avatar has
    none to check). Returns the new avatar info plus ``previous``, the calibration it replaced."""
    info = avatar_info(registry, home, rid)
    motions = info["motions"] if info["model_url"] else None
    previous = save_emotion_map(rid, mapping, info["expressions"], motions)
    return {**avatar_info(registry, home, rid), "previous": previous}
