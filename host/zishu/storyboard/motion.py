"""The pan-and-zoom (Ken Burns) move of each shot: a still picture that slowly zooms in or out or
pans across, so a shot without an image-to-video clip still moves.

The move is chosen per shot from the project's seed and the shot's id (``choose_move``), so it stays
the same between exports and a regenerated shot keeps its move. ``still_filters`` turns a move into
the ffmpeg filters that make ``frames`` frames of ``width``×``height`` from one picture: a pan
scales the picture once, ``PAN_ZOOM`` times the frame, and moves a frame-sized ``crop`` across it
(no scaling per frame, so it costs the encoder nothing); a zoom needs a new scale every frame,
which ``zoompan`` does from the picture scaled once to ``1 + ZOOM`` times the frame (enough for
the closest view to be sharp). The picture is turned into the video's yuv420p once, before the
move, so no frame is converted after it. ``zoompan`` alone is kept for a move given by name.
"""

from __future__ import annotations

import hashlib

MOVES = ("zoom-in", "zoom-out", "pan-left", "pan-right", "pan-up", "pan-down")
ZOOM = 0.15  # how much a zoom move enlarges: from 1.0 to 1.15 (or back)
PAN_ZOOM = 1.15  # a pan moves a picture enlarged this much from one side to the other


def choose_move(seed: int, shot_id: int) -> str:
    digest = hashlib.sha256(f"{seed}:{shot_id}".encode()).digest()
    return MOVES[digest[0] % len(MOVES)]


def _even(value: float) -> int:
    return round(value / 2) * 2


def still_filters(move: str, frames: int, width: int, height: int, fps: int) -> str:
    """The filters, after an input picture, that give ``frames`` frames of ``move`` at ``fps``."""
    last = max(1, frames - 1)
    if move in ("pan-left", "pan-right", "pan-up", "pan-down"):
        big_w, big_h = _even(width * PAN_ZOOM), _even(height * PAN_ZOOM)
        t = f"(n/{last})"
        x = {"pan-right": f"(iw-ow)*{t}", "pan-left": f"(iw-ow)*(1-{t})"}.get(move, "(iw-ow)/2")
        y = {"pan-down": f"(ih-oh)*{t}", "pan-up": f"(ih-oh)*(1-{t})"}.get(move, "(ih-oh)/2")
        return (f"scale={big_w}:{big_h}:force_original_aspect_ratio=increase:flags=bicubic,"
                f"crop={big_w}:{big_h},setsar=1,format=yuv420p,loop=loop={last}:size=1:start=0,setpts=N/({fps}*TB),fps={fps},"
                f"crop={width}:{height}:x='{x}':y='{y}'")
    big_w, big_h = _even(width * (1 + ZOOM)), _even(height * (1 + ZOOM))
    return (f"scale={big_w}:{big_h}:force_original_aspect_ratio=increase:flags=bicubic,"
            f"crop={big_w}:{big_h},setsar=1,format=yuv420p,{zoompan(move, frames, width, height, fps)}")


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
