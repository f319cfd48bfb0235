"""What the user does with a gallery picture after it is drawn: upscale it, clear its background,
download it as PNG, WebP or JPEG, make it (or a sheet of them) a character's avatar; and "Draw this
character" and its expression sheet queued from the Studio panel.

- ``upscale(studio, image_id, scale, model)`` and ``remove_background(studio, image_id, model)``
  make a NEW gallery row beside the picture (the original stays): the same prompt, settings and
  A1111 ``parameters`` text, its own size, no result-cache key (it is not what the request draws),
  and the safe-mode picture checks run on it like on any drawing.
- ``download(studio, image_id, format, quality)``: the picture's bytes in that format, carrying the
  A1111 ``parameters`` (``postprocess.encode``), with a file name and a media type.
- ``set_avatar(studio, rid, images)``: emotion → gallery id, through ``characters.set_avatar_sheet``
  (a new version of the character; Undo takes it back). "Use as avatar" for one picture is
  ``{"neutral": id}``: it becomes the character's picture, shown on every emotion.
- ``draw_character`` and ``draw_sheet`` queue ``image`` jobs for an installed character.

A picture safe mode blocked is never upscaled, cleared, downloaded or made an avatar: each refuses
with a UsageError naming the picture and the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image

from zishu.companion.avatar import sheet_emotion
from zishu.errors import NotFound, UsageError

from . import postprocess
from .characters import character_of, set_avatar_sheet, sheet_asks
from .gallery import StudioImage
from .requests import MAX_BATCH, ImageRequest

if TYPE_CHECKING:
    from .service import Studio

SCALES = (2, 4)
MEDIA_TYPES = {"png": "image/png", "webp": "image/webp", "jpeg": "image/jpeg"}
EXTENSIONS = {"png": "png", "webp": "webp", "jpeg": "jpg"}
DRAW_FIELDS = ("prompt", "style", "batch")


@dataclass(frozen=True)
class Download:
    """A picture ready to send: its bytes, media type and file name."""

    data: bytes
    media_type: str
    filename: str


def _usable(studio: Studio, image_id: int, what: str, field: str = "image") -> StudioImage:
    row = studio.gallery.get(image_id)
    if row.blocked:
        raise UsageError(f"{field}: picture {image_id} was blocked by safe mode ({row.blocked_reason or 'blocked'}); "
                         f"a blocked picture cannot be {what}")
    return row


def _open(studio: Studio, row: StudioImage) -> Image.Image:
    path = studio.gallery.path(row)
    try:
        with Image.open(path) as picture:
            picture.load()
            return picture.copy()
    except OSError:
        raise NotFound(f"the file of picture {row.id} is gone from the gallery") from None


def _derived(studio: Studio, row: StudioImage, picture: Image.Image) -> StudioImage:
    """``picture`` made from ``row`` kept as a new row with ``row``'s settings, then checked."""
    fields = {name: getattr(row, name) for name in (
        "prompt", "negative_prompt", "character", "style", "model", "model_hash", "seed", "steps", "guidance",
        "scheduler", "request", "batch_index")}
    fields.update(job_id=None, cache_key=None, width=picture.width, height=picture.height, parent_id=row.id)
    added = studio.gallery.add(picture, parameters=row.parameters, fields=fields)
    request = ImageRequest.model_construct(prompt=row.prompt, character=row.character)
    for check in studio.image_checks:
        reason = check(picture, request)
        if reason:
            return studio.gallery.mark_blocked(added.id, reason)
    return added


def upscale(studio: Studio, image_id: int, scale: Any = None, model: Any = None) -> StudioImage:
    """A new gallery row: picture ``image_id`` enlarged ``scale`` (2 or 4; None: the model's own
    factor) times with ``model`` (an id or path; None: the first installed upscaler)."""
    if scale is not None and (isinstance(scale, bool) or scale not in SCALES):
        raise UsageError(f"scale: must be {' or '.join(map(str, SCALES))}, got {scale!r}")
    if model is not None and not isinstance(model, str):
        raise UsageError(f"model: expected an upscaler's catalog id or path, got {model!r}")
    row = _usable(studio, image_id, "upscaled")
    bigger = postprocess.upscale(studio.host, _open(studio, row).convert("RGB"), scale, model)
    return _derived(studio, row, bigger)


def remove_background(studio: Studio, image_id: int, model: Any = None) -> StudioImage:
    """A new gallery row: picture ``image_id`` with its background clear (RGBA PNG)."""
    if model is not None and not isinstance(model, str):
        raise UsageError(f"model: expected a background remover's catalog id or path, got {model!r}")
    row = _usable(studio, image_id, "cut out")
    cut = postprocess.remove_background(studio.host, _open(studio, row).convert("RGB"), model)
    return _derived(studio, row, cut)


def download(studio: Studio, image_id: int, format: str = "png", quality: int = 90) -> Download:
    """Picture ``image_id`` as ``format`` (png, webp, jpeg/jpg) bytes with its A1111 parameters."""
    name = str(format).lower()
    name = "jpeg" if name == "jpg" else name
    if name not in postprocess.FORMATS:
        raise UsageError(f"format: must be one of {', '.join(postprocess.FORMATS)}, got {format!r}")
    row = _usable(studio, image_id, "downloaded")
    data = postprocess.encode(_open(studio, row), name, quality, row.parameters)
    return Download(data, MEDIA_TYPES[name], f"zishu-{row.id}.{EXTENSIONS[name]}")


def set_avatar(studio: Studio, rid: str, images: Any) -> dict:
    """Make the gallery pictures ``images`` (emotion → gallery id) ``rid``'s avatar sheet."""
    if not isinstance(images, Mapping) or not images:
        raise UsageError('images: expected {"emotion": gallery id, ...}, e.g. {"neutral": 12}')
    pictures: dict[str, bytes] = {}
    for emotion, image_id in images.items():
        field = f"images.{emotion}"
        try:
            sheet_emotion(emotion)
        except UsageError as e:
            raise UsageError(f"{field}: {e}") from None
        if isinstance(image_id, bool) or not isinstance(image_id, int) or image_id < 1:
            raise UsageError(f"{field}: expected a gallery image id (a whole number), got {image_id!r}")
        try:
            row = _usable(studio, image_id, "an avatar", field)
        except NotFound as e:
            raise NotFound(f"{field}: {e}") from None
        try:
            pictures[str(emotion)] = studio.gallery.path(row).read_bytes()
        except OSError:
            raise NotFound(f"{field}: the file of picture {image_id} is gone from the gallery") from None
    character_of(studio.host.registry, rid)  # refused naming the character before anything is saved
    return set_avatar_sheet(studio.host, rid, pictures)


def _draw_fields(body: Any) -> dict[str, Any]:
    if not isinstance(body, Mapping):
        raise UsageError('expected a JSON object: {"prompt"?, "style"?, "batch"?}')
    unknown = sorted(set(body) - set(DRAW_FIELDS))
    if unknown:
        raise UsageError(f"{unknown[0]}: unknown field (known: {', '.join(DRAW_FIELDS)})")
    fields = {k: v for k, v in body.items() if v is not None}
    if "prompt" in fields and not isinstance(fields["prompt"], str):
        raise UsageError(f"prompt: expected text, got {fields['prompt']!r}")
    if "style" in fields and not isinstance(fields["style"], str):
        raise UsageError(f"style: expected a style name, got {fields['style']!r}")
    return fields


def draw_character(studio: Studio, queue: Any, rid: str, body: Any) -> Any:
    """Queue "Draw this character" (``body``: prompt, style and batch, each optional); the job."""
    fields = _draw_fields(body)
    batch = fields.get("batch", 1)
    if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= MAX_BATCH:
        raise UsageError(f"batch: must be a whole number from 1 to {MAX_BATCH}, got {batch!r}")
    return queue.submit("image", {**fields, "character": rid})


def draw_sheet(studio: Studio, queue: Any, rid: str, body: Any) -> dict[str, Any]:
    """Queue ``rid``'s expression sheet (``body``: prompt and style, optional); emotion → job. Every
    emotion's request is checked before the first is queued, so a refusal queues nothing."""
    fields = _draw_fields(body)
    if "batch" in fields:
        raise UsageError("batch: a sheet draws one picture per emotion")
    character = character_of(studio.host.registry, rid)
    asks = sheet_asks(character, prompt=fields.get("prompt", ""), style=fields.get("style"))
    checked = {emotion: studio.prepare(ask).queued() for emotion, ask in asks.items()}
    return {emotion: queue.submit("image", params) for emotion, params in checked.items()}

