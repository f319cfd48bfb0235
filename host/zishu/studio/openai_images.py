"""OpenAI's ``POST /v1/images/generations`` on the studio: the request model, its mapping to the
studio's ``ImageRequest``, and the answer, so ``web/openai_api.py`` only parses, calls and renders.

    ImageGenerationRequest            prompt, model, n (1–8), size "WxH" (or "auto"), response_format
                                      b64_json | url; Zishu's own fields may ride along (``extra_body``)
    generate(studio, queue, asked, file_url, stopping=)
                                      an ``image`` job, waited for → {"created", "data": [{b64_json | url,
                                      revised_prompt}]}

``model``: an installed image model (id, id@version or a path), or one of OpenAI's names
(``OPENAI_IMAGE_MODELS``: dall-e-2, dall-e-3, gpt-image-1 …), which draw with the studio's model
(Settings, else the first installed). ``url`` answers point at ``/v1/images/files/<file>`` on the
server that was asked, behind the same key as the rest of ``/v1`` (a client fetches it with its
``Authorization`` header): no unguarded link to a picture ever leaves the app. Errors come in
OpenAI's shape with ``param`` naming the request's field (``size`` for a width or height the model
cannot draw, ``n`` for the batch).
"""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import Field, StrictFloat, StrictInt, StrictStr

from zishu.companion.openai_compat import BadParam, OpenAIRequest, UnknownModel
from zishu.errors import JobCancelled, NotFound, ResourceNotAvailable, UsageError

from .gallery import StudioImage
from .requests import MAX_BATCH
from .waiting import draw_and_wait, picture_png

OPENAI_IMAGE_MODELS = ("dall-e-2", "dall-e-3", "gpt-image-1", "gpt-image-1-mini")  # "the studio's model"
SIZE = re.compile(r"^(\d{1,5})x(\d{1,5})$")
# the studio's field (as its errors name it) → the request's
PARAMS = {"width": "size", "height": "size", "batch": "n", "prompt": "prompt", "model": "model",
          "negative_prompt": "negative_prompt", "seed": "seed", "steps": "steps", "guidance": "guidance",
          "scheduler": "scheduler", "style": "style", "character": "character"}


class ImageGenerationRequest(OpenAIRequest):
    """OpenAI's fields (``quality``, ``style``'s vivid/natural, ``user``, ``background`` … are accepted
    and ignored), plus Zishu's own, which the openai client sends through ``extra_body``."""

    prompt: StrictStr
    model: StrictStr | None = None
    n: Annotated[StrictInt, Field(ge=1, le=MAX_BATCH)] = 1
    size: StrictStr | None = None
    response_format: Literal["url", "b64_json"] = "url"
    negative_prompt: StrictStr | None = None
    seed: StrictInt | None = None
    steps: StrictInt | None = None
    guidance: StrictFloat | StrictInt | None = None
    scheduler: StrictStr | None = None
    character: StrictStr | None = None


def studio_request(asked: ImageGenerationRequest) -> dict:
    """The studio request for an OpenAI one; BadParam naming ``size`` when it is not "WxH"."""
    request: dict[str, Any] = {"prompt": asked.prompt, "batch": asked.n}
    if asked.model and asked.model not in OPENAI_IMAGE_MODELS:
        request["model"] = asked.model
    if asked.size and asked.size != "auto":
        found = SIZE.match(asked.size)
        if found is None:
            raise BadParam("size", f"size must be \"WIDTHxHEIGHT\" (e.g. \"512x512\") or \"auto\", got {asked.size!r}")
        request["width"], request["height"] = int(found[1]), int(found[2])
    for name in ("negative_prompt", "seed", "steps", "guidance", "scheduler", "character"):
        value = getattr(asked, name)
        if value is not None:
            request[name] = value
    extra = asked.model_extra or {}
    if isinstance(extra.get("style"), str) and extra["style"] not in ("vivid", "natural"):  # OpenAI's own values
        request["style"] = extra["style"]
    return request


def generate(studio: Any, queue: Any, asked: ImageGenerationRequest, file_url: Callable[[StudioImage], str], *,
             stopping: threading.Event | None = None) -> dict:
    """Draw ``asked`` as an ``image`` job, wait for it, and answer as OpenAI does. ``file_url(row)``:
    where the answer's ``url`` points for a picture."""
    try:
        drawn = draw_and_wait(queue, studio.gallery, studio_request(asked), stopping=stopping)
    except BadParam:
        raise
    except ResourceNotAvailable as e:
        field, _, message = str(e).partition(": ")
        if field == "model":
            raise UnknownModel(f"there is no image model {asked.model!r} here: {message} (GET /v1/models lists "
                               "the installed ones; dall-e-3 and the other OpenAI names draw with the studio's "
                               "model)") from None
        raise
    except UsageError as e:
        field, _, message = str(e).partition(": ")
        head = field.split(".", 1)[0]
        if head in PARAMS:
            raise BadParam(PARAMS[head], f"{PARAMS[head]}: {message}" if PARAMS[head] != head else str(e)) from None
        raise BadParam(None, str(e)) from None
    if drawn.interrupted:
        raise JobCancelled(f"the image job {drawn.job['id']} was cancelled before it finished")
    data = []
    for row in drawn.images:
        item: dict[str, Any] = {"revised_prompt": row.prompt}
        if asked.response_format == "b64_json":
            item["b64_json"] = base64.b64encode(picture_png(studio.gallery, row)).decode("ascii")
        else:
            item["url"] = file_url(row)
        data.append(item)
    return {"created": int(time.time()), "data": data}


def picture_at(gallery: Any, relative: str) -> StudioImage:
    """The gallery picture in file ``relative`` (as a ``url`` answer names it); NotFound otherwise,
    also for a path that leaves the gallery or passes a symbolic link."""
    from zishu.resources.versions import file_inside

    row = StudioImage.get_or_none(StudioImage.file == relative)
    if row is None or file_inside(gallery.folder, relative) is None:
        raise NotFound(f"no picture {relative!r} in the gallery")
    return row
