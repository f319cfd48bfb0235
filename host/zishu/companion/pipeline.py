"""One turn of a conversation, streamed: the brain's prompt → the LLM's reply → speakable sentences
and emotion tags → speech per sentence, in order, overlapped with generation.

``Conversation.reply(text)`` yields JSON-ready events as they happen (the WebSocket, the terminal
chat and the tests all read the same stream):

    {"type": "turn", "memories": [...], "lore": [...]}       what the brain injected
    {"type": "token", "text": "..."}                          raw reply text as generated
    {"type": "emotion", "name", "tag", "expression", "motion"}  at its place among the sentences
    {"type": "sentence", "index": i, "text": "..."}           a piece handed to speech
    {"type": "audio", "index": i, "pcm": bytes, "sample_rate"}  that piece's audio, chunk by chunk
    {"type": "done", "text", "interrupted", "latency": {...}}

Generation runs in one thread and speech in another, joined by a queue: sentence 2 is generated
while sentence 1 is spoken. ``stop()`` (barge-in) ends both at their next piece; ``played(n)``
tells the conversation how many sentences the listener actually heard, so the history keeps only
those, followed by an interruption marker.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from zishu.engines.kinds import ChatOptions

from .brain import Character, build_turn
from .memory import facts_worth_keeping
from .stream_text import Emotion, Sentence, join_spoken, speakable

INTERRUPTED = "[interrupted]"
HISTORY_MESSAGES = 20  # short-term history: the last ten exchanges
_DONE = object()


@dataclass
class Conversation:
    """A character talking with one user; ``llm`` is a chat handle, ``tts`` a speech handle or None
    (text only), ``memory`` a MemoryStore or None (history kept in this object only)."""

    character: Character
    llm: object
    tts: object | None = None
    memory: object | None = None
    options: ChatOptions = field(default_factory=lambda: ChatOptions(max_tokens=256))
    user_name: str = "User"
    history: list[dict] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _played: int | None = field(default=None, repr=False)

    def stop(self) -> None:
        """Barge-in: the user started speaking; generation and speech stop at their next piece."""
        self._stop.set()

    def played(self, sentences: int) -> None:
        """How many of this reply's sentences reached the listener before playback stopped."""
        self._played = sentences

    def reply(self, user_text: str, *, heard_at: float | None = None) -> Iterator[dict]:
        """Answer ``user_text``. ``heard_at`` (perf_counter) is when the user stopped speaking, so
        the latency record starts there; it defaults to now."""
        self._stop.clear()
        self._played = None
        marks = {"start": heard_at if heard_at is not None else time.perf_counter()}
        recalled = self._recall(user_text)
        turn = build_turn(self.character, user_text, self._history(), recalled, self.user_name)
        yield {"type": "turn", "memories": recalled, "lore": [e.name or e.keys[0] for e in turn.lore]}

        events: queue.Queue = queue.Queue()
        sentences: queue.Queue = queue.Queue()
        spoken: list[str] = []
        failure: list[BaseException] = []

        def generate() -> None:
            def pieces():
                for piece in self.llm.chat(turn.messages, self.options):
                    if self._stop.is_set():
                        return
                    marks.setdefault("first_token", time.perf_counter())
                    events.put({"type": "token", "text": piece})
                    yield piece

            try:
                for item in speakable(pieces(), self.character.spec.emotions):
                    if self._stop.is_set():
                        break
                    sentences.put(item)
            except BaseException as e:  # noqa: BLE001 - handed to the reader, which raises it
                failure.append(e)
            finally:
                marks["generated"] = time.perf_counter()
                sentences.put(_DONE)

        def speak() -> None:
            try:
                while (item := sentences.get()) is not _DONE:
                    if self._stop.is_set():
                        continue  # drain, so generation never blocks on a full queue
                    if isinstance(item, Emotion):
                        events.put(_emotion_event(item))
                        continue
                    self._say(item, len(spoken), events, marks)
                    spoken.append(item.text)
            except BaseException as e:  # noqa: BLE001
                failure.append(e)
            finally:
                events.put(_DONE)

        threads = [threading.Thread(target=generate, daemon=True), threading.Thread(target=speak, daemon=True)]
        for thread in threads:
            thread.start()
        finished = False
        try:
            while (event := events.get()) is not _DONE:
                yield event
            finished = True
        finally:
            if not finished:  # the reader went away (closed the stream): stop both threads
                self._stop.set()
            for thread in threads:
                thread.join()
        if failure:
            raise failure[0]
        interrupted = self._stop.is_set()
        heard = spoken if self._played is None else spoken[: self._played]
        text = join_spoken(heard) + (f" {INTERRUPTED}" if interrupted else "")
        latency = _latency(marks)
        self._remember(user_text, text.strip(), interrupted, latency)
        yield {"type": "done", "text": text.strip(), "interrupted": interrupted, "latency": latency}

    def _say(self, sentence: Sentence, index: int, events: queue.Queue, marks: dict) -> None:
        marks.setdefault("first_sentence", time.perf_counter())
        events.put({"type": "sentence", "index": index, "text": sentence.text,
                    "emotion": sentence.emotion.name if sentence.emotion else None})
        if self.tts is None:
            return
        emotion = sentence.emotion.tag if sentence.emotion else None
        for chunk in self.tts.speak(sentence.text, emotion=emotion):
            if self._stop.is_set():
                return
            marks.setdefault("first_audio", time.perf_counter())
            events.put({"type": "audio", "index": index, "pcm": chunk.pcm, "sample_rate": chunk.sample_rate})

    def _history(self) -> list[dict]:
        if self.memory is not None:
            return [{"role": t.role, "content": t.text} for t in self.memory.history(self.character.id, HISTORY_MESSAGES)]
        return self.history[-HISTORY_MESSAGES:]

    def _recall(self, user_text: str) -> list[str]:
        if self.memory is None:
            return []
        return [m.text for m in self.memory.recall(self.character.id, user_text)]

    def _remember(self, user_text: str, reply: str, interrupted: bool, latency: dict) -> None:
        if self.memory is None:
            self.history += [{"role": "user", "content": user_text}, {"role": "assistant", "content": reply}]
            return
        turn = self.memory.record_turn(self.character.id, "user", user_text)
        answer = self.memory.record_turn(self.character.id, "assistant", reply, interrupted=interrupted)
        answer.latency = latency
        answer.save()
        for fact in facts_worth_keeping(user_text):
            self.memory.remember(self.character.id, fact, turn=turn)


def _emotion_event(emotion: Emotion) -> dict:
    target = emotion.target
    return {"type": "emotion", "name": emotion.name, "tag": emotion.tag,
            "expression": getattr(target, "expression", None), "motion": getattr(target, "motion", None)}


def _latency(marks: dict) -> dict:
    """Milliseconds from the end of the user's speech to each stage that happened."""
    start = marks["start"]
    return {stage: round((marks[stage] - start) * 1000, 1)
            for stage in ("first_token", "first_sentence", "first_audio", "generated") if stage in marks}
