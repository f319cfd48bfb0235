"""The files a Live2D model's ``.model3.json`` names, checked against the files its version lists.

A ``model3.json`` names its moc, textures, physics, pose, display info, user data, expressions and
motions (with their sounds) by paths relative to its own folder. The app serves a version's files
by their ``name``, so each of those paths must be a file of the version, or the model loads with a
404 (a missing texture, a silent motion). ``validate --online`` downloads the entry file anyway and
runs ``check_model3`` on its bytes.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator
from typing import Any

MAX_MODEL3_BYTES = 4 * 1024 * 1024  # a model3.json is a few KiB; a bigger one is not read for references


def model3_references(data: bytes) -> Iterator[tuple[str, str]]:
    """(field in the model3.json, path as written) for every file it names. Raises ValueError when
    the bytes are not a model3.json."""
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError("is not a JSON document") from None
    refs = doc.get("FileReferences") if isinstance(doc, dict) else None
    if not isinstance(refs, dict):
        raise ValueError("has no FileReferences block")
    for key in ("Moc", "Physics", "Pose", "DisplayInfo", "UserData"):
        if isinstance(refs.get(key), str) and refs[key]:
            yield f"FileReferences.{key}", refs[key]
    for i, texture in enumerate(_list(refs.get("Textures"))):
        if isinstance(texture, str) and texture:
            yield f"FileReferences.Textures[{i}]", texture
    for i, expression in enumerate(_list(refs.get("Expressions"))):
        if isinstance(expression, dict) and isinstance(expression.get("File"), str):
            yield f"FileReferences.Expressions[{i}].File", expression["File"]
    motions = refs.get("Motions")
    for group, items in (motions.items() if isinstance(motions, dict) else ()):
        for i, motion in enumerate(_list(items)):
            for key in ("File", "Sound"):
                if isinstance(motion, dict) and isinstance(motion.get(key), str) and motion[key]:
                    yield f"FileReferences.Motions.{group}[{i}].{key}", motion[key]


def missing_files(data: bytes, entry: str, names: set[str]) -> list[str]:
    """One message for each file the model3.json ``entry`` (a name in the version) names that is not
    among ``names``; a single message when the bytes are not a model3.json at all."""
    folder = posixpath.dirname(entry)
    try:
        references = list(model3_references(data))
    except ValueError as e:
        return [f"{entry} {e}"]
    found = []
    for field, path in references:
        name = posixpath.normpath(posixpath.join(folder, path.replace("\\", "/")))
        if name not in names:
            found.append(
                f"{entry} names {path!r} ({field}), but the version has no file {name!r}; "
                "add it to files (keeping its sub-folder in the name)"
            )
    return found


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []
