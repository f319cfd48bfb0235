"""The companion's rows in the app database: a character's conversations (``Chat``), every turn of
them (``Turn``) and the long-term memories kept from them (``Memory``), with the export format
turns and memories travel in.

These rows are the truth about a character's memory; the vector index (``memory.MemoryStore``)
only holds an embedding per live memory, keyed by the row's id, and can be rebuilt from them.
Times are seconds since the epoch, like the job table's.
"""

from __future__ import annotations

import json
import math
from typing import Any

import peewee

from zishu.db import BaseModel
from zishu.errors import UsageError

ROLES = ("user", "assistant")
EXPORT_FORMAT = "zishu-companion-memory"
EXPORT_VERSION = 1


class JSONField(peewee.TextField):
    """A JSON value in a TEXT column (``None`` is SQL NULL)."""

    def db_value(self, value: Any) -> str | None:
        return None if value is None else json.dumps(value, ensure_ascii=False)

    def python_value(self, value: str | None) -> Any:
        return None if value is None else json.loads(value)


class Chat(BaseModel):
    """One conversation of a character: its turns, newest ``updated`` first in the list of chats.
    ``metadata`` keeps what an imported chat carried (SillyTavern's ``chat_metadata``)."""

    id = peewee.AutoField()  # what peewee adds by itself, declared so its type is known
    character = peewee.CharField(index=True)
    title = peewee.TextField()
    created = peewee.FloatField()
    updated = peewee.FloatField()
    metadata = JSONField(null=True)

    class Meta:
        table_name = "companion_chat"

    def as_dict(self) -> dict:
        return {"id": self.id, "character": self.character, "title": self.title, "created": self.created,
                "updated": self.updated}


class Turn(BaseModel):
    """One message of a conversation, as it was said (or, when ``interrupted``, as far as it was
    played before the user cut in). ``latency`` holds the turn's stage timings once measured.

    A regenerated reply keeps every alternative in ``swipes``, ``swipe`` the chosen one, whose text
    is ``text`` (what the history, the lorebook and memory see); ``swipes`` is None while there is
    only one. A deleted turn has ``deleted_at`` set until it is restored."""

    id = peewee.AutoField()  # what peewee adds by itself, declared so its type is known
    character = peewee.CharField(index=True)
    chat = peewee.ForeignKeyField(Chat, null=True, on_delete="CASCADE", backref="turns")
    role = peewee.CharField()  # "user" or "assistant"
    text = peewee.TextField()
    created = peewee.FloatField()
    interrupted = peewee.BooleanField(default=False)
    latency = JSONField(null=True)  # {"stage": seconds, ...}
    swipes = JSONField(null=True)  # [text, ...] once a reply was regenerated
    swipe = peewee.IntegerField(default=0)
    deleted_at = peewee.FloatField(null=True)
    chat_id: int | None  # the id accessor peewee makes for ``chat``

    class Meta:
        table_name = "companion_turn"

    def as_dict(self) -> dict:
        return {"id": self.id, "role": self.role, "text": self.text, "created": self.created,
                "interrupted": self.interrupted, "latency": self.latency}

    def as_message(self) -> dict:
        """The turn as the chat window shows it: with its chat, alternatives and the chosen one."""
        return {**self.as_dict(), "chat": self.chat_id, "swipes": self.swipes or [self.text],
                "swipe": self.swipe if self.swipes else 0, "deleted": self.deleted_at is not None}


class Memory(BaseModel):
    """One long-term memory of a character: a short text, pinned or not, forgotten (``deleted_at``
    set, restorable) or live, and the turn it was taken from when there is one."""

    id = peewee.AutoField()  # what peewee adds by itself, declared so its type is known
    character = peewee.CharField(index=True)
    text = peewee.TextField()
    pinned = peewee.BooleanField(default=False)
    created = peewee.FloatField()
    last_used = peewee.FloatField(null=True)  # the last time recall returned it
    turn = peewee.ForeignKeyField(Turn, null=True, on_delete="SET NULL", backref="memories")
    deleted_at = peewee.FloatField(null=True)
    turn_id: int | None  # the id accessor peewee makes for ``turn``

    class Meta:
        table_name = "companion_memory"

    @property
    def forgotten(self) -> bool:
        return self.deleted_at is not None

    def as_dict(self) -> dict:
        return {"id": self.id, "text": self.text, "pinned": self.pinned, "created": self.created,
                "last_used": self.last_used, "turn": self.turn_id, "deleted_at": self.deleted_at}


def export_rows(character: str, turns: list[Turn], memories: list[Memory], exported_at: float) -> dict:
    """Everything a character remembers as plain JSON data; a memory's ``turn`` is the ``id`` of one
    of ``turns`` (or null)."""
    return {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "character": character,
            "exported_at": exported_at, "turns": [t.as_dict() for t in turns],
            "memories": [m.as_dict() for m in memories]}


def read_export(exported: Any) -> tuple[list[dict], list[dict]]:
    """The turns and memories of an export, checked field by field; a ``UsageError`` names the first
    thing wrong (``memories[2].text: ...``)."""
    if not isinstance(exported, dict) or exported.get("format") != EXPORT_FORMAT:
        raise UsageError(f"not a companion memory export: expected a dict with format {EXPORT_FORMAT!r}")
    if exported.get("version") != EXPORT_VERSION:
        raise UsageError(f"companion memory export version {exported.get('version')!r} is not supported "
                         f"(this Zishu reads version {EXPORT_VERSION})")
    turns = [_checked(exported, "turns", i, t, _TURN_FIELDS) for i, t in enumerate(_list(exported, "turns"))]
    memories = [_checked(exported, "memories", i, m, _MEMORY_FIELDS)
                for i, m in enumerate(_list(exported, "memories"))]
    turn_ids = [t["id"] for t in turns]
    if len(set(turn_ids)) != len(turn_ids):
        raise UsageError("turns: two turns have the same id")
    for i, t in enumerate(turns):
        if t["role"] not in ROLES:
            raise UsageError(f"turns[{i}].role: {t['role']!r} is not one of {', '.join(ROLES)}")
    for i, m in enumerate(memories):
        if not m["text"].strip():
            raise UsageError(f"memories[{i}].text: a memory's text must not be empty")
        if m["turn"] is not None and m["turn"] not in turn_ids:
            raise UsageError(f"memories[{i}].turn: {m['turn']} is not the id of a turn in this export")
    return turns, memories


def _is_time(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_optional_time(v: Any) -> bool:
    return v is None or _is_time(v)


def _is_id(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


_TURN_FIELDS = {
    "id": (_is_id, "an integer"),
    "role": (lambda v: isinstance(v, str), "a string"),
    "text": (lambda v: isinstance(v, str), "a string"),
    "created": (_is_time, "a time in seconds"),
    "interrupted": (lambda v: isinstance(v, bool), "true or false"),
    "latency": (lambda v: v is None or isinstance(v, dict), "an object or null"),
}
_MEMORY_FIELDS = {
    "text": (lambda v: isinstance(v, str), "a string"),
    "pinned": (lambda v: isinstance(v, bool), "true or false"),
    "created": (_is_time, "a time in seconds"),
    "last_used": (_is_optional_time, "a time in seconds or null"),
    "turn": (lambda v: v is None or _is_id(v), "a turn id or null"),
    "deleted_at": (_is_optional_time, "a time in seconds or null"),
}


def _list(exported: dict, key: str) -> list:
    value = exported.get(key, [])
    if not isinstance(value, list):
        raise UsageError(f"{key}: expected a list, got {type(value).__name__}")
    return value


def _checked(exported: dict, key: str, i: int, item: Any, fields: dict) -> dict:
    if not isinstance(item, dict):
        raise UsageError(f"{key}[{i}]: expected an object, got {type(item).__name__}")
    for name, (ok, wanted) in fields.items():
        if name not in item:
            raise UsageError(f"{key}[{i}].{name}: missing")
        if not ok(item[name]):
            raise UsageError(f"{key}[{i}].{name}: {item[name]!r} is not {wanted}")
    return item
