"""The studio's built-in expanders: a request's ``character`` and ``style`` turned into what is drawn.

``Studio`` runs them first in ``expanders`` (in ``prepare``, before the prompt checks), character
before style, since a character may name its style:

- ``DrawAsCharacter``: a request naming an installed character gets its appearance before the
  prompt, its negative prompt, its LoRA, and its stable seed and ``image_style.style`` where the
  user set none (``characters.with_character``). A character that is not installed is refused
  (ResourceNotAvailable naming the field).
- ``DrawInStyle``: a request naming a style (built in, the user's, or a catalog LoRA's) gets the
  style's template around its prompt, its negative and LoRAs, and its size, steps, guidance and
  scheduler only where the user did not set them (``model_fields_set``). A style whose LoRA is not
  installed is refused naming the catalog id to install.

Each works on the fields the user set (``ImageRequest.given``) and returns a new request marked
expanded, so a request is never expanded twice in one process. A queued job and the gallery keep the
user's own fields (``Prepared.asked``), never the expanded ones, so "reuse these settings" and
Retry expand once again, the same way.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zishu.errors import NotFound, ResourceNotAvailable, UsageError, ZishuError

from .characters import character_of, with_character
from .requests import ImageRequest
from .styles import Style, apply_style, get_style, missing_loras, styles


@dataclass
class DrawAsCharacter:
    """The expander for ``character`` (``host``: what holds the registry of installed resources)."""

    host: Any

    def __call__(self, request: ImageRequest) -> ImageRequest:
        if not request.character:
            return request
        character = character_of(self.host.registry, request.character)
        return _parsed(with_character(request.given(), character))


@dataclass
class DrawInStyle:
    """The expander for ``style``: ``home``'s styles, then the catalog's LoRA styles (``host.catalog()``)."""

    home: Path
    host: Any

    def style(self, name: str) -> Style:
        found = styles(self.home)
        if name not in found:
            catalog = getattr(self.host, "catalog", None)
            with contextlib.suppress(ZishuError):  # the catalog unreachable: the local styles still answer
                found = styles(self.home, catalog() if callable(catalog) else None)
        try:
            return get_style(found, name)
        except (NotFound, UsageError) as e:
            raise type(e)(f"style: {e}") from None

    def __call__(self, request: ImageRequest) -> ImageRequest:
        if not request.style:
            return request
        style = self.style(request.style)
        missing = missing_loras(style, self.host.registry.load())
        if missing:
            raise ResourceNotAvailable(
                f"style: {style.name} draws with {', '.join(missing)}, which "
                f"{'are' if len(missing) > 1 else 'is'} not installed; install with: zishu install "
                f"{' '.join(missing)}", install=missing[0])
        return _parsed(apply_style(request.given(), style))


def _parsed(fields: dict[str, Any]) -> ImageRequest:
    request = ImageRequest.parse(fields)
    request._expanded = True
    return request
