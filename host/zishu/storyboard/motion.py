"""The pan-and-zoom (Ken Burns) move of each shot: a still picture that slowly zooms in or out or
pans across, so a shot without an image-to-video clip still moves.

The move is chosen per shot from the project's seed and the shot's id (``choose_move``), so it stays
the same between exports and a regenerated shot keeps its move. ``zoompan`` turns a move into
ffmpeg's ``zoompan`` filter for ``frames`` frames of ``width``×``height``.
"""

from __future__ import annotations

import hashlib

MOVES = ("zoom-in", "zoom-out", "pan-left", "pan-right", "pan-up", "pan-down")
ZOOM = 0.15  # how much a zoom move enlarges: from 1.0 to 1.15 (or back)
PAN_ZOOM = 1.15  # a pan moves a picture enlarged this much from one side to the other


def choose_move(seed: int, shot_id: int) -> str:
    digest = hashlib.sha256(f"{seed}:{shot_id}".encode()).digest()
    return MOVES[digest[0] % len(MOVES)]


def zoompan(move: str, frames: int, width: int, height: int, fps: int) -> str:
    """ffmpeg's ``zoompan`` for ``move`` over ``frames`` output frames (``on``: the frame number)."""
    last = max(1, frames - 1)
    t = f"(on/{last})"
    centre_x, centre_y = "iw/2-(iw/zoom/2)", "ih/2-(ih/zoom/2)"
    if move == "zoom-in":
        z, x, y = f"1+{ZOOM}*{t}", centre_x, centre_y
    elif move == "zoom-out":
        z, x, y = f"{1 + ZOOM}-{ZOOM}*{t}", centre_x, centre_y
    elif move in ("pan-left", "pan-right"):
        z = str(PAN_ZOOM)
        x = f"(iw-iw/zoom)*{t}" if move == "pan-right" else f"(iw-iw/zoom)*(1-{t})"
        y = centre_y
    elif move in ("pan-up", "pan-down"):
        z = str(PAN_ZOOM)
        x = centre_x
        y = f"(ih-ih/zoom)*{t}" if move == "pan-down" else f"(ih-ih/zoom)*(1-{t})"
    else:
        z, x, y = "1", "0", "0"
    return f"zoompan=z='{z}':x='{x}':y='{y}':d={frames}:s={width}x{height}:fps={fps}"
