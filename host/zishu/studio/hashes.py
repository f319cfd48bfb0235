"""Hashes of models and LoRAs: the result cache's key and the ``Model hash`` of a picture's
parameters (A1111's "AutoV2" short hash: the first 10 hex digits of the file's SHA-256).

A folder (a diffusers pipeline) hashes as the SHA-256 of its weight files' names and hashes. A
file's SHA-256 is kept in ``ZISHU_HOME/studio/hashes.json`` under its path, size and mtime, so a
multi-gigabyte checkpoint is read once, not at every request.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

from zishu.engines import ModelRef
from zishu.files import write_atomic

WEIGHTS = (".safetensors", ".ckpt", ".bin", ".pt", ".pth", ".onnx", ".gguf")
_lock = threading.Lock()


class ModelHashes:
    """SHA-256 of models, remembered in ``studio/hashes.json`` of a ZISHU_HOME."""

    def __init__(self, folder: Path) -> None:
        self.file = Path(folder) / "hashes.json"

    def of(self, model: ModelRef) -> str:
        """The model's SHA-256 (hex): its one weight file's, or that of a folder's weight files."""
        path = model.path
        if path.is_file():
            return self._file(path)
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in WEIGHTS)
        if len(files) == 1:
            return self._file(files[0])
        digest = hashlib.sha256()
        for file in files:
            digest.update(f"{file.relative_to(path).as_posix()}:{self._file(file)}\n".encode())
        return digest.hexdigest()

    def _file(self, path: Path) -> str:
        stat = path.stat()
        key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        with _lock:
            known = self._load()
            if key in known:
                return known[key]
        digest = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(2**20):
                digest.update(chunk)
        with _lock:
            known = self._load()
            known[key] = digest.hexdigest()
            write_atomic(self.file, json.dumps(known, indent=0))
        return known[key]

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}


def short(sha256: str) -> str:
    """A1111's short model hash: the first 10 hex digits."""
    return sha256[:10]
