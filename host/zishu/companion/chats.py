"""A character's chats, as a SillyTavern user expects them: every conversation kept and listed
(newest first), a new one started or the last one continued, and on any message: swipe between a
reply's alternatives, edit, delete and undo; chats come in and go out as SillyTavern JSONL.

Only the chosen branch counts: a turn's ``text`` is its chosen alternative, deleted turns are left
out, and that is what the history, the lorebook (which scans the history) and memory see. A user
message's long-term memories are forgotten with it and restored with it, and an edit takes them
anew from the new text. Regenerating a reply needs the LLM: ``Conversation.regenerate`` does it and
keeps the new reply as one more alternative (``add_swipe``).

SillyTavern's chat file (``public/script.js`` ``saveChat``): the first line is a header
``{"user_name", "character_name", "create_date", "chat_metadata"}``, then one message a line
``{"name", "is_user", "is_system", "send_date", "mes", "swipes", "swipe_id", "extra", ...}``.
System messages (SillyTavern's own notes) are skipped on import.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone, tzinfo
from typing import TYPE_CHECKING, Any

from zishu.db import database
from zishu.errors import NotFound, UsageError

from .records import Chat, Memory, Turn

if TYPE_CHECKING:
    from .memory import MemoryStore

NEW_TITLE = "New chat"
MAX_IMPORT_BYTES = 32 * 1024 * 1024
MAX_IMPORT_MESSAGES = 100_000


def list_chats(character: str) -> list[dict]:
    """The character's chats, the one talked in last first, each with its message count and last message."""
    found = []
    for chat in Chat.select().where(Chat.character == character).order_by(Chat.updated.desc(), Chat.id.desc()):
        live = _live(chat.id)
        last = live.order_by(Turn.id.desc()).first()
        found.append({**chat.as_dict(), "messages": live.count(), "last": last.text if last else None})
    return found


def new_chat(character: str, title: str = NEW_TITLE, clock=time.time) -> Chat:
    now = clock()
    return Chat.create(character=character, title=title, created=now, updated=now)


def current_chat(character: str, clock=time.time) -> Chat:
    """The chat to continue: the one talked in last, or a new one when the character has none."""
    chat = Chat.select().where(Chat.character == character).order_by(Chat.updated.desc(), Chat.id.desc()).first()
    return chat if chat is not None else new_chat(character, clock=clock)


def find_chat(chat_id: int, character: str | None = None) -> Chat:
    chat = Chat.get_or_none(Chat.id == chat_id)
    if chat is None or (character is not None and chat.character != character):
        raise NotFound(f"no chat {chat_id}" + (f" of {character}" if character else ""))
    return chat


def messages(chat_id: int) -> list[Turn]:
    """The chat's messages on its chosen branch, oldest first."""
    return list(_live(chat_id).order_by(Turn.id))


def branch(chat_id: int, limit: int, before: int | None = None) -> list[Turn]:
    """The last ``limit`` messages of the chosen branch (before turn ``before`` when given), oldest first."""
    rows = _live(chat_id)
    if before is not None:
        rows = rows.where(Turn.id < before)
    return list(reversed(list(rows.order_by(Turn.id.desc()).limit(limit))))


def touch(chat_id: int, clock=time.time) -> None:
    Chat.update(updated=clock()).where(Chat.id == chat_id).execute()


def find_turn(turn_id: int, character: str | None = None) -> Turn:
    turn = Turn.get_or_none(Turn.id == turn_id)
    if turn is None or turn.chat_id is None or (character is not None and turn.character != character):
        raise NotFound(f"no message {turn_id}" + (f" of {character}" if character else ""))
    return turn


def set_text(turn: Turn, text: str) -> None:
    """Change what the turn says, in its chosen alternative too; saves it."""
    turn.text = text
    if turn.swipes:
        swipes = list(turn.swipes)
        swipes[turn.swipe] = text
        turn.swipes = swipes
    turn.save()


def add_swipe(turn: Turn, text: str, *, interrupted: bool = False, latency: dict | None = None) -> Turn:
    """Keep a regenerated reply as the turn's newest alternative, and choose it."""
    turn.swipes = [*(turn.swipes or [turn.text]), text]
    turn.swipe = len(turn.swipes) - 1
    turn.text, turn.interrupted, turn.latency = text, interrupted, latency
    turn.save()
    return turn


def swipe(turn_id: int, to: int, character: str | None = None) -> Turn:
    """Choose alternative ``to`` (0-based) of an assistant message."""
    turn = find_turn(turn_id, character)
    alternatives = turn.swipes or [turn.text]
    if turn.role != "assistant":
        raise UsageError("only the character's messages have alternatives")
    if not isinstance(to, int) or isinstance(to, bool) or not 0 <= to < len(alternatives):
        raise UsageError(f"message {turn_id} has alternatives 0–{len(alternatives) - 1}, not {to!r}")
    turn.swipe, turn.text = to, alternatives[to]
    turn.save()
    return turn


def edit(turn_id: int, text: str, memory: MemoryStore | None = None, character: str | None = None) -> dict:
    """Change a message's text; returns ``{"message", "before"}`` (``before``: the old text, which
    an undo edits back). A user message's memories are taken anew from the new text."""
    from .memory import facts_worth_keeping

    if not isinstance(text, str):
        raise UsageError('expected {"text": "..."}')
    turn = find_turn(turn_id, character)
    if turn.role == "user" and not text.strip():
        raise UsageError("a message of yours needs some text (delete it instead)")
    before = turn.text
    with database.atomic():
        set_text(turn, text)
        if turn.role == "user" and memory is not None and text != before:
            _forget_taken(turn, memory)
            for fact in facts_worth_keeping(text):
                memory.remember(turn.character, fact, turn=turn)
    return {"message": turn.as_message(), "before": before}


def delete(turn_id: int, memory: MemoryStore | None = None, character: str | None = None,
           clock=time.time) -> Turn:
    """Take a message out of the chat (``restore`` brings it back), with the memories taken from it."""
    turn = find_turn(turn_id, character)
    if turn.deleted_at is None:
        turn.deleted_at = clock()
        turn.save()
        if memory is not None:
            _forget_taken(turn, memory)
    return turn


def restore(turn_id: int, memory: MemoryStore | None = None, character: str | None = None) -> Turn:
    """Undo ``delete``: the message is back in its place, and its memories with it."""
    turn = find_turn(turn_id, character)
    if turn.deleted_at is not None:
        turn.deleted_at = None
        turn.save()
        if memory is not None:
            for row in Memory.select().where((Memory.turn == turn.id) & Memory.deleted_at.is_null(False)):
                memory.restore(row.id)
    return turn


def _forget_taken(turn: Turn, memory: MemoryStore) -> None:
    for row in Memory.select().where((Memory.turn == turn.id) & Memory.deleted_at.is_null()):
        memory.forget(row.id)


def _live(chat_id: int):
    return Turn.select().where((Turn.chat == chat_id) & Turn.deleted_at.is_null())


# -- SillyTavern JSONL ----------------------------------------------------------------------------


def export_jsonl(chat_id: int, character_name: str, user_name: str = "User") -> str:
    """The chat as SillyTavern writes it: a header line, then one message a line (chosen branch)."""
    chat = find_chat(chat_id)
    header = {"user_name": user_name, "character_name": character_name,
              "create_date": _st_create_date(chat.created), "chat_metadata": chat.metadata or {}}
    lines = [header]
    for turn in messages(chat_id):
        mine = turn.role == "user"
        line: dict[str, Any] = {"name": user_name if mine else character_name, "is_user": mine, "is_system": False,
                                "send_date": _st_send_date(turn.created), "mes": turn.text, "extra": {}}
        if not mine:
            line["swipes"] = list(turn.swipes or [turn.text])
            line["swipe_id"] = turn.swipe if turn.swipes else 0
        lines.append(line)
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)


def import_jsonl(character: str, data: bytes | str, clock=time.time) -> Chat:
    """A SillyTavern chat file as a new chat of ``character``; UsageError naming the first bad line."""
    if isinstance(data, bytes):
        if len(data) > MAX_IMPORT_BYTES:
            raise UsageError(f"a chat file may be at most {MAX_IMPORT_BYTES // 2**20} MB")
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise UsageError(f"a chat file must be UTF-8 text: {e}") from e
    rows = []
    for number, raw in enumerate(data.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            rows.append((number, json.loads(raw)))
        except json.JSONDecodeError as e:
            raise UsageError(f"line {number} is not JSON ({e.msg}): is this a SillyTavern .jsonl chat?") from e
    if not rows or not isinstance(rows[0][1], dict) or "mes" in rows[0][1]:
        raise UsageError("line 1 must be SillyTavern's header {\"user_name\", \"character_name\", ...}")
    if len(rows) > MAX_IMPORT_MESSAGES + 1:
        raise UsageError(f"a chat file may hold at most {MAX_IMPORT_MESSAGES:,} messages")
    header = rows[0][1]
    turns = []
    for number, row in rows[1:]:
        if not isinstance(row, dict) or not isinstance(row.get("mes"), str):
            raise UsageError(f"line {number}: a message needs \"mes\" text")
        if row.get("is_system"):
            continue
        mine = bool(row.get("is_user"))
        swipes = row.get("swipes")
        chosen = row.get("swipe_id", 0)
        if mine or not (isinstance(swipes, list) and len(swipes) > 1 and all(isinstance(s, str) for s in swipes)):
            swipes, chosen = None, 0
        elif not isinstance(chosen, int) or isinstance(chosen, bool) or not 0 <= chosen < len(swipes):
            raise UsageError(f"line {number}: swipe_id {chosen!r} is not one of the {len(swipes)} swipes")
        text = swipes[chosen] if swipes else row["mes"]
        turns.append({"role": "user" if mine else "assistant", "text": text, "swipes": swipes, "swipe": chosen,
                      "created": _st_time(row.get("send_date"))})
    now = clock()
    title = f"Imported: {header.get('character_name') or character} {_st_title_date(header.get('create_date'))}"
    with database.atomic():
        chat = Chat.create(character=character, title=title.strip(), created=now, updated=now,
                           metadata=header.get("chat_metadata") if isinstance(header.get("chat_metadata"), dict)
                           else None)
        for t in turns:
            Turn.create(character=character, chat=chat.id, role=t["role"], text=t["text"], swipes=t["swipes"],
                        swipe=t["swipe"], created=t["created"] if t["created"] is not None else now)
    return chat


def _local() -> tzinfo | None:
    """This machine's time zone now (SillyTavern writes local times)."""
    return datetime.now().astimezone().tzinfo


def _st_send_date(at: float) -> str:
    """SillyTavern's message time, e.g. "December 4, 2026 5:06pm"."""
    when = datetime.fromtimestamp(at, _local())
    return f"{when:%B} {when.day}, {when.year} {when.hour % 12 or 12}:{when:%M}{'am' if when.hour < 12 else 'pm'}"


def _st_create_date(at: float) -> str:
    """SillyTavern's chat creation time, e.g. "2026-12-04@17h06m08s"."""
    return datetime.fromtimestamp(at, _local()).strftime("%Y-%m-%d@%Hh%Mm%Ss")


def _st_time(value: Any) -> float | None:
    """A message time as SillyTavern wrote it (several formats over its versions), or None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value / 1000 if value > 1e11 else float(value)  # milliseconds in older files
    if not isinstance(value, str):
        return None
    for pattern in ("%B %d, %Y %I:%M%p", "%B %d, %Y %I:%M %p", "%Y-%m-%d@%Hh%Mm%Ss", "%Y-%m-%d @%Hh %Mm %Ss"):
        try:
            return datetime.strptime(value.strip(), pattern).astimezone().timestamp()
        except ValueError:
            continue
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc).timestamp()
    except ValueError:
        return None


def _st_title_date(value: Any) -> str:
    at = _st_time(value)
    return datetime.fromtimestamp(at, _local()).strftime("%Y-%m-%d %H:%M") if at is not None else ""
