"""The Characters panel and its JSON API: the installed characters, a form to make or edit one,
SillyTavern card import, delete with undo. The work is done by ``zishu.companion.characters``.

Pages: ``/characters`` (the list), ``/characters/new``, ``/characters/<owner>/<name>/edit``.
API under ``/api/characters``::

    GET    /api/characters                          {"characters": [...]}
    POST   /api/characters                          the fields → 201 {"character"}
    POST   /api/characters/import                   multipart "file" (PNG or JSON card) → 201 {"character"}
    GET    /api/characters/<owner>/<name>           {"character"}
    PUT    /api/characters/<owner>/<name>           the changed fields → {"character", "changed", "forked_from"}
    POST   /api/characters/<owner>/<name>/picture   multipart "file" (PNG, JPEG, WebP, GIF) + optional "fields"
                                                    (JSON): saved as a new version with the picture as avatar
                                                    → {"character", "changed", "forked_from"}
    GET    /api/characters/choices                  what each part can be: {"choices": {part: [{"id", "name",
                                                    "installed"}]}} (models per role, LoRAs, Live2D, voices)
    POST   /api/characters/<owner>/<name>/lorebook  multipart "file" (a SillyTavern world-info .json): its entries
                                                    added to the lorebook as a new version (Undo takes it back)
                                                    → {"character", "changed", "forked_from", "added"}
    POST   /api/characters/<owner>/<name>/undo      the newest version removed → {"undone", "character"|null}
    DELETE /api/characters/<owner>/<name>           to the trash → {"deleted"}
    POST   /api/characters/<owner>/<name>/restore   back from the trash → {"character"}
    GET    /api/characters/<owner>/<name>/avatar    the avatar image
    POST   /api/characters/<owner>/<name>/publish   {"license", "dry_run", "catalog", "repo"} → a stream of JSON
                                                    lines: {"event": "step"|"request", ...} as publishing goes,
                                                    then {"event": "done", "pull_request_url", "manifest", ...}
                                                    or {"event": "error", "code", "message"}

Bodies may be larger here than the app's 1 MiB: a card (or a character with a big lorebook) may
carry 5 MiB of JSON, a PNG card 20 MiB.
"""

from __future__ import annotations

import json
import mimetypes
import queue
import threading
from collections.abc import Iterator

from flask import Blueprint, Response, jsonify, render_template, request, send_file
from werkzeug.exceptions import RequestEntityTooLarge

from zishu.catalog.cards import MAX_JSON_BYTES, MAX_PNG_BYTES
from zishu.companion import characters as store
from zishu.companion.model_choices import choices
from zishu.companion.world_info import import_lorebook
from zishu.errors import NotFound, UsageError, ZishuError
from zishu.ids import parse_id

from .api import _body
from .app import runtime

characters = Blueprint("characters", __name__)

FORM_OVERHEAD = 64 * 1024  # multipart boundaries and headers around the card file
IMAGE_TYPES = {"image/png", "image/jpeg", "image/webp", "image/gif"}


def _id(owner: str, name: str) -> str:
    return parse_id(owner, name, what="character id")


def _json_body() -> dict:
    request.max_content_length = MAX_JSON_BYTES + FORM_OVERHEAD
    try:
        return _body()
    except RequestEntityTooLarge:
        raise RequestEntityTooLarge(f"the character is more than {MAX_JSON_BYTES // 2**20} MiB of JSON") from None


def _with_avatar_url(character: dict) -> dict:
    image = character["avatar"]["image"]
    url = f"/api/characters/{character['id']}/avatar?v={character['version']}" if image else None
    return {**character, "avatar": {**character["avatar"], "url": url}}


def _one(rid: str) -> dict:
    return _with_avatar_url(store.get_character(runtime(), rid))


# ---- pages -----------------------------------------------------------------------------------


@characters.get("/characters")
def character_list():
    found = [_with_avatar_url(c) for c in store.list_characters(runtime())]
    return render_template("characters.html", title="Characters", active="/characters", characters=found)


def _voice_engines() -> list[str]:
    return sorted(engine.info.name for engine in runtime().engines.of_kind("tts"))


@characters.get("/characters/new")
def character_new():
    return render_template("character_edit.html", title="New character", active="/characters", character=None,
                           voice_engines=_voice_engines())


@characters.get("/characters/<owner>/<name>/edit")
def character_edit(owner: str, name: str):
    character = _one(_id(owner, name))
    return render_template("character_edit.html", title=f"Edit {character['name']}", active="/characters",
                           character=character, voice_engines=_voice_engines())


# ---- the API ---------------------------------------------------------------------------------


@characters.get("/api/characters")
def api_list():
    return jsonify(characters=[_with_avatar_url(c) for c in store.list_characters(runtime())])


@characters.post("/api/characters")
def api_create():
    rid = store.create_character(runtime(), _json_body())
    return jsonify(character=_one(rid)), 201


@characters.post("/api/characters/import")
def api_import():
    request.max_content_length = MAX_PNG_BYTES + FORM_OVERHEAD
    try:
        upload = request.files.get("file")
    except RequestEntityTooLarge:
        raise RequestEntityTooLarge(
            f"the card file is too big: a PNG card may be at most {MAX_PNG_BYTES // 2**20} MiB, "
            f"a JSON card {MAX_JSON_BYTES // 2**20} MiB"
        ) from None
    if upload is None:
        raise UsageError("send the card as a multipart form field named 'file' (a PNG or JSON card)")
    data = upload.read(MAX_PNG_BYTES + 1)
    if not data:
        raise UsageError(f"{upload.filename or 'the file'}: the file is empty; choose a PNG or JSON character card")
    rid = store.import_card(runtime(), data, upload.filename or "card")
    return jsonify(character=_one(rid)), 201


@characters.get("/api/characters/<owner>/<name>")
def api_get(owner: str, name: str):
    return jsonify(character=_one(_id(owner, name)))


@characters.put("/api/characters/<owner>/<name>")
def api_update(owner: str, name: str):
    result = store.update_character(runtime(), _id(owner, name), _json_body())
    return jsonify(character=_one(result["id"]), changed=result["changed"], forked_from=result["forked_from"])


@characters.get("/api/characters/choices")
def api_choices():
    return jsonify(choices=choices(runtime()))


@characters.post("/api/characters/<owner>/<name>/picture")
def api_picture(owner: str, name: str):
    rid = _id(owner, name)
    request.max_content_length = store.MAX_PICTURE_BYTES + MAX_JSON_BYTES + FORM_OVERHEAD
    try:
        upload, fields_text = request.files.get("file"), request.form.get("fields") or "{}"
    except RequestEntityTooLarge:
        raise RequestEntityTooLarge(
            f"the picture is too big: at most {store.MAX_PICTURE_BYTES // 2**20} MiB") from None
    if upload is None:
        raise UsageError("send the picture as a multipart form field named 'file' (PNG, JPEG, WebP or GIF)")
    try:
        fields = json.loads(fields_text)
    except ValueError:
        raise UsageError("the form field 'fields' must be the character's fields as JSON") from None
    data = upload.read(store.MAX_PICTURE_BYTES + 1)
    result = store.update_character(runtime(), rid, fields, picture=(data, upload.filename or "picture"))
    return jsonify(character=_one(result["id"]), changed=result["changed"], forked_from=result["forked_from"])


@characters.post("/api/characters/<owner>/<name>/lorebook")
def api_lorebook(owner: str, name: str):
    rid = _id(owner, name)
    request.max_content_length = MAX_JSON_BYTES + FORM_OVERHEAD
    try:
        upload = request.files.get("file")
    except RequestEntityTooLarge:
        raise RequestEntityTooLarge(
            f"the world-info file is too big: at most {MAX_JSON_BYTES // 2**20} MiB") from None
    if upload is None:
        raise UsageError("send the world-info file as a multipart form field named 'file' (a SillyTavern .json)")
    data = upload.read(MAX_JSON_BYTES + 1)
    result = import_lorebook(runtime(), rid, data, upload.filename or "world.json")
    return jsonify(character=_one(result["id"]), changed=result["changed"], forked_from=result["forked_from"],
                   added=result["added"])


@characters.post("/api/characters/<owner>/<name>/undo")
def api_undo(owner: str, name: str):
    undone = store.undo_character_edit(runtime(), _id(owner, name))
    current = None if undone["deleted"] else _one(undone["id"])
    return jsonify(undone=undone, character=current)


@characters.delete("/api/characters/<owner>/<name>")
def api_delete(owner: str, name: str):
    return jsonify(deleted=store.delete_character(runtime(), _id(owner, name)))


@characters.post("/api/characters/<owner>/<name>/restore")
def api_restore(owner: str, name: str):
    rid = store.restore_character(runtime(), _id(owner, name))
    return jsonify(character=_one(rid))


@characters.get("/api/characters/<owner>/<name>/avatar")
def api_avatar(owner: str, name: str):
    path = store.avatar_file(runtime(), _id(owner, name))
    if path is None:
        raise NotFound(f"{owner}/{name} has no avatar image")
    mimetype = mimetypes.guess_type(path.name)[0]
    if mimetype not in IMAGE_TYPES:  # never SVG or HTML: only pictures that cannot carry script
        raise NotFound(f"{owner}/{name}'s avatar {path.name} is not a PNG, JPEG, WebP or GIF image")
    return send_file(path, mimetype=mimetype, max_age=0)


@characters.post("/api/characters/<owner>/<name>/publish")
def api_publish(owner: str, name: str):
    """Publish the character, streaming its progress as JSON lines (one publish is one request)."""
    from zishu.publishing.publish import publish

    rid = _id(owner, name)
    body = _body()
    options = {key: body.get(key) or None for key in ("license", "catalog", "repo")}
    for key, value in options.items():
        if value is not None and not isinstance(value, str):
            raise UsageError(f"{key}: must be a string")
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise UsageError("dry_run: must be true or false")
    registry = runtime().registry
    events: queue.Queue = queue.Queue()

    def work() -> None:
        try:
            done = publish(registry, rid, dry_run=dry_run, license=options["license"],
                           catalog_repo=options["catalog"], repo=options["repo"],
                           on_request=lambda r: events.put({"event": "request", "line": str(r)}),
                           progress=lambda e: events.put({"event": "step", **e}))
            events.put({"event": "done", "id": done.id, "version": done.version, "dry_run": dry_run,
                        "release_url": done.release_url, "pull_request_url": done.pull_request_url,
                        "manifest": done.manifest})
        except ZishuError as e:
            events.put({"event": "error", "code": e.code, "message": str(e)})
        except Exception as e:  # noqa: BLE001 - shown as the API shows any unexpected error: its type only
            events.put({"event": "error", "code": "ZISHU_ERROR", "message": f"unexpected error ({type(e).__name__})"})
        events.put(None)

    def lines() -> Iterator[str]:
        threading.Thread(target=work, name=f"publish {rid}", daemon=True).start()
        while (event := events.get()) is not None:
            yield json.dumps(event, ensure_ascii=False) + "\n"

    return Response(lines(), mimetype="application/x-ndjson", headers={"X-Accel-Buffering": "no"})
