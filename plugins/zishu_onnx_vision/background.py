"""Removing a picture's background with a U²-Net/BiRefNet-family ONNX segmenter: the ``background``
kind's ``remove_background(image)``.

The picture is resized to the model's input (its fixed size; for a model that takes any size, the
manifest's ``spec.size``, else 1024 a side), normalised with ImageNet's mean and deviation as those
models were trained, and the model's first output taken as the mask (squashed through a sigmoid when it
holds logits rather than 0..1). The mask, resized back, becomes the picture's alpha (multiplied into
any alpha it had).
"""

from __future__ import annotations

import threading
from typing import Any

from zishu.errors import EngineError

from .session import fixed_side, run

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
DEFAULT_SIDE = 1024


class BackgroundRemover:
    """A loaded segmenter (what ``BackgroundEngine.load`` returns)."""

    def __init__(self, session: Any, label: str, size: int | None = None) -> None:
        self.session = session
        self.label = label
        self._lock = threading.Lock()
        fixed = fixed_side(session)
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 8):
            raise EngineError(f"{label}: spec.size must be a whole number of pixels ≥ 8, got {size!r}")
        self.side = fixed or (size or DEFAULT_SIDE, size or DEFAULT_SIDE)  # (height, width)

    def mask(self, image: Any) -> Any:
        """The model's mask for ``image``: an "L" picture of its size, white where the subject is."""
        import numpy as np
        from PIL import Image

        if self.session is None:
            raise EngineError(f"{self.label} was unloaded; load it again to remove a background")
        height, width = self.side
        rgb = np.asarray(image.convert("RGB").resize((width, height), Image.Resampling.BILINEAR), np.float32) / 255
        with self._lock:
            out = run(self.session, (rgb - np.array(MEAN, np.float32)) / np.array(STD, np.float32))
        if out.ndim == 4:
            out = out[:, 0]
        if out.ndim != 3 or out.shape[1:] != (height, width):
            raise EngineError(f"{self.label}: its output is {list(out.shape)}, not a {width}×{height} mask; "
                              "is this a segmentation model?")
        mask = out[0]
        if mask.min() < 0 or mask.max() > 1:  # logits
            mask = 1 / (1 + np.exp(-mask))
        small = Image.fromarray((mask * 255).round().clip(0, 255).astype(np.uint8), "L")
        return small.resize(image.size, Image.Resampling.BILINEAR)

    def remove_background(self, image: Any) -> Any:
        from PIL import ImageChops

        alpha = self.mask(image)
        if "A" in image.getbands():
            alpha = ImageChops.multiply(alpha, image.getchannel("A"))
        cut = image.convert("RGBA")
        cut.putalpha(alpha)
        return cut

    def close(self) -> None:
        self.session = None
