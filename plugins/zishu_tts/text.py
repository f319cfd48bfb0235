"""Cutting text into the pieces that are synthesised one at a time, guessing its language, and
checking the speed asked for.

Speech streams piece by piece: each sentence (Chinese or Western punctuation) is one piece, and
the first sentence is cut again at its first comma, so the first audio is short and playback
starts while the rest is still being synthesised.
"""

from __future__ import annotations

import re

from zishu.errors import EngineError

SPEEDS = (0.25, 4.0)  # the range every engine here accepts: slower or faster is not speech any more

_CLOSERS = "”’\"')）」』】]"
# A sentence ends at Chinese or Western end punctuation (a "." only before a space or the end, so
# "3.14" stays whole) or at a line break; closing quotes and brackets stay with their sentence.
_SENTENCE_END = re.compile(rf"(?:[。！？!?；;…]+|\.(?=\s|$)|\n+)[{re.escape(_CLOSERS)}]*")
_FIRST_COMMA = re.compile(r"[，、]|,(?!\d)")  # "1,000" is not a pause
_SPEAKABLE = re.compile(r"\w")

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af\u1100-\u11ff]")


def split_for_speech(text: str) -> list[str]:
    """The pieces of ``text`` to synthesise in order: sentences, the first one cut at its first
    comma. Pieces keep their punctuation; pieces with nothing to say (only punctuation) are dropped."""
    pieces, start = [], 0
    for end in _SENTENCE_END.finditer(text):
        pieces.append(text[start:end.end()])
        start = end.end()
    pieces.append(text[start:])
    pieces = [p.strip() for p in pieces if _SPEAKABLE.search(p)]
    if pieces:
        comma = _FIRST_COMMA.search(pieces[0])
        if comma and _SPEAKABLE.search(pieces[0][comma.end():]):
            head, rest = pieces[0][:comma.end()], pieces[0][comma.end():].strip()
            pieces[0:1] = [head, rest]
    return pieces


def language_of(text: str) -> str:
    """"ja", "ko", "zh" or "en": the script of ``text`` (kana before Han, since Japanese mixes both)."""
    if _KANA.search(text):
        return "ja"
    if _HANGUL.search(text):
        return "ko"
    if _HAN.search(text):
        return "zh"
    return "en"


def check_speed(speed: float) -> float:
    """``speed`` as a float, or EngineError when it is outside ``SPEEDS``."""
    low, high = SPEEDS
    if not low <= float(speed) <= high:
        raise EngineError(f"speed {speed} is out of range: use {low:g} to {high:g} (1 is normal)")
    return float(speed)
