"""Where every companion is opened, found and closed, so each caller gets the same character.

Three callers talk with a character: the window (``web/companion.py``, voice and text, one
``Session`` per open panel), the OpenAI-compatible ``/v1/chat/completions`` (text, the client keeps
the history) and ``zishu chat`` in the terminal (text). All of them get the character through
``companion_character``: the installed character with the user's expression calibration
(``expressions.emotion_map``) laid over its emotion map, so a calibration saved in the calibrator
changes the expression events of every caller, not only the window's.

``CompanionSessions(runtime)`` holds one app's companions:

    sessions.open(id, models)       a window's Session (its engines load now); the oldest closes when
                                    more than ``limit`` are open (a window that reloaded, say)
    sessions.find(sid)              the open Session ``sid``; NotFound once it closed
    sessions.close(sid)             close it; whether one was open
    sessions.text_chat(id, options, remember=True)
                                    a Conversation for one text request: the character's LLM and
                                    memory are loaded once per app and kept; the character (and so
                                    its calibration) is read again for every request; with
                                    ``remember=False`` it recalls memories but writes none
    sessions.close_all()            the app is stopping

``open_text_companion(runtime, character, ...)`` opens a text-only companion (no voice, no
microphone) for a caller that holds it itself, such as ``zishu chat``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from zishu.engines.kinds import ChatOptions
from zishu.errors import NotFound

from . import chats
from .brain import Character
from .expressions import emotion_map
from .pipeline import Conversation
from .session import Companion, Session, open_companion

MAX_SESSIONS = 4  # window sessions open at once


def companion_character(registry: Any, rid: str) -> Character:
    """The installed character ``rid`` as every companion uses it: its emotion map with the user's
    calibration laid over it. Raises as ``Character.installed`` does (not installed, not a character)."""
    character = Character.installed(registry, rid)
    character.spec = character.spec.model_copy(update={"emotions": emotion_map(character)})
    return character


def open_text_companion(runtime: Any, character: str | Character, *, models: dict | None = None,
                        memory: bool = True, user_name: str = "User", devices: dict | None = None) -> Companion:
    """A companion that reads and writes text only: the LLM and (when ``memory``) long-term memory.
    ``character``: an installed character id, or one ``companion_character`` returned."""
    if isinstance(character, str):
        character = companion_character(runtime.registry, character)
    return open_companion(runtime, character, models=models, speech=False, hearing=False, memory=memory,
                          user_name=user_name, devices=devices)


class CompanionSessions:
    """The companions one running app holds. Thread-safe: requests arrive on the server's threads."""

    def __init__(self, runtime: Any, limit: int = MAX_SESSIONS) -> None:
        self.runtime = runtime
        self.limit = limit
        self._sessions: OrderedDict[int, Session] = OrderedDict()
        self._text: dict[str, Companion] = {}
        self._lock = threading.Lock()
        self._loading = threading.Lock()  # text companions load one at a time (each loads an LLM)

    # -- the window's sessions --------------------------------------------------------------------

    def open(self, rid: str, models: dict | None = None, options: ChatOptions | None = None,
             chat: int | None = None) -> Session:
        """Open a window's session with character ``rid`` (its engines load now) in ``chat``
        (default: the chat to continue, the one talked in last); ``options`` replace the
        conversation's sampling settings (``max_tokens``, say)."""
        character = companion_character(self.runtime.registry, rid)
        if chat is not None:
            chats.find_chat(chat, rid)
        companion = open_companion(self.runtime, character, models=models or {})
        if options is not None:
            companion.conversation.options = options
        if companion.conversation.memory is not None:
            companion.conversation.chat = chat if chat is not None else chats.current_chat(rid).id
        session = Session(companion)
        evicted = []
        with self._lock:
            while len(self._sessions) >= self.limit:
                evicted.append(self._sessions.popitem(last=False)[1])
            self._sessions[session.id] = session
        for old in evicted:
            old.close()
        return session

    def find(self, sid: int) -> Session:
        with self._lock:
            found = self._sessions.get(sid)
        if found is None:
            raise NotFound(f"no companion session {sid}: it closed; open the character again")
        return found

    def close(self, sid: int) -> bool:
        """Close session ``sid``; False when it was not open (closed already, or never)."""
        with self._lock:
            session = self._sessions.pop(sid, None)
        if session is not None:
            session.close()
        return session is not None

    # -- text requests ----------------------------------------------------------------------------

    def text_chat(self, rid: str, options: ChatOptions | None = None, *, remember: bool = True) -> Conversation:
        """A conversation with character ``rid`` for one text request: the LLM and memory loaded
        once per app, the character (with its calibration as saved now) read for this request;
        ``remember=False``: nothing of the exchange is written to memory."""
        character = companion_character(self.runtime.registry, rid)
        with self._loading:
            companion = self._text.get(rid)
            if companion is None:
                companion = self._text[rid] = open_text_companion(self.runtime, character)
        talk = companion.conversation
        chat = Conversation(character, talk.llm, None, talk.memory, turn_seconds=talk.turn_seconds,
                            remember=remember)
        if options is not None:
            chat.options = options
        return chat

    def close_all(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), OrderedDict()
            self._text.clear()
        for session in sessions:
            session.close()
