"""How much a companion takes in and how long it may work on it: the limits every caller applies
(the window's ``say``, ``/v1/chat/completions`` and ``zishu chat``).

``MESSAGE_CHARS`` (4,000 characters, at most 16 KiB of UTF-8) bounds one message: about two pages,
far more than anyone types to a character, and already more than a 4,096-token context holds beside
a persona for most tokenizers (CJK text takes about a token a character). A longer message used to
keep llama.cpp's tokenizer, whose time grows faster than the text, busy for minutes; past the limit
it is refused with the limit in the message, and a message within it that the context cannot hold
is cut to fit, and the user told (``brain.build_turn``). ``CONVERSATION_CHARS`` bounds the whole of
a ``/v1`` request's messages (sixteen messages at the limit; the history is cut to the context
anyway). ``TURN_SECONDS`` is the default time budget of a turn (the ``companion_turn_seconds``
setting): waiting for a busy model and generating both end when it runs out.
"""

from __future__ import annotations

from zishu.errors import UsageError

MESSAGE_CHARS = 4_000
CONVERSATION_CHARS = 64_000
TURN_SECONDS = 120


def checked_message(text: str, what: str = "a message") -> str:
    """``text`` when it is within ``MESSAGE_CHARS``, else a UsageError saying the limit."""
    if len(text) > MESSAGE_CHARS:
        raise UsageError(f"{what} is {len(text):,} characters long; the limit is {MESSAGE_CHARS:,} characters "
                         "(shorten it, or send it in parts)")
    return text


def checked_conversation(texts: list[str]) -> None:
    """Each text within ``MESSAGE_CHARS`` and all of them within ``CONVERSATION_CHARS``, else a
    UsageError naming the first message over the limit or the total."""
    for i, text in enumerate(texts):
        checked_message(text, f"messages[{i}]")
    total = sum(len(t) for t in texts)
    if total > CONVERSATION_CHARS:
        raise UsageError(f"the messages are {total:,} characters long together; the limit is "
                         f"{CONVERSATION_CHARS:,} characters (send fewer or shorter messages)")
