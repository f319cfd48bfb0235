"""The pictures a request draws from (``init_image``, ``mask``, ``control.image``), as PIL images.

A picture is given as a gallery image id (``"12"`` or ``12``), a ``data:image/...;base64,`` URL, or
plain base64 (what AUTOMATIC1111 clients send). ``open_picture(value, field, gallery)`` decodes it and
refuses, naming the field: text that is none of these, bytes Pillow cannot read as a picture, a
picture larger than ``MAX_PIXELS``, a gallery id that is not there (NotFound), and a gallery picture
that safe mode blocked (it is never drawn from again). ``as_mask`` turns a painted mask into the
engine's form: one channel, white where the picture is repainted (transparent counts as black, so a
stroke painted on a clear canvas works); ``flat`` turns the others into RGB, transparency on white.
``inline_picture`` turns a gallery id into a data URL of its file, for a job another node draws
(whose gallery is not this one).
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from typing import Any

from PIL import Image, UnidentifiedImageError

from zishu.errors import NotFound, UsageError

from .gallery import Gallery

MAX_PIXELS = 4096 * 4096
_GALLERY_ID = re.compile(r"^\d{1,18}$")
_DATA_URL = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^,;]*)*?)(?P<b64>;base64)?,", re.I)


def open_picture(value: Any, field: str, gallery: Gallery) -> Image.Image:
    """The picture ``value`` names or holds (RGB, or RGBA when it has transparency)."""
    text = str(value).strip()
    if _GALLERY_ID.match(text):
        return _from_gallery(int(text), field, gallery)
    found = _DATA_URL.match(text)
    if found:
        if not found.group("b64"):
            raise UsageError(f"{field}: a data URL must be base64 (data:image/png;base64,...)")
        text = text[found.end():]
    try:
        data = base64.b64decode(re.sub(r"\s+", "", text), validate=True)
    except (binascii.Error, ValueError):
        raise UsageError(f"{field}: expected a gallery image id, a data:image/...;base64 URL or base64 picture "
                         "bytes") from None
    return _decoded(data, field)


def flat(picture: Image.Image) -> Image.Image:
    """``picture`` as RGB, its transparent parts on white (what the engine draws from)."""
    if picture.mode == "RGB":
        return picture
    rgba = picture.convert("RGBA")
    out = Image.new("RGB", picture.size, "white")
    out.paste(rgba, mask=rgba.getchannel("A"))
    return out


def as_mask(picture: Image.Image) -> Image.Image:
    """``picture`` as a one-channel mask: white = repaint; transparent pixels count as black."""
    if picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info:
        black = Image.new("RGBA", picture.size, (0, 0, 0, 255))
        picture = Image.alpha_composite(black, picture.convert("RGBA"))
    return picture.convert("L")


def inline_picture(value: Any, field: str, gallery: Gallery) -> Any:
    """``value`` as any node can read it: a gallery image id becomes a ``data:`` URL of the picture's
    file (refused like ``open_picture``: not there, blocked, file gone); anything else is kept as is."""
    text = str(value).strip()
    if not _GALLERY_ID.match(text):
        return value
    data = _gallery_bytes(int(text), field, gallery)  # the gallery writes PNGs only (``Gallery.add``)
    return f"data:image/png;base64,{base64.b64encode(data).decode('ascii')}"


def _from_gallery(image_id: int, field: str, gallery: Gallery) -> Image.Image:
    return _decoded(_gallery_bytes(image_id, field, gallery), field)


def _gallery_bytes(image_id: int, field: str, gallery: Gallery) -> bytes:
    try:
        row = gallery.get(image_id)
    except NotFound as e:
        raise NotFound(f"{field}: {e}") from None
    if row.blocked:
        raise UsageError(f"{field}: picture {image_id} was blocked by safe mode ({row.blocked_reason or 'blocked'}) "
                         "and cannot be drawn from")
    try:
        return gallery.path(row).read_bytes()
    except OSError:
        raise NotFound(f"{field}: the file of picture {image_id} is gone from the gallery") from None


def _decoded(data: bytes, field: str) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data)) as opened:
            width, height = opened.size
            if width * height > MAX_PIXELS:
                raise UsageError(f"{field}: the picture is {width}×{height}; at most {MAX_PIXELS:,} pixels")
            opened.load()
            picture = opened
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError, ValueError):
        raise UsageError(f"{field}: not a picture Pillow can read (PNG, JPEG, WebP ...)") from None
    has_alpha = picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info
    return picture.convert("RGBA" if has_alpha else "RGB")
