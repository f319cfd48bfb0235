"""Background music the user hands over as a file (the panel's upload), kept where projects can use it.

``keep_music(home, source, filename)`` copies the upload into ``ZISHU_HOME/storyboards/music/`` as
``<first 12 hex of its sha256>-<its name>``, so the same song uploaded twice is kept once and two
songs of the same name never clash. It is checked with ffprobe before it gets that name (a file that
holds no audio is refused as ``music: <name> is not an audio file``), and it appears only whole
(written beside, then renamed). A project then names the kept file as its ``music``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import IO

from zishu.errors import UsageError

from .media import audio_seconds

MAX_MUSIC_BYTES = 200 * 2**20
MUSIC_FOLDER = ("storyboards", "music")  # under ZISHU_HOME
_UNSAFE = re.compile(r"[^\w.\-]+", re.UNICODE)


def music_folder(home: Path) -> Path:
    return Path(home).joinpath(*MUSIC_FOLDER)


def safe_name(filename: str) -> str:
    """The upload's file name as a plain name in one folder (no path, no odd characters)."""
    base = Path(filename.replace("\\", "/")).name
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = _UNSAFE.sub("-", stem).strip("-.")[:80] or "music"
    suffix = _UNSAFE.sub("", suffix)[:10].lower()
    return f"{stem}.{suffix}" if suffix else stem


def keep_music(home: Path, source: IO[bytes], filename: str) -> dict:
    """Keep the audio file read from ``source``: {"path", "name", "seconds", "size"}."""
    name = safe_name(filename or "music")
    folder = music_folder(home)
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with tempfile.TemporaryDirectory(dir=folder, prefix=".upload-") as work:
        held = Path(work) / name
        with open(held, "wb") as out:
            while chunk := source.read(1 << 20):
                size += len(chunk)
                if size > MAX_MUSIC_BYTES:
                    raise UsageError(f"music: {name} is bigger than {MAX_MUSIC_BYTES // 2**20} MiB; "
                                     "choose a shorter or more compressed song")
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if size == 0:
            raise UsageError(f"music: {name} is empty; choose an audio file (MP3, OGG, WAV, M4A, FLAC)")
        seconds = audio_seconds(held, field="music")
        kept = folder / f"{digest.hexdigest()[:12]}-{name}"
        if not kept.is_file():
            shutil.move(held, kept)  # same folder: a rename, so the file appears whole
    return {"path": str(kept), "name": name, "seconds": round(seconds, 3), "size": size}


__all__ = ["MAX_MUSIC_BYTES", "keep_music", "music_folder", "safe_name"]
