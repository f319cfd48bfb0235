"""Turning what the user names (``--model``: a catalog id or a local path) into a ``ModelRef``.

A catalog id must be installed: the version store's ``path`` raises ResourceNotAvailable
(MODEL_NOT_AVAILABLE) at once, naming the id, and nothing is downloaded implicitly. The store is
handed in (``Installed``): engines sit below the services and import none of them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

from zishu.errors import ResourceNotAvailable
from zishu.ids import is_id, is_version, split_request

from .api import ModelRef

MANIFEST = "manifest.json"  # what the installer writes beside a version's files


class Installed(Protocol):
    """What resolving needs of the version store: the folder of an installed version."""

    def path(self, rid: str, version: str | None = None) -> Path: ...


def resolve_model(name: str, registry: Installed) -> ModelRef:
    """``owner/name[@version]`` (installed) or a path to a model file or folder."""
    local = Path(name).expanduser()
    if local.exists():
        return ModelRef(key=str(local.resolve()), path=local.resolve(), format=_format_of(local))
    rid, version = split_request(name)
    if not is_id(rid) or ("@" in name and not is_version(version)):
        raise ResourceNotAvailable(f"{name}: no such file or folder, and not a catalog id (owner/name)")
    folder = registry.path(rid, version or None)  # ResourceNotAvailable when not installed
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))  # checked when installed
    spec = manifest.get("spec") or {}
    return ModelRef(key=f"{rid}@{folder.name}", path=folder, id=rid, version=folder.name,
                    format=spec.get("format") or _format_of(folder),
                    role=spec.get("role") or spec.get("target"),  # a model's role, a LoRA's target
                    ram_mb=spec.get("ram_mb"), vram_mb=spec.get("vram_mb"), spec=spec,
                    engine=spec.get("engine") if manifest.get("kind") == "voice" else None)


_SUFFIX_FORMATS = {".gguf": "gguf", ".onnx": "onnx", ".safetensors": "safetensors", ".ckpt": "ckpt",
                   ".pth": "pytorch"}
_IGNORED = {MANIFEST}


def _format_of(path: Path) -> str | None:
    """The format of a local model, from its file name or the marker files of known layouts."""
    if path.is_file():
        return _SUFFIX_FORMATS.get(path.suffix.lower())
    if (path / "model_index.json").exists():
        return "diffusers"
    if (path / "config.yaml").exists() and (path / "model.pt").exists():
        return "funasr"
    found = {_SUFFIX_FORMATS.get(p.suffix.lower()) for p in path.iterdir() if p.is_file() and p.name not in _IGNORED}
    found -= {None}
    return found.pop() if len(found) == 1 else None
