"""What ffprobe says about a media file: its duration and streams (``probe``), and whether a file
the user hands us is audio at all (``audio_seconds``), through Debian's ``ffprobe``."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from zishu.errors import EngineError, UsageError


def tool(name: str) -> str:
    """The path of ``ffmpeg`` or ``ffprobe``; EngineError saying how to install it when missing."""
    found = shutil.which(name)
    if found is None:
        raise EngineError(f"{name} is not installed: install Debian's ffmpeg package (apt install ffmpeg; "
                          "make setup does it)")
    return found


def probe(path: Path) -> dict[str, Any]:
    """ffprobe's JSON for ``path``: ``format`` and ``streams``; UsageError when it cannot read it."""
    done = subprocess.run([tool("ffprobe"), "-v", "error", "-print_format", "json", "-show_format",
                           "-show_streams", str(path)], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "unreadable"
        raise UsageError(f"{path}: ffprobe cannot read it ({reason})")
    return json.loads(done.stdout)


def audio_seconds(path: Path, *, field: str = "audio") -> float:
    """How long the audio in ``path`` lasts; UsageError naming ``field`` when it holds no audio."""
    try:
        found = probe(path)
    except UsageError:
        raise UsageError(f"{field}: {path.name} is not an audio file (ffprobe cannot read it)") from None
    streams = [s for s in found.get("streams", []) if s.get("codec_type") == "audio"]
    if not streams:
        raise UsageError(f"{field}: {path.name} is not an audio file (it has no audio stream)")
    seconds = streams[0].get("duration") or found.get("format", {}).get("duration")
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        raise UsageError(f"{field}: {path.name} has no duration ffprobe can read") from None
    if value <= 0:
        raise UsageError(f"{field}: {path.name} holds no sound (0 seconds)")
    return value
