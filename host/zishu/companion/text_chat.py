"""A conversation by text, as ``zishu chat`` shows it: a reply as the text each new sentence adds
(joined as it is spoken), and the memory commands a user types (``/memories``, ``/forget N``,
``/remember TEXT``), with memories numbered the way ``/memories`` lists them.
"""

from __future__ import annotations

from collections.abc import Iterator

from zishu.errors import UsageError

from .memory import MemoryStore
from .pipeline import Conversation
from .records import Memory
from .stream_text import join_spoken


class TextReply:
    """One reply to ``text``. Iterating gives the conversation's events, each ``sentence`` turned
    into ``{"type": "text", "text": …}``: what that sentence adds to ``said``, the text printed so
    far. A sentence counts as shown once the caller asks for the next event, so ``interrupt()``
    (on Ctrl-C) keeps exactly the sentences the user saw."""

    def __init__(self, talk: Conversation, text: str) -> None:
        self.talk, self.text = talk, text
        self.said = ""
        self.shown = 0

    def __iter__(self) -> Iterator[dict]:
        for event in self.talk.reply(self.text):
            if event["type"] != "sentence":
                yield event
                continue
            longer = join_spoken([self.said, event["text"]])
            yield {"type": "text", "text": longer[len(self.said):]}
            self.said, self.shown = longer, self.shown + 1

    def interrupt(self) -> None:
        """Stop the reply, keeping (in the conversation's history) only what was shown."""
        self.talk.interrupt(self.shown)


def forget_numbered(memory: MemoryStore, character: str, number: str) -> Memory:
    """Forget memory ``number`` (1-based, as ``memory.memories(character)`` lists them)."""
    rows = memory.memories(character)
    if not number.strip().isdigit() or not 1 <= int(number) <= len(rows):
        raise UsageError(f"/forget takes a memory number from /memories (1–{len(rows)}), not {number!r}")
    return memory.forget(rows[int(number) - 1].id)
