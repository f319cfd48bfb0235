"""Writing files that must never be seen half written (temp file beside the target, fsync,
os.replace), and writing only what changed so incremental builds can trust mtimes."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path


@contextmanager
def adjacent_tmp_file(path: Path, mode: str = "wb") -> Iterator:
    """Yield a temp file in ``path``'s folder; on success it replaces ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_atomic(path: Path, data: str | bytes) -> None:
    with adjacent_tmp_file(path, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)


def write_if_changed(path: Path, data: str | bytes) -> bool:
    """Write only when the content differs, so unchanged files keep their mtime (incremental builds).

    Replaced atomically but not fsynced: cheap enough for thousands of generated files.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        if path.stat().st_size == len(raw) and path.read_bytes() == raw:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(raw)
    os.replace(tmp, path)  # readers see the old file or the new one, never half of one
    return True
