"""How much memory a diffusers pipeline needs loaded, worked out from its files without loading them.

The weights count at the precision they load in (float32 on the CPU, 16-bit on a GPU), from each
``.safetensors`` header; only the files that load count (see ``files.weight_files``). On top comes
room for activations, which grow with the picture: taken at the model's native size (SD 1.5 512²,
SDXL 1024²; 1024² when the configs do not say).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from zishu.engines import MemoryNeed, ModelRef

from .files import is_pipeline_folder, local_configs, safetensors_shapes, weight_files

MB = 2**20
ACTIVATION_BYTES_PER_PIXEL = 1024  # per byte of precision: ~2 GiB a megapixel at 16 bits


def estimate(model: ModelRef, device: str) -> MemoryNeed:
    size = 4 if device == "cpu" else 2
    weights = sum(_loaded_bytes(f, size) for f in weight_files(model.path))
    weights += sum(_loaded_bytes(lora.path if lora.path.is_file() else lora.file(".safetensors"), size)
                   for lora, _ in model.adapters)
    side = _native_side(model)
    need = weights + 256 * MB + side * side * size * ACTIVATION_BYTES_PER_PIXEL
    return MemoryNeed(ram=need) if device == "cpu" else MemoryNeed(vram=need, ram=512 * MB)


def _loaded_bytes(path: Path, size: int) -> int:
    """Bytes ``path``'s tensors take at ``size`` bytes a number (a pickle: its file size)."""
    if path.suffix != ".safetensors":
        return path.stat().st_size
    return size * sum(math.prod(shape) for shape in safetensors_shapes(path).values())


def _native_side(model: ModelRef) -> int:
    """The side in pixels the model was trained at: the UNet's sample size × the VAE's scale."""
    configs: Path | None
    if is_pipeline_folder(model.path):
        configs = model.path
    else:
        configs = local_configs(model, model.file(".safetensors", ".ckpt"))
    if configs is None:
        return 1024
    try:
        unet = json.loads((configs / "unet" / "config.json").read_text())
        vae = json.loads((configs / "vae" / "config.json").read_text())
        return int(unet["sample_size"]) * 2 ** (len(vae["block_out_channels"]) - 1)
    except (OSError, ValueError, KeyError, TypeError):
        return 1024
