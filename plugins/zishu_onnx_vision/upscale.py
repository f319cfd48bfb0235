"""Upscaling a picture with a Real-ESRGAN-family ONNX model: the ``upscale`` kind's ``upscale(image, scale)``.

The model's own factor is read from it: the ratio of its output to its input, on a small probe when
its sizes are not fixed. The picture is drawn in tiles (``tile`` pixels a side, 256 unless the
manifest's ``spec.tile`` says otherwise), each with a margin of neighbouring pixels that is cut off
again, so memory stays bounded and the seams do not show. Alpha is enlarged separately (Lanczos).
A ``scale`` other than the model's factor resizes the model's result to it.
"""

from __future__ import annotations

import threading
from typing import Any

from zishu.errors import EngineError

from .session import fixed_side, run

TILE = 256  # pixels a side drawn at once (before the margin)
MARGIN = 16  # pixels of context around each tile, cut off after upscaling
MAX_SCALE = 8
MAX_OUTPUT_SIDE = 16384


class Upscaler:
    """A loaded upscaler (what ``UpscaleEngine.load`` returns)."""

    def __init__(self, session: Any, label: str, tile: int | None = None) -> None:
        self.session = session
        self.label = label
        self._lock = threading.Lock()
        fixed = fixed_side(session)
        if fixed is not None:
            if fixed[0] != fixed[1] or fixed[0] <= 2 * MARGIN:
                raise EngineError(f"{label}: its input is fixed at {fixed[1]}×{fixed[0]}; tiles need a square "
                                  f"input larger than {2 * MARGIN} pixels")
            self.window = fixed[0]
        else:
            if tile is not None and (not isinstance(tile, int) or isinstance(tile, bool) or tile < 8):
                raise EngineError(f"{label}: spec.tile must be a whole number of pixels ≥ 8, got {tile!r}")
            self.window = (tile or TILE) + 2 * MARGIN
        self.factor = self._factor()

    def _factor(self) -> int:
        import numpy as np

        side = self.window if fixed_side(self.session) else 2 * MARGIN + 8
        out = run(self.session, np.zeros((side, side, 3), np.float32))
        if out.ndim != 4 or out.shape[1] != 3 or out.shape[2] != out.shape[3] or out.shape[2] % side:
            raise EngineError(f"{self.label}: its output for a {side}×{side} picture is {list(out.shape)}, not a "
                              "3-channel picture a whole number of times larger; is this an upscaler?")
        return out.shape[2] // side

    def upscale(self, image: Any, scale: float | None = None) -> Any:
        import numpy as np
        from PIL import Image

        if self.session is None:
            raise EngineError(f"{self.label} was unloaded; load it again to upscale")
        if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float))
                                  or not 1 <= scale <= MAX_SCALE):
            raise EngineError(f"scale must be a number from 1 to {MAX_SCALE}, got {scale!r}")
        wanted = scale or self.factor
        width, height = image.size
        if max(width, height) * wanted > MAX_OUTPUT_SIDE:
            raise EngineError(f"upscaling {width}×{height} by {wanted:g} would pass {MAX_OUTPUT_SIDE} pixels a side")
        rgb = np.asarray(image.convert("RGB"), np.float32) / 255
        with self._lock:
            big = self._tiles(rgb)
        result = Image.fromarray((big * 255).round().clip(0, 255).astype(np.uint8))
        if "A" in image.getbands():
            result.putalpha(image.getchannel("A").resize(result.size, Image.Resampling.LANCZOS))
        target = (round(width * wanted), round(height * wanted))
        return result if result.size == target else result.resize(target, Image.Resampling.LANCZOS)

    def _tiles(self, rgb: Any) -> Any:
        """``rgb`` (H×W×3) upscaled by ``factor``, one window of ``window`` pixels at a time."""
        import numpy as np

        height, width = rgb.shape[:2]
        factor, window = self.factor, self.window
        inner = window - 2 * MARGIN
        if not fixed_side(self.session):  # a small picture needs no window bigger than itself
            inner = min(inner, max(height, width))
            window = inner + 2 * MARGIN
        padded = np.pad(rgb, ((MARGIN, MARGIN + inner), (MARGIN, MARGIN + inner), (0, 0)), mode="edge")
        out = np.zeros((height * factor, width * factor, 3), np.float32)
        for top in range(0, height, inner):
            for left in range(0, width, inner):
                drawn = run(self.session, padded[top:top + window, left:left + window])[0].transpose(1, 2, 0)
                rows, cols = min(inner, height - top), min(inner, width - left)
                out[top * factor:(top + rows) * factor, left * factor:(left + cols) * factor] = drawn[
                    MARGIN * factor:(MARGIN + rows) * factor, MARGIN * factor:(MARGIN + cols) * factor]
        return out.clip(0, 1)

    def close(self) -> None:
        self.session = None
