"""The LLM's streamed reply, turned into speakable sentences and emotion events.

This module owns three things, all pure Python and independent of any model:

``SentenceSplitter``
    Cuts streamed text into pieces a TTS engine can speak as soon as they are complete.
    The first piece of a reply is cut short at its first comma-like mark (``，,、；;：:``) once it
    holds ``first_min_chars`` letters or digits (a CJK or kana character counts two: about a
    syllable), so speech can start early (``好的，``, ``Well,``; not ``嗯，`` or ``Oh,``); after that
    pieces end at sentence ends (``。！？!?…``, ``...``, a newline, an English ``.`` followed by a
    space, the end or a CJK character, but not in ``3.14``, after ``Mr.``/``e.g.``/an initial, or
    in a list number ``1.`` at the start of a line). Closing quotes and brackets right after an end
    mark stay with the sentence (``“好的。”``, ``「はい。」``). A run longer than ``max_chars``
    without an end mark is cut at its last comma, else its last space, else hard at ``max_chars``.
    Pieces are stripped; whitespace-only pieces are never emitted; a piece with nothing speakable
    in it (``……``) is kept and spoken with the next one, or dropped at the end of the reply.

``EmotionTags``
    Takes emotion tags out of the streamed text: ``[开心]``, ``[happy]``, ``【开心】``, ``［happy］``
    and, unless ``parentheses=False``, ``(happy)`` / ``（开心）``. Parentheses are on by default
    because character LLMs often write emotions as stage directions (``（害羞）``, ``（笑）``); left in
    the text the TTS would read them aloud, and only words that *are* known emotions are taken, so
    ordinary parenthesised text (``(see above)``, ``（注）``) stays text. A bracketed word is a tag when
    it is a key of the character's emotion map or one of the built-in emotions (``BUILTIN_EMOTIONS``,
    Chinese, English and Japanese words → canonical names such as ``happy``, ``sad``, ``coy``);
    matching ignores case, surrounding spaces and full-width forms. A tag split across pieces is
    handled: only text that can still become a known tag (at most ``max_tag_chars`` inside the
    brackets) is held back, so ``[1]`` or a lone ``[`` is released as soon as it cannot be a tag.

``speakable``
    Both together: yields ``Emotion`` and ``Sentence`` items in the order of the text. The rule the
    pipeline can rely on: ``sentence.emotion`` is always the last ``Emotion`` yielded before that
    sentence (``None`` before the first), i.e. the emotion in force where the sentence starts. So
    the pipeline puts both kinds into its one ordered playback queue: an ``Emotion`` becomes an
    expression event at that point of playback, a ``Sentence`` is spoken with its ``emotion``. A tag
    inside a sentence is yielded after that sentence (it governs the next one); tags at the end of
    a reply, or a reply that is only a tag, still come out as ``Emotion`` items.

Event text is for speaking; ``join_spoken`` rebuilds readable text from spoken pieces (e.g. for
the history after barge-in).
"""

from __future__ import annotations

import unicodedata
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from zishu.errors import UsageError

__all__ = [
    "BUILTIN_EMOTIONS",
    "Emotion",
    "EmotionTags",
    "Sentence",
    "SentenceSplitter",
    "Text",
    "canonical_emotion",
    "join_spoken",
    "speakable",
]

# ---- character classes ----------------------------------------------------------------------

_ENDS = frozenset("。！？!?…‼⁇⁈⁉｡︒﹗﹖")  # always end a sentence (with what follows absorbed)
_DOTS = frozenset(".．")  # a full stop only by the English rules; two or more are an ellipsis
_NEWLINES = frozenset("\n\r\u2028\u2029\x85")
_CLOSERS = frozenset("\"'”’」』）)]】》〉〕〗〙〛］｝}»›")  # stay with the sentence they close
_ABSORB = _ENDS | _DOTS | _NEWLINES | _CLOSERS
_COMMAS_WIDE = frozenset("，、；：﹐﹑﹔﹕､")  # always a pause
_COMMAS_ASCII = frozenset(",;:")  # a pause only before a space/end/non-ASCII (not 1,000 or 10:30)
_ABBREVIATIONS = frozenset(
    ["mr", "mrs", "ms", "mx", "dr", "prof", "sr", "jr", "st", "mt", "vs", "cf", "fig", "figs", "approx", "dept",
     "e.g", "i.e", "a.k.a"]
)


def _speakable(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def _weight(ch: str) -> int:
    """How much a character counts towards ``first_min_chars``: a CJK/kana character is about a
    syllable, so it counts two; a letter or digit one; anything else nothing."""
    if not ch.isalnum():
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _ascii_pause_before(nxt: str | None) -> bool:
    """An ASCII comma/colon/semicolon is a pause when what follows is a space, the end or not ASCII."""
    return nxt is None or nxt.isspace() or not nxt.isascii()


# ---- sentences ------------------------------------------------------------------------------


class _Pending(Exception):
    """Internal: deciding this cut needs text that has not arrived yet."""


class SentenceSplitter:
    """Cuts a streamed reply into speakable pieces; see the module docstring for the rules.

    ``feed(piece)`` returns the pieces this text completed, ``flush()`` the rest at the end of the
    reply (and makes the splitter ready for the next reply). Cuts never depend on how the text was
    split into pieces: feeding a reply in any pieces gives the same list as feeding it at once.
    """

    def __init__(self, *, first_min_chars: int = 4, max_chars: int = 80):
        for name, value in (("first_min_chars", first_min_chars), ("max_chars", max_chars)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise UsageError(f"SentenceSplitter: {name} must be a whole number, got {value!r}")
        if first_min_chars < 1:
            raise UsageError(f"SentenceSplitter: first_min_chars must be at least 1, got {first_min_chars}")
        if max_chars < 8:
            raise UsageError(f"SentenceSplitter: max_chars must be at least 8, got {max_chars}")
        self.first_min_chars = first_min_chars
        self.max_chars = max_chars
        self._reset()

    def _reset(self) -> None:
        self._buf = ""
        self._offset = 0  # position of _buf[0] in the whole reply's text
        self._first = True  # no piece emitted yet in this reply

    def feed(self, piece: str) -> list[str]:
        return [text for _, text in self._feed(piece)]

    def flush(self) -> list[str]:
        return [text for _, text in self._flush()]

    # The pipeline-facing variants carry each piece's start: the position in the reply's text of
    # its first non-space character (used by ``speakable`` to order emotions and sentences).

    def _feed(self, piece: str) -> list[tuple[int, str]]:
        if not isinstance(piece, str):
            raise UsageError(f"SentenceSplitter.feed takes text (str), got {type(piece).__name__}")
        self._buf += piece
        return self._cut(final=False)

    def _flush(self) -> list[tuple[int, str]]:
        out = self._cut(final=True)
        if _speakable(self._buf):
            out.append(self._emit(len(self._buf)))
        self._reset()
        return out

    def _next_start(self) -> int | None:
        """Where the next piece will start (its first non-space character), or None when nothing
        but spaces is waiting, so every later piece starts after the text fed so far."""
        rest = self._buf.lstrip()
        return self._offset + len(self._buf) - len(rest) if rest else None

    def _emit(self, cut: int) -> tuple[int, str]:
        chunk = self._buf[:cut]
        start = self._offset + len(chunk) - len(chunk.lstrip())
        self._buf = self._buf[cut:]
        self._offset += cut
        self._first = False
        return start, chunk.strip()

    def _cut(self, *, final: bool) -> list[tuple[int, str]]:
        out: list[tuple[int, str]] = []
        while self._buf:
            cut = self._next_cut(final)
            if cut is None:
                break
            if not self._buf[:cut].strip():  # only spaces: drop them, they start nothing
                self._buf = self._buf[cut:]
                self._offset += cut
                continue
            out.append(self._emit(cut))
        return out

    def _next_cut(self, final: bool) -> int | None:
        """Where the next piece ends, or None when that is not known yet (or the text is done)."""
        buf, n = self._buf, len(self._buf)
        content = 0  # weight of the letters/digits/CJK before i
        i = 0
        try:
            while i < min(n, self.max_chars + 1):  # an end mark just past the limit still counts
                cut = self._boundary(i, content, final)
                if cut is not None and (_speakable(buf[:cut]) or not buf[:cut].strip()):
                    return cut
                if cut is not None:  # punctuation only ("……"): speak it with the next piece
                    i = cut
                    continue
                content += _weight(buf[i])
                i += 1
        except _Pending:
            return None
        if n > self.max_chars:
            return self._long_cut()
        return None

    def _long_cut(self) -> int:
        buf, m = self._buf, self.max_chars
        for j in range(m - 1, 0, -1):
            ch = buf[j]
            pause = ch in _COMMAS_WIDE or (ch in _COMMAS_ASCII and _ascii_pause_before(buf[j + 1]))
            if pause and _speakable(buf[: j + 1]):
                return j + 1
        for j in range(m - 1, 0, -1):
            if buf[j].isspace() and _speakable(buf[:j]):
                return j
        return m

    def _absorb(self, j: int, final: bool) -> int:
        buf = self._buf
        while j < len(buf) and buf[j] in _ABSORB:
            j += 1
        if j == len(buf) and not final:
            raise _Pending
        return j

    def _boundary(self, i: int, content: int, final: bool) -> int | None:
        """If a piece ends at the mark at ``i``: the index after it (closers absorbed), else None."""
        buf, n = self._buf, len(self._buf)
        ch = buf[i]
        if ch in _ENDS or ch in _NEWLINES:
            return self._absorb(i + 1, final)
        if ch in _DOTS:
            if i > 0 and buf[i - 1] in _DOTS:
                return None  # inside a run judged at its first dot
            k = i
            while k < n and buf[k] in _DOTS:
                k += 1
            if k == n and not final:
                raise _Pending
            if k - i >= 2:  # "..": an ellipsis
                return self._absorb(k, final)
            if self._dot_is_not_an_end(i):
                return None
            j = self._absorb(k, final)
            if j == n or any(c in _ENDS for c in buf[k:j]):
                return j
            nxt = buf[j]
            if nxt.isspace() or (not nxt.isascii() and nxt.isalnum()):
                return j
            return None  # 3.14, file.txt, example.com
        if self._first and content >= self.first_min_chars:
            if ch in _COMMAS_WIDE:
                return i + 1
            if ch in _COMMAS_ASCII:
                if i + 1 == n and not final:
                    raise _Pending
                return i + 1 if _ascii_pause_before(buf[i + 1] if i + 1 < n else None) else None
        return None

    def _dot_is_not_an_end(self, i: int) -> bool:
        """A single '.' after an abbreviation, an initial or a list number at the start of a line."""
        buf = self._buf
        w = i
        while w > 0 and (buf[w - 1].isascii() and (buf[w - 1].isalnum() or buf[w - 1] == ".")):
            w -= 1
        word = buf[w:i]
        if word.lower() in _ABBREVIATIONS:
            return True
        if len(word) == 1 and word.isalpha() and word.isupper() and word != "I":
            return True  # J. K. Rowling
        if word.isdigit() and len(word) <= 3:
            line_start = max(buf.rfind(c, 0, w) for c in _NEWLINES) + 1
            return not buf[line_start:w].strip()  # "1. First item"
        return False


def join_spoken(parts: Iterable[str]) -> str:
    """Spoken pieces back into one text: a space between two pieces unless one side is CJK."""
    out = ""
    for part in parts:
        if not part:
            continue
        if out and not (_wide(out[-1]) or _wide(part[0])):
            out += " "
        out += part
    return out


def _wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


# ---- emotion tags ---------------------------------------------------------------------------

_CANONICAL: dict[str, tuple[str, ...]] = {
    "happy": ("happy", "happiness", "joy", "joyful", "glad", "cheerful", "smile", "smiling", "laugh",
              "laughing", "开心", "高兴", "快乐", "愉快", "喜悦", "欢喜", "开朗", "微笑", "笑", "大笑",
              "嬉しい", "うれしい", "喜び", "笑顔"),
    "excited": ("excited", "excitement", "thrilled", "兴奋", "激动", "興奮", "ワクワク", "わくわく"),
    "angry": ("angry", "anger", "mad", "annoyed", "furious", "生气", "愤怒", "恼火", "气愤", "发火", "怒",
              "怒り", "怒る"),
    "sad": ("sad", "sadness", "unhappy", "sorrow", "crying", "cry", "悲伤", "难过", "伤心", "哭", "哭泣",
            "失落", "悲しい", "悲しみ", "泣く"),
    "surprised": ("surprised", "surprise", "shocked", "astonished", "amazed", "惊讶", "吃惊", "震惊",
                  "惊奇", "惊喜", "驚き", "びっくり"),
    "coy": ("coy", "pouty", "pout", "playful", "撒娇", "卖萌", "甘え", "甘える"),
    "neutral": ("neutral", "calm", "normal", "平静", "平淡", "冷静", "淡定", "中性", "正常", "普通",
                "落ち着き"),
    "shy": ("shy", "embarrassed", "blush", "blushing", "bashful", "害羞", "羞涩", "脸红", "不好意思",
            "恥ずかしい", "照れ", "照れる"),
    "afraid": ("afraid", "scared", "fear", "fearful", "frightened", "害怕", "恐惧", "惊恐", "怖い",
               "恐怖"),
    "worried": ("worried", "anxious", "nervous", "担心", "忧虑", "焦虑", "紧张", "心配", "不安"),
    "disgusted": ("disgusted", "disgust", "厌恶", "嫌弃", "恶心", "嫌悪"),
    "confused": ("confused", "puzzled", "困惑", "疑惑", "不解", "迷茫", "戸惑い"),
    "thinking": ("thinking", "thoughtful", "pondering", "思考", "沉思", "考え中"),
    "proud": ("proud", "smug", "得意", "骄傲", "自豪", "ドヤ顔"),
    "sleepy": ("sleepy", "tired", "drowsy", "困倦", "犯困", "疲惫", "眠い"),
    "love": ("love", "loving", "affectionate", "爱慕", "心动", "喜欢", "大好き"),
}

BUILTIN_EMOTIONS: dict[str, str] = {
    word: name for name, words in _CANONICAL.items() for word in (name, *words)
}
"""Every built-in emotion word (normalised: NFKC, lower case) → its canonical name."""

_SQUARE_OPEN, _SQUARE_CLOSE = frozenset("[【［"), frozenset("]】］")
_ROUND_OPEN, _ROUND_CLOSE = frozenset("(（"), frozenset(")）")
_BRACKETS = _SQUARE_OPEN | _SQUARE_CLOSE | _ROUND_OPEN | _ROUND_CLOSE


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().casefold()


def canonical_emotion(tag: str) -> str | None:
    """The canonical name of a built-in emotion word (``'开心'`` → ``'happy'``), else None."""
    return BUILTIN_EMOTIONS.get(_norm(tag))


@dataclass(frozen=True)
class Text:
    """Reply text with the tags taken out."""

    text: str


@dataclass(frozen=True)
class Emotion:
    """An emotion tag met in the reply.

    ``name`` is the canonical name (``happy``; for a tag only the character's map knows, the tag in
    lower case), ``tag`` the tag as written inside the brackets (trimmed), ``target`` the character's
    emotion-map value for it (e.g. an ``EmotionTarget``), or None when the map has none.
    """

    name: str
    tag: str
    target: Any = None


class EmotionTags:
    """Takes emotion tags out of a streamed reply: ``feed(piece)`` / ``flush()`` → ``Text``/``Emotion``.

    ``emotion_map`` maps tags as the LLM writes them to the character's targets (the manifest's
    ``emotions``; keys may be written with their brackets, ``"[开心]"``). The target of a tag is
    looked up by the tag itself, then by its canonical name, then through any map key with the same
    canonical name (so ``[happy]`` finds a map written as ``高兴``). Adjacent text inside one
    ``feed`` comes out as one ``Text``; how text is divided between calls depends on the pieces,
    the tags and their order never do.
    """

    def __init__(
        self,
        emotion_map: Mapping[str, Any] | None = None,
        *,
        parentheses: bool = True,
        max_tag_chars: int = 32,
    ):
        if isinstance(max_tag_chars, bool) or not isinstance(max_tag_chars, int) or max_tag_chars < 1:
            raise UsageError(
                f"EmotionTags: max_tag_chars must be a whole number of at least 1, got {max_tag_chars!r}"
            )
        if emotion_map is None:
            emotion_map = {}
        if not isinstance(emotion_map, Mapping):
            raise UsageError(
                "EmotionTags: emotion_map must be a mapping of tag → target, "
                f"got {type(emotion_map).__name__}"
            )
        self.max_tag_chars = max_tag_chars
        self._open = _SQUARE_OPEN | (_ROUND_OPEN if parentheses else frozenset())
        self._map: dict[str, tuple[str, Any]] = {}  # normalised tag → (key as written, target)
        for key, target in emotion_map.items():
            if not isinstance(key, str):
                raise UsageError(f"emotion map: tag {key!r} is not text")
            inner = key.strip()
            if len(inner) >= 2 and inner[0] in _SQUARE_OPEN | _ROUND_OPEN and inner[-1] in _BRACKETS:
                inner = inner[1:-1]
            n = _norm(inner)
            if not n:
                raise UsageError(f"emotion map: tag {key!r} is empty")
            if any(c in _BRACKETS for c in n) or any(c in _NEWLINES for c in n):
                raise UsageError(f"emotion map: tag {key!r} contains a bracket or a line break")
            if len(inner) > max_tag_chars:
                raise UsageError(f"emotion map: tag {key!r} is longer than {max_tag_chars} characters")
            if n in self._map:
                raise UsageError(
                    f"emotion map: tags {self._map[n][0]!r} and {key!r} are the same tag "
                    "(tags match ignoring case and spaces)"
                )
            self._map[n] = (key, target)
        self._known = frozenset(self._map) | frozenset(BUILTIN_EMOTIONS)
        self._prefixes = frozenset(t[:k] for t in self._known for k in range(1, len(t) + 1))
        self._held = ""  # an opening bracket and what follows it, while it may still be a tag

    def feed(self, piece: str) -> list[Text | Emotion]:
        if not isinstance(piece, str):
            raise UsageError(f"EmotionTags.feed takes text (str), got {type(piece).__name__}")
        events: list[Text | Emotion] = []
        text: list[str] = []
        for ch in piece:
            if self._held:
                if ch in (_SQUARE_CLOSE if self._held[0] in _SQUARE_OPEN else _ROUND_CLOSE):
                    emotion = self.lookup(self._held[1:])
                    if emotion is None:
                        text.append(self._held + ch)
                    else:
                        if text:
                            events.append(Text("".join(text)))
                            text = []
                        events.append(emotion)
                    self._held = ""
                    continue
                if self._may_become_tag(self._held[1:] + ch):
                    self._held += ch
                    continue
                text.append(self._held)  # it was no tag; ch is looked at afresh below
                self._held = ""
            if ch in self._open:
                self._held = ch
            else:
                text.append(ch)
        if text:
            events.append(Text("".join(text)))
        return events

    def flush(self, cut: bool = False) -> list[Text | Emotion]:
        """What is held back at the reply's end: a possible tag is text, unless the reply was ``cut``
        (at max_tokens), where it is a tag the model did not finish and is dropped."""
        held, self._held = self._held, ""
        return [Text(held)] if held and not cut else []

    def lookup(self, tag: str) -> Emotion | None:
        """The Emotion for a tag's inner text (``'开心'``, ``' Happy '``), or None if it is no emotion."""
        n = _norm(tag)
        if n not in self._known:
            return None
        name = BUILTIN_EMOTIONS.get(n, n)
        hit = self._map.get(n) or self._map.get(name)
        if hit is None:
            hit = next((v for k, v in self._map.items() if BUILTIN_EMOTIONS.get(k) == name), None)
        return Emotion(name=name, tag=tag.strip(), target=hit[1] if hit else None)

    def _may_become_tag(self, inner: str) -> bool:
        if len(inner) > self.max_tag_chars:
            return False
        n = unicodedata.normalize("NFKC", inner).lstrip().casefold()
        return not n or n in self._prefixes or n.rstrip() in self._known


def shown_greeting(text: str, emotion_map: Mapping[str, Any] | None = None) -> tuple[str, Emotion | None]:
    """A greeting as people see it: its text without emotion tags, and the first emotion it carries
    (``"[开心] 你好"`` → ``("你好", Emotion("happy", "开心"))``), so windows show the emotion, not the tag."""
    try:
        tags = EmotionTags(emotion_map)
    except UsageError:  # a broken map still lets the built-in tags be taken out
        tags = EmotionTags()
    events = [*tags.feed(text), *tags.flush()]
    said = "".join(e.text for e in events if isinstance(e, Text))
    first = next((e for e in events if isinstance(e, Emotion)), None)
    return said.strip(), first


# ---- both together --------------------------------------------------------------------------


@dataclass(frozen=True)
class Sentence:
    """A piece to speak, and the emotion in force where it starts (the last Emotion before it)."""

    text: str
    emotion: Emotion | None = None


def speakable(
    reply_pieces: Iterable[str],
    emotion_map: Mapping[str, Any] | None = None,
    *,
    first_min_chars: int = 4,
    max_chars: int = 80,
    parentheses: bool = True,
    cut: Callable[[], bool] | None = None,
) -> Iterator[Sentence | Emotion]:
    """The reply's ``Emotion`` and ``Sentence`` items, in text order, as soon as each is known.
    ``cut``, asked once the pieces end: whether the reply was cut at max_tokens, so that a tag
    it was writing is dropped rather than spoken.

    An Emotion is yielded before every sentence that starts at or after its tag and after every
    sentence that starts before it; ``Sentence.emotion`` is the last Emotion yielded before it.
    """
    tags = EmotionTags(emotion_map, parentheses=parentheses)
    splitter = SentenceSplitter(first_min_chars=first_min_chars, max_chars=max_chars)
    waiting: deque[tuple[int, Emotion]] = deque()  # tags met while a sentence before them is open
    current: Emotion | None = None
    fed = 0  # characters of tag-free text given to the splitter

    def release(spans: list[tuple[int, str]]) -> Iterator[Sentence | Emotion]:
        nonlocal current
        for start, text in spans:
            while waiting and waiting[0][0] <= start:
                current = waiting.popleft()[1]
                yield current
            yield Sentence(text, current)
        next_start = splitter._next_start()
        while waiting and (next_start is None or waiting[0][0] <= next_start):
            current = waiting.popleft()[1]
            yield current

    def take(events: list[Text | Emotion]) -> Iterator[Sentence | Emotion]:
        nonlocal fed
        for event in events:
            if isinstance(event, Text):
                fed += len(event.text)
                yield from release(splitter._feed(event.text))
            else:
                waiting.append((fed, event))
                yield from release([])

    for piece in reply_pieces:
        yield from take(tags.feed(piece))
    yield from take(tags.flush(cut=cut is not None and cut()))
    spans = splitter._flush()  # leaves the splitter empty, so every waiting tag comes out
    yield from release(spans)
