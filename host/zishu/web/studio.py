"""The studio's JSON API under ``/api/studio`` (behind the launch secret like every route).

    POST   /api/studio/images                  a request (``zishu.studio.requests``) → 202 {"job"}; 400 naming
                                               the field; the job's result lists the pictures. Its pictures
                                               (init_image, mask, control.image: a gallery id, a data URL or
                                               base64) make the body larger: up to MAX_REQUEST_BYTES
    GET    /api/studio/options                 samplers, size limits, the default model
    GET    /api/studio/gallery                 ?q= (prompt or character) &character= &favourite=1 &trash=1
                                               &offset= &limit= → {"images", "total"}
    GET    /api/studio/gallery/<id>            one picture
    POST   /api/studio/gallery/<id>/favourite  {"favourite": true|false}
    DELETE /api/studio/gallery/<id>            to the trash (Undo: POST …/restore)
    POST   /api/studio/gallery/<id>/restore
    GET    /api/studio/gallery/<id>/reuse      the request that made it ("reuse these settings")
    GET    /api/studio/files/<path>            the picture's PNG (never through a symbolic link)
    GET    /api/studio/capabilities            ?model= (default: the default model) → {"capabilities": {name:
                                               {"ok", "message", "install": "owner/name" or null}}} for img2img,
                                               inpaint, controlnet_canny, controlnet_pose, controlnet_depth,
                                               upscale, background, png, webp, jpeg; 404 for an unknown model
    POST   /api/studio/gallery/<id>/upscale    {"scale"?: 2|4, "model"?} → 201 {"image"}: a NEW gallery row, the
                                               same settings and parameters text; 404 naming what to install
                                               when no upscaler is installed
    POST   /api/studio/gallery/<id>/background {"model"?} → 201 {"image"}: a new row, the background clear (RGBA)
    GET    /api/studio/gallery/<id>/download   ?format=png|webp|jpeg &quality=1..100 (90) → the file, carrying the
                                               A1111 parameters (PNG text chunk; WebP/JPEG EXIF UserComment)
    POST   /api/studio/characters/<owner>/<name>/draw    {"prompt"?, "style"?, "batch"?} → 202 {"job"}
    POST   /api/studio/characters/<owner>/<name>/sheet   {"prompt"?, "style"?} → 202 {"jobs": {emotion: job}}
    POST   /api/studio/characters/<owner>/<name>/avatar  {"images": {emotion: gallery id}} → what
                                               /api/characters/<owner>/<name>/avatar-sheet returns; one picture
                                               as the avatar is {"images": {"neutral": id}}

A picture safe mode blocked is refused (400) by upscale, background, download and avatar. The work
is ``zishu.studio`` (``Studio``, ``edits``); a route parses, calls it and renders.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, send_file

from zishu.errors import NotFound, ResourceNotAvailable, UsageError
from zishu.ids import parse_id
from zishu.resources.versions import file_inside
from zishu.studio import edits
from zishu.studio.requests import MAX_BATCH, MAX_SIDE, MIN_SIDE, SIZE_MULTIPLE
from zishu.studio.service import STARTER_MODEL

from .api import _body, whole_number
from .app import runtime

studio = Blueprint("studio", __name__, url_prefix="/api/studio")
MAX_IMAGE_ID = 2**63 - 1
MAX_REQUEST_BYTES = 64 * 2**20  # a request carrying its pictures as data URLs


def _image_id(value: str) -> int:
    return whole_number(value, "image id", low=1, high=MAX_IMAGE_ID)


def _only(body: dict, *known: str) -> dict:
    """``body`` when it holds no field but ``known``; else 400 naming the first other one."""
    unknown = sorted(set(body) - set(known))
    if unknown:
        raise UsageError(f"{unknown[0]}: unknown field (known: {', '.join(known)})")
    return body


@studio.post("/images")
def draw():
    request.max_content_length = MAX_REQUEST_BYTES
    body = _body()
    priority = body.pop("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise UsageError("priority: must be a whole number")
    job = runtime().jobs.submit("image", body, priority=priority)
    return jsonify(job=job.as_dict()), 202


@studio.get("/options")
def options():
    rt = runtime()
    try:
        model: str | None = rt.studio.default_model()
    except ResourceNotAvailable:  # none installed: the options still say the rest
        model = None
    return jsonify(schedulers=list(rt.studio.schedulers()), default_model=model, starter_model=STARTER_MODEL,
                   size_multiple=SIZE_MULTIPLE,
                   min_side=MIN_SIDE, max_side=MAX_SIDE, max_batch=MAX_BATCH)


@studio.get("/gallery")
def gallery():
    args = request.args
    favourite = {"1": True, "true": True, "0": False, "false": False}.get(args.get("favourite", ""))
    rows, total = runtime().studio.gallery.search(
        args.get("q", ""), character=args.get("character") or None, favourite=favourite,
        trash=args.get("trash") in ("1", "true"),
        offset=whole_number(args.get("offset", "0"), "offset", low=0, high=10**9),
        limit=whole_number(args.get("limit", "60"), "limit", low=1, high=500))
    return jsonify(images=[row.as_dict() for row in rows], total=total)


@studio.get("/gallery/<image>")
def picture(image: str):
    return jsonify(image=runtime().studio.gallery.get(_image_id(image)).as_dict())


@studio.post("/gallery/<image>/favourite")
def favourite(image: str):
    on = _body().get("favourite", True)
    if not isinstance(on, bool):
        raise UsageError('favourite: expected {"favourite": true} or false')
    return jsonify(image=runtime().studio.gallery.favourite(_image_id(image), on).as_dict())


@studio.delete("/gallery/<image>")
def trash(image: str):
    return jsonify(image=runtime().studio.gallery.trash(_image_id(image)).as_dict(), undo="restore")


@studio.post("/gallery/<image>/restore")
def restore(image: str):
    return jsonify(image=runtime().studio.gallery.restore(_image_id(image)).as_dict())


@studio.get("/gallery/<image>/reuse")
def reuse(image: str):
    return jsonify(request=runtime().studio.gallery.reuse(_image_id(image)))


@studio.get("/files/<path:relative>")
def file(relative: str):
    found = file_inside(runtime().studio.gallery.folder, relative)
    if found is None:
        raise NotFound(f"no picture {relative!r} in the gallery")
    return send_file(found, mimetype="image/png", max_age=3600)


@studio.get("/capabilities")
def capabilities():
    found = runtime().studio.capabilities(request.args.get("model") or None)
    return jsonify(capabilities={name: capability.as_dict() for name, capability in found.items()})


@studio.post("/gallery/<image>/upscale")
def upscale(image: str):
    body = _only(_body(), "scale", "model")
    row = edits.upscale(runtime().studio, _image_id(image), body.get("scale"), body.get("model"))
    return jsonify(image=row.as_dict()), 201


@studio.post("/gallery/<image>/background")
def background(image: str):
    row = edits.remove_background(runtime().studio, _image_id(image), _only(_body(), "model").get("model"))
    return jsonify(image=row.as_dict()), 201


@studio.get("/gallery/<image>/download")
def download(image: str):
    quality = whole_number(request.args.get("quality", "90"), "quality", low=1, high=100)
    found = edits.download(runtime().studio, _image_id(image), request.args.get("format", "png"), quality)
    return Response(found.data, mimetype=found.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{found.filename}"'})


@studio.post("/characters/<owner>/<name>/draw")
def draw_character(owner: str, name: str):
    rt = runtime()
    job = edits.draw_character(rt.studio, rt.jobs, parse_id(owner, name, what="character id"), _body())
    return jsonify(job=job.as_dict()), 202


@studio.post("/characters/<owner>/<name>/sheet")
def draw_sheet(owner: str, name: str):
    rt = runtime()
    jobs = edits.draw_sheet(rt.studio, rt.jobs, parse_id(owner, name, what="character id"), _body())
    return jsonify(jobs={emotion: job.as_dict() for emotion, job in jobs.items()}), 202


@studio.post("/characters/<owner>/<name>/avatar")
def set_avatar(owner: str, name: str):
    body = _only(_body(), "images")
    saved = edits.set_avatar(runtime().studio, parse_id(owner, name, what="character id"), body.get("images"))
    return jsonify(character=saved["id"], version=saved["version"], changed=saved["changed"],
                   forked_from=saved["forked_from"])
