"""What a model's files are, read without torch: which weight files load, the weights' variant, the
tensors a ``.safetensors`` file holds (from its header), and where a single checkpoint's configs are.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from zishu.engines import ModelRef
from zishu.errors import EngineError

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt")
VARIANTS = ("fp16", "bf16", "fp32")
MAX_HEADER = 100 * 2**20  # the safetensors format caps its JSON header at 100 MB


def is_pipeline_folder(path: Path) -> bool:
    return path.is_dir() and (path / "model_index.json").exists()


def weight_files(path: Path) -> list[Path]:
    """The weight files that load: the file itself, or in each component folder the ``.safetensors``
    over pickles and the plain file over its variants (``x.fp16.safetensors``)."""
    if path.is_file():
        return [path]
    chosen = []
    for folder in {p.parent for p in path.rglob("*") if p.name.endswith(WEIGHT_SUFFIXES)}:
        found = [p for p in folder.iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES)]
        if any(p.suffix == ".safetensors" for p in found):
            found = [p for p in found if p.suffix == ".safetensors"]
        plain = {p for p in found if variant_of(p) is None}
        chosen += [p for p in found if p in plain or _without_variant(p) not in plain]
    return chosen


def variant_of(path: Path) -> str | None:
    """"fp16" for ``x.fp16.safetensors`` (or a shard ``x.fp16-00001-of-00002.safetensors``), else None."""
    parts = path.name.split(".")
    tag = parts[-2].split("-")[0] if len(parts) > 2 else None
    return tag if tag in VARIANTS else None


def _without_variant(path: Path) -> Path:
    variant = variant_of(path)
    return path.with_name(path.name.replace(f".{variant}", "", 1)) if variant else path


def folder_variant(folder: Path) -> str | None:
    """The variant to load from a pipeline folder: one only when every weight file is that variant."""
    variants = {variant_of(p) for p in weight_files(folder)}
    return variants.pop() if len(variants) == 1 else None


def safetensors_shapes(path: Path) -> dict[str, list[int]]:
    """Each tensor's shape, from the file's JSON header (8 bytes of length, then the header)."""
    try:
        with path.open("rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            if length > min(path.stat().st_size - 8, MAX_HEADER):
                raise ValueError(f"its header length ({length} bytes) is more than the file holds")
            header = json.loads(f.read(length))
        return {name: list(t["shape"]) for name, t in header.items() if name != "__metadata__"}
    except (OSError, struct.error, ValueError, KeyError, TypeError, AttributeError) as e:
        raise EngineError(f"{path} is not a readable .safetensors file: {type(e).__name__}: {e}") from e


def local_configs(model: ModelRef, checkpoint: Path) -> Path | None:
    """The diffusers config folder (model_index.json and each component's config) a single checkpoint
    loads with, when it is on disk next to it: the manifest's ``spec.config``, or ``config`` beside it."""
    named = model.spec.get("config")
    candidates = [model.path / named] if named and model.path.is_dir() else []
    candidates.append(checkpoint.parent / "config")
    return next((folder for folder in candidates if (folder / "model_index.json").is_file()), None)
