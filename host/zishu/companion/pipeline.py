"""One turn of a conversation, streamed: the brain's prompt → the LLM's reply → speakable sentences
and emotion tags → speech per sentence, in order, overlapped with generation.

``Conversation.reply(text)`` yields JSON-ready events as they happen (the WebSocket, the terminal
chat and the tests all read the same stream):

    {"type": "turn", "memories": [{"id", "text", ...}], "lore": [...]}   what the brain injected
                                                              (with "regenerating": the reply's id
                                                              when answering again)
    {"type": "token", "text": "..."}                          raw reply text as generated
    {"type": "emotion", "name", "tag", "expression", "motion"}  at its place among the sentences
    {"type": "sentence", "index": i, "text": "..."}           a piece handed to speech
    {"type": "audio", "index": i, "pcm": bytes, "sample_rate"}  that piece's audio, chunk by chunk
    {"type": "note", "code", "message"}                      the user's message was cut to fit the
                                                              context (MESSAGE_CUT), or the reply
                                                              stopped at the turn's time budget (TURN_TIME)
    {"type": "done", "text", "interrupted", "latency": {...}, "finish_reason", "turn", "usage"}
                                                              ``text`` may be empty (a reply of only
                                                              a tag, or cut at max_tokens); it is stored
                                                              as said. ``finish_reason`` is "length"
                                                              when the model was cut at max_tokens,
                                                              else "stop"; ``turn`` the stored reply's id;
                                                              ``usage`` {"prompt_tokens", "completion_tokens"}
                                                              counted with the model's tokenizer (the prompt's
                                                              message text plus one chat-template frame per
                                                              message, the reply's raw text with its tags)

A message over ``limits.MESSAGE_CHARS`` is refused (UsageError). A turn has ``turn_seconds`` (the
``companion_turn_seconds`` setting): the LLM waits for a busy model and generates only until then,
and stops at its next piece when the conversation is stopped (the session closed, the reader left).
A conversation with ``remember=False`` still recalls memories but writes nothing to the store (the
``/v1`` memory opt-out): the exchange stays in its own ``history`` only.

Generation runs in one thread and speech in another, joined by a queue: sentence 2 is generated
while sentence 1 is spoken. ``interrupt(n)`` (barge-in: the listener heard ``n`` sentences) ends
both at their next piece, and the history keeps only those sentences, followed by an interruption
marker; speech is usually made faster than it is played, so when the user cuts in after the reply
has finished, the stored reply is cut back the same way. ``playback_started()`` adds the moment
the window began playing to the turn's latency.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from zishu.engines.kinds import ChatModel, ChatOptions, SpeechSynthesizer, token_counter
from zishu.errors import UsageError

from . import chats
from .brain import MESSAGE_FRAME, Character, PromptBudget, build_turn
from .limits import TURN_SECONDS, checked_message
from .memory import MemoryStore, facts_worth_keeping
from .records import Turn
from .stream_text import Emotion, Sentence, join_spoken, speakable

INTERRUPTED = "[interrupted]"
# the latency record's stages, in the order a voice turn passes them (ms from the end of speech)
STAGES = ("endpoint", "transcript", "first_token", "first_sentence", "first_audio", "generated", "playback")
HISTORY_MESSAGES = 20  # short-term history: the last ten exchanges
_DONE = object()


@dataclass
class Conversation:
    """A character talking with one user; ``llm`` is a chat handle, ``tts`` a speech handle or None
    (text only), ``memory`` a MemoryStore or None (history kept in this object only)."""

    character: Character
    llm: ChatModel
    tts: SpeechSynthesizer | None = None
    memory: MemoryStore | None = None
    options: ChatOptions = field(default_factory=lambda: ChatOptions(max_tokens=256))
    user_name: str = "User"
    history: list[dict] = field(default_factory=list)
    turn_seconds: float = TURN_SECONDS
    chat: int | None = None  # the chat turns go to and history comes from (default: the one to continue)
    remember: bool = True  # False: recall memories, but store no turn and no fact
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _played: int | None = field(default=None, repr=False)
    _last: dict | None = field(default=None, repr=False)  # the finished reply: sentences, record, marks
    _replying: bool = field(default=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # _replying, _played, _last

    def stop(self) -> None:
        """Generation and speech stop at their next piece (the reader went away, the session closed)."""
        self._stop.set()

    def interrupt(self, heard: int) -> None:
        """Barge-in: the listener heard only the first ``heard`` sentences of the reply. A reply in
        progress stops at its next piece; a finished one (speech is made faster than it is played)
        is cut back in the store and the history. Either way it ends with the interruption marker."""
        with self._lock:
            if self._replying:
                self._played = heard
                self._stop.set()
                return
            last = self._last
            if last is None or heard >= len(last["spoken"]) or last["interrupted"]:
                return
            text = f"{join_spoken(last['spoken'][:max(heard, 0)])} {INTERRUPTED}".strip()
            last["interrupted"] = True
            if last["record"] is not None:
                last["record"].interrupted = True
                chats.set_text(last["record"], text)
            elif self.history and self.history[-1]["role"] == "assistant":
                self.history[-1]["content"] = text

    def playback_started(self, at: float | None = None) -> dict | None:
        """The window began playing the last reply (``at``: perf_counter, default now); returns the
        turn's latency with ``playback`` added, or None when there was no reply or it was already marked."""
        last = self._last
        if last is None or "playback" in last["latency"]:
            return None
        at = at if at is not None else time.perf_counter()
        last["latency"]["playback"] = round((at - last["start"]) * 1000, 1)
        if last["record"] is not None:
            last["record"].latency = last["latency"]
            last["record"].save()
        return last["latency"]

    def regenerate(self, turn_id: int) -> Iterator[dict]:
        """Answer again the user message before reply ``turn_id``, from the history before it; the
        new reply becomes that turn's newest alternative (the ``turn`` event has ``regenerating``)."""
        if self.memory is None:
            raise UsageError("regenerating needs the chat kept: this conversation keeps no memory")
        answer = chats.find_turn(turn_id, self.character.id)
        if answer.role != "assistant" or answer.deleted_at is not None:
            raise UsageError(f"message {turn_id} is not one of {self.character.name}'s replies")
        before = chats.branch(answer.chat_id, HISTORY_MESSAGES + 1, before=answer.id) if answer.chat_id else []
        if not before or before[-1].role != "user":
            raise UsageError("only a reply to a message of yours can be regenerated")
        past = [{"role": t.role, "content": t.text} for t in before[:-1]]
        return self.reply(before[-1].text, history=past, regenerating=answer)

    def reply(self, user_text: str, *, heard_at: float | None = None, stages: dict | None = None,
              history: list[dict] | None = None, regenerating: Turn | None = None) -> Iterator[dict]:
        """Answer ``user_text``. ``heard_at`` (perf_counter) is when the user stopped speaking, so
        the latency record starts there (default: now); ``stages`` are earlier marks of this turn
        (e.g. ``{"transcript": t}``); ``history`` replaces the stored short-term history (a client
        that keeps its own, like the OpenAI-compatible endpoint); ``regenerating``: the stored reply
        this one is a new alternative of."""
        checked_message(user_text)
        deadline = time.monotonic() + self.turn_seconds
        options = replace(self.options, deadline=deadline, cancelled=self._stop.is_set)
        with self._lock:
            self._stop.clear()
            self._played = None
            self._last = None
            self._replying = True
        marks = {"start": heard_at if heard_at is not None else time.perf_counter(), **(stages or {})}
        recalled = self._recall(user_text)
        past = self._history() if history is None else history[-HISTORY_MESSAGES:]
        counter = token_counter(self.llm)
        budget = PromptBudget(counter.count, counter.context_length - min(options.max_tokens,
                                                                          counter.context_length // 2))
        turn = build_turn(self.character, user_text, past, [m["text"] for m in recalled], self.user_name, budget)
        frame = counter.count(MESSAGE_FRAME)
        prompt_tokens = sum(counter.count(m["content"]) for m in turn.messages) + frame * (len(turn.messages) + 1)
        began = {"type": "turn", "memories": recalled, "lore": [e.name or e.keys[0] for e in turn.lore],
                 "message_cut": turn.message_cut, "history_dropped": turn.history_dropped}
        yield began if regenerating is None else {**began, "regenerating": regenerating.id}
        if turn.message_cut:
            yield {"type": "note", "code": "MESSAGE_CUT",
                   "message": f"your message was too long for the model's context of {counter.context_length:,} "
                              f"tokens: its last {turn.message_cut:,} characters were left out"}

        events: queue.Queue = queue.Queue()
        sentences: queue.Queue = queue.Queue()
        spoken: list[str] = []
        failure: list[BaseException] = []

        ended: list[str] = []  # why the model stopped, when it said so ("length": cut at max_tokens)
        raw: list[str] = []  # the reply's text as generated, tags and all

        def generate() -> None:
            def pieces():
                stream = self.llm.chat(turn.messages, options)
                while True:
                    try:
                        piece = next(stream)
                    except StopIteration as stop:
                        if isinstance(stop.value, str):
                            ended.append(stop.value)
                        return
                    if options.over():
                        return
                    marks.setdefault("first_token", time.perf_counter())
                    events.put({"type": "token", "text": piece})
                    raw.append(piece)
                    yield piece

            try:
                for item in speakable(pieces(), self.character.spec.emotions, cut=lambda: ended == ["length"]):
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
            if not finished:
                with self._lock:
                    self._replying = False
        with self._lock:  # an interrupt now waits, then cuts the stored reply
            self._replying = False
            if failure:
                raise failure[0]
            interrupted = self._stop.is_set()
            heard = spoken if self._played is None else spoken[: self._played]
            text = join_spoken(heard) + (f" {INTERRUPTED}" if interrupted else "")
            latency = _latency(marks)
            asked, record = self._remember(user_text, text.strip(), interrupted, latency, regenerating)
            self._last = {"spoken": heard, "record": record, "latency": latency, "start": marks["start"],
                          "interrupted": interrupted}
        if not interrupted and time.monotonic() >= deadline:
            yield {"type": "note", "code": "TURN_TIME",
                   "message": f"the reply stopped at the turn's time budget of {self.turn_seconds:g} s"}
        finish = "length" if ended == ["length"] and not interrupted else "stop"
        yield {"type": "done", "text": text.strip(), "interrupted": interrupted, "latency": latency,
               "finish_reason": finish, "turn": record.id if record is not None else None,
               "user_turn": asked.id if asked is not None else None,
               "swipes": record.swipes if record is not None and record.swipes else None,
               "swipe": record.swipe if record is not None else 0,
               "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": counter.count("".join(raw))}}

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
            turns = self.memory.history(self.character.id, HISTORY_MESSAGES, chat=self.chat)
            return [{"role": t.role, "content": t.text} for t in turns]
        return self.history[-HISTORY_MESSAGES:]

    def _recall(self, user_text: str) -> list[dict]:
        """The memories recalled for this turn, as the memory panel shows them (id, text, pinned, score…)."""
        if self.memory is None:
            return []
        return [m.as_dict() for m in self.memory.recall(self.character.id, user_text)]

    def _remember(self, user_text: str, reply: str, interrupted: bool, latency: dict,
                  regenerating: Turn | None = None) -> tuple[Turn | None, Turn | None]:
        """Keep the exchange (or, when ``regenerating``, the reply as that turn's new alternative);
        returns the stored message and reply (None, None without a memory store)."""
        if self.memory is None or not self.remember:
            self.history += [{"role": "user", "content": user_text}, {"role": "assistant", "content": reply}]
            return None, None
        if regenerating is not None:
            return None, chats.add_swipe(regenerating, reply, interrupted=interrupted, latency=latency)
        if self.chat is None:
            self.chat = chats.current_chat(self.character.id, self.memory.clock).id
        turn = self.memory.record_turn(self.character.id, "user", user_text, chat=self.chat)
        answer = self.memory.record_turn(self.character.id, "assistant", reply, interrupted=interrupted,
                                         chat=self.chat)
        answer.latency = latency
        answer.save()
        for fact in facts_worth_keeping(user_text):
            self.memory.remember(self.character.id, fact, turn=turn)
        return turn, answer


def _emotion_event(emotion: Emotion) -> dict:
    target = emotion.target
    return {"type": "emotion", "name": emotion.name, "tag": emotion.tag,
            "expression": getattr(target, "expression", None), "motion": getattr(target, "motion", None)}


def _latency(marks: dict) -> dict:
    """Milliseconds from the end of the user's speech to each stage that happened."""
    start = marks["start"]
    return {stage: round((marks[stage] - start) * 1000, 1)
            for stage in STAGES if stage in marks}
