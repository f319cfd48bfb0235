"""Loading an upscaler's weights with spandrel and drawing a picture with it in tiles.

``load_descriptor(model, device)`` reads the model's one ``.pth``/``.pt``/``.safetensors`` file with
``spandrel.ModelLoader`` and checks that it is a 3-channel image-to-image model that enlarges; a file
that is not such a model is refused with an ``EngineError`` naming the file. ``Upscaler.upscale(image,
scale)`` draws the picture ``tile`` pixels a side at a time (256 unless the manifest's ``spec.tile``
says otherwise), each with a margin of neighbouring pixels that is cut off again, so memory stays
bounded and the seams do not show; alpha is enlarged separately (Lanczos), and a ``scale`` other than
the model's own factor resizes the result to it.
"""

from __future__ import annotations

import threading
from typing import Any

from zishu.engines import ModelRef
from zishu.errors import EngineError

SUFFIXES = (".pth", ".pt", ".safetensors")
TILE = 256  # pixels a side drawn at once (before the margin)
MARGIN = 16  # pixels of context around each tile, cut off after upscaling
MAX_SCALE = 8
MAX_OUTPUT_SIDE = 16384


def torch_device(device: str) -> Any:
    import torch

    kind = device.split(":")[0]
    if kind == "cpu":
        return torch.device("cpu")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise EngineError(f"{device} was asked for, but this torch sees no CUDA GPU")
        return torch.device(device)
    raise EngineError(f"the spandrel engine runs on cpu or cuda, not {device!r}")


def load_descriptor(model: ModelRef, device: str) -> Any:
    """spandrel's ``ImageModelDescriptor`` for ``model``'s weights, in eval mode on ``device``."""
    from spandrel import ImageModelDescriptor, ModelLoader, UnsupportedModelError

    where = torch_device(device)
    path = model.file(*SUFFIXES)
    try:
        descriptor = ModelLoader(device=where).load_from_file(path)
    except UnsupportedModelError as e:
        raise EngineError(f"{model.label}: {path.name} holds weights of no architecture spandrel knows") from e
    except Exception as e:  # torch.load / safetensors raise many kinds for a file that is not weights
        raise EngineError(f"{model.label}: {path.name} is not a model file spandrel can load: {e}") from e
    if not isinstance(descriptor, ImageModelDescriptor):
        raise EngineError(f"{model.label}: {path.name} is a {type(descriptor).__name__}, not an image-to-image model")
    if descriptor.input_channels != 3 or descriptor.output_channels != 3 or descriptor.scale < 1:
        raise EngineError(f"{model.label}: {path.name} is a {descriptor.architecture.name} model taking "
                          f"{descriptor.input_channels} channels to {descriptor.output_channels} at scale "
                          f"{descriptor.scale}; an upscaler takes RGB to RGB")
    return descriptor.eval()


class Upscaler:
    """A loaded upscaler (what ``SpandrelUpscaleEngine.load`` returns)."""

    def __init__(self, descriptor: Any, label: str, device: str = "cpu", tile: int | None = None) -> None:
        if tile is not None and (not isinstance(tile, int) or isinstance(tile, bool) or tile < 8):
            raise EngineError(f"{label}: spec.tile must be a whole number of pixels ≥ 8, got {tile!r}")
        self.descriptor = descriptor
        self.label = label
        self.device = torch_device(device)
        self.factor = int(descriptor.scale)
        self.architecture = descriptor.architecture.name
        self.tile = tile or TILE
        self._lock = threading.Lock()

    def upscale(self, image: Any, scale: float | None = None) -> Any:
        import numpy as np
        from PIL import Image

        if self.descriptor is None:
            raise EngineError(f"{self.label} was unloaded; load it again to upscale")
        if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float))
                                  or not 1 <= scale <= MAX_SCALE):
            raise EngineError(f"scale must be a number from 1 to {MAX_SCALE}, got {scale!r}")
        wanted = scale or self.factor
        width, height = image.size
        if max(width, height) * max(wanted, self.factor) > MAX_OUTPUT_SIDE:
            raise EngineError(f"upscaling {width}×{height} by {wanted:g} would pass {MAX_OUTPUT_SIDE} pixels a side")
        rgb = np.asarray(image.convert("RGB"), np.float32) / 255
        with self._lock:
            big = self._tiles(rgb)
        result = Image.fromarray((big * 255).round().clip(0, 255).astype(np.uint8))
        if "A" in image.getbands():
            result.putalpha(image.getchannel("A").resize(result.size, Image.Resampling.LANCZOS))
        target = (round(width * wanted), round(height * wanted))
        return result if result.size == target else result.resize(target, Image.Resampling.LANCZOS)

    def _run(self, window: Any) -> Any:
        """The model's output for one H×W×3 window, as an array ``factor`` times larger (spandrel pads a
        window to the architecture's size requirements and crops the padding off again)."""
        import torch

        batch = torch.from_numpy(window.transpose(2, 0, 1).copy())[None].to(self.device)
        with torch.inference_mode():
            out = self.descriptor(batch)
        return out[0].float().cpu().numpy().transpose(1, 2, 0)

    def _tiles(self, rgb: Any) -> Any:
        """``rgb`` (H×W×3) upscaled by ``factor``, one tile with its margin at a time."""
        import numpy as np

        height, width = rgb.shape[:2]
        factor = self.factor
        inner = min(self.tile, max(height, width))  # a small picture needs no tile bigger than itself
        window = inner + 2 * MARGIN
        padded = np.pad(rgb, ((MARGIN, MARGIN + inner), (MARGIN, MARGIN + inner), (0, 0)), mode="edge")
        out = np.zeros((height * factor, width * factor, 3), np.float32)
        for top in range(0, height, inner):
            for left in range(0, width, inner):
                drawn = self._run(padded[top:top + window, left:left + window])
                rows, cols = min(inner, height - top), min(inner, width - left)
                out[top * factor:(top + rows) * factor, left * factor:(left + cols) * factor] = drawn[
                    MARGIN * factor:(MARGIN + rows) * factor, MARGIN * factor:(MARGIN + cols) * factor]
        return out

    def close(self) -> None:
        self.descriptor = None
