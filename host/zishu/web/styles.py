"""Studio styles and a character's avatar sheet over HTTP (the work is ``zishu.studio``'s)::

    GET    /api/studio/styles                    {"styles": [{name, title, prompt, negative, loras, width,
                                                 height, steps, guidance, scheduler, source, lora, missing}],
                                                 "problems": ["styles/x.yaml: steps: ..."]}
    PUT    /api/studio/styles/<name>             the style's fields → {"style", "previous"} (the user's own)
    DELETE /api/studio/styles/<name>             the user's style to the trash → {"deleted", "built_in_shown"}
    POST   /api/studio/styles/<name>/restore     back from the trash (Undo) → {"style"}
    POST   /api/characters/<owner>/<name>/avatar-sheet
                                                 multipart: one picture per emotion, each part named by its
                                                 emotion → {"character", "version", "changed", "forked_from"}

``missing`` lists the catalog ids of a style's LoRAs that are not installed.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from zishu.errors import UsageError
from zishu.ids import parse_id
from zishu.studio import characters as drawing
from zishu.studio import styles as service

from .api import _body
from .app import runtime

styles = Blueprint("styles", __name__)

MAX_SHEET_BYTES = 64 * 2**20  # every picture of one sheet, with the form around them


def _listed(style: service.Style, installed: dict) -> dict:
    return {**style.shown(), "missing": service.missing_loras(style, installed)}


@styles.get("/api/studio/styles")
def list_styles():
    rt = runtime()
    installed = rt.registry.load()
    found = service.styles(rt.home, rt.catalog())
    return jsonify(styles=[_listed(s, installed) for s in found.values()],
                   problems=[str(p) for p in service.style_problems(rt.home)])


@styles.put("/api/studio/styles/<name>")
def save_style(name: str):
    rt = runtime()
    saved = service.save_style(rt.home, name, _body())
    return jsonify(style=_listed(saved["style"], rt.registry.load()), previous=saved["previous"])


@styles.delete("/api/studio/styles/<name>")
def delete_style(name: str):
    return jsonify(service.delete_style(runtime().home, name))


@styles.post("/api/studio/styles/<name>/restore")
def restore_style(name: str):
    rt = runtime()
    restored = service.restore_style(rt.home, name)
    style = service.get_style(service.styles(rt.home), restored)
    return jsonify(style=_listed(style, rt.registry.load()))


@styles.post("/api/characters/<owner>/<name>/avatar-sheet")
def avatar_sheet(owner: str, name: str):
    rid = parse_id(owner, name, what="character id")
    request.max_content_length = MAX_SHEET_BYTES
    if not request.files:
        raise UsageError("send the pictures as multipart/form-data, one file per emotion, each part named by "
                         "its emotion (happy, sad, ...)")
    pictures = {field: upload.read() for field, upload in request.files.items()}
    saved = drawing.set_avatar_sheet(runtime(), rid, pictures)
    return jsonify(character=saved["id"], version=saved["version"], changed=saved["changed"],
                   forked_from=saved["forked_from"])
