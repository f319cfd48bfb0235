"""The studio's JSON API under ``/api/studio`` (behind the launch secret like every route).

    POST   /api/studio/images                  a request (``zishu.studio.requests``) → 202 {"job"}; 400 naming
                                               the field; the job's result lists the pictures
    GET    /api/studio/options                 samplers, size limits, the default model
    GET    /api/studio/gallery                 ?q= (prompt or character) &character= &favourite=1 &trash=1
                                               &offset= &limit= → {"images", "total"}
    GET    /api/studio/gallery/<id>            one picture
    POST   /api/studio/gallery/<id>/favourite  {"favourite": true|false}
    DELETE /api/studio/gallery/<id>            to the trash (Undo: POST …/restore)
    POST   /api/studio/gallery/<id>/restore
    GET    /api/studio/gallery/<id>/reuse      the request that made it ("reuse these settings")
    GET    /api/studio/files/<path>            the picture's PNG (never through a symbolic link)
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request, send_file

from zishu.errors import NotFound, ResourceNotAvailable, UsageError
from zishu.resources.versions import file_inside
from zishu.studio.requests import MAX_BATCH, MAX_SIDE, MIN_SIDE, SIZE_MULTIPLE

from .api import _body, whole_number
from .app import runtime

studio = Blueprint("studio", __name__, url_prefix="/api/studio")
MAX_IMAGE_ID = 2**63 - 1


def _image_id(value: str) -> int:
    return whole_number(value, "image id", low=1, high=MAX_IMAGE_ID)


@studio.post("/images")
def draw():
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
    return jsonify(schedulers=list(rt.studio.schedulers()), default_model=model, size_multiple=SIZE_MULTIPLE,
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
