"""SenseVoice's rich transcription: ``<|zh|><|NEUTRAL|><|Speech|><|woitn|>text`` into a Transcript
(language, emotion, audio event, text), and the Transcripts of several pieces of audio into one.

The tag sets are SenseVoiceSmall's. Its "don't know" tags (``nospeech``, ``EMO_UNKNOWN``,
``Event_UNK``) become None; the text-normalisation tag (``withitn``/``woitn``) and any tag not
known here are dropped from the text.
"""

from __future__ import annotations

import re
from collections import Counter

from zishu.engines import Transcript

from .audio import join_text

LANGUAGES = frozenset({"zh", "en", "yue", "ja", "ko"})
EMOTIONS = frozenset({"HAPPY", "SAD", "ANGRY", "NEUTRAL", "FEARFUL", "DISGUSTED", "SURPRISED"})
EVENTS = frozenset({"Speech", "BGM", "Applause", "Laughter", "Cry", "Sneeze", "Breath", "Cough"})
_TAG = re.compile(r"<\|([^|<>]*)\|>")


def parse_rich(text: str) -> Transcript:
    """One piece of SenseVoice output; the first tag of each kind counts."""
    found: dict[str, str | None] = {"language": None, "emotion": None, "event": None}
    for name in _TAG.findall(text):
        kind = ("language" if name in LANGUAGES else "emotion" if name in EMOTIONS
                else "event" if name in EVENTS else None)
        if kind and found[kind] is None:
            found[kind] = name
    return Transcript(text=" ".join(_TAG.sub("", text).split()),
                      language=found["language"], emotion=found["emotion"], event=found["event"])


def merged(pieces: list[Transcript]) -> Transcript:
    """The pieces' texts joined in order; of each tag, the value most pieces carry (the first on a tie)."""
    text = ""
    for piece in pieces:
        text = join_text(text, piece.text)

    def most(field: str) -> str | None:
        values = Counter(getattr(p, field) for p in pieces if getattr(p, field) is not None)
        return values.most_common(1)[0][0] if values else None

    return Transcript(text=text, language=most("language"), emotion=most("emotion"), event=most("event"))
