"""The result cache (seed 001 §8.2): the same request returns the stored pictures at once, without
the engine.

"The same" is every parameter that changes the pixels (prompt after style, negative prompt, size,
steps, guidance, seed, sampler, batch, img2img and control inputs) plus the SHA-256 of the model and
of each LoRA with its weight. A request without a seed draws a random one, so it is never the same
and never cached. The pictures themselves are the gallery's rows with that key (``Gallery.cached``):
a picture put in the trash no longer answers.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

PIXEL_FIELDS = ("prompt", "negative_prompt", "width", "height", "steps", "guidance", "seed", "scheduler", "batch",
                "init_image", "mask", "strength", "control")


def cache_key(request: dict[str, Any], model_sha256: str, loras: list[tuple[str, float]]) -> str | None:
    """The key of a drawn request (``request``: the studio request's params after its style was
    applied; ``loras``: (SHA-256, weight) in order); None when the request has no seed."""
    if request.get("seed") is None:
        return None
    wanted = {name: request.get(name) for name in PIXEL_FIELDS}
    wanted |= {"model": model_sha256, "loras": [[sha, float(weight)] for sha, weight in loras]}
    return hashlib.sha256(json.dumps(wanted, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
