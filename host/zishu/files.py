"""Writing files that must never be seen half written (temp file beside the target, fsync,
os.replace), and writing only what changed so incremental builds can trust mtimes.

The temp file is made by ``mkstemp``, so it is 0600; files the user shares or opens in other
programs (exported cards, manifests) pass ``mode=SHARED_FILE_MODE`` to be readable by others."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

SHARED_FILE_MODE = 0o644  # a file the user hands to others (a card, a manifest): not private


@contextmanager
def adjacent_tmp_file(path: Path, mode: str = "wb", permissions: int | None = None) -> Iterator:
    """Yield a temp file in ``path``'s folder; on success it replaces ``path`` atomically.
    ``permissions``: the file's mode bits (default: mkstemp's 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if permissions is not None:
            os.fchmod(fd, permissions)
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_atomic(path: Path, data: str | bytes, permissions: int | None = None) -> None:
    """Write ``data`` to ``path`` atomically; ``permissions`` as in ``adjacent_tmp_file``."""
    with adjacent_tmp_file(path, "wb", permissions) as f:
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
