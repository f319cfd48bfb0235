"""Chats are kept (zishu.companion.chats): a character's conversations listed newest first, a new
one or the last one continued with its history, a reply regenerated into swipes (← →, the chosen
one in the history), any message edited or deleted with Undo, memory and history on the chosen
branch only, and SillyTavern JSONL in and out, tested with a chat file written by hand in the shape
SillyTavern's ``saveChat`` writes (tests/chats/sillytavern_mei.jsonl). Mei's scripted tiny GGUF
always answers "[joy]Hugs, cat."."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from conftest import AppProcess
from test_companion_web import Events
from zishu.companion import chats
from zishu.companion.memory import MemoryStore
from zishu.companion.records import Chat, Turn
from zishu.db import MIGRATIONS, open_database
from zishu.errors import UsageError

ST_CHAT = Path(__file__).parent / "chats" / "sillytavern_mei.jsonl"
ST_MESSAGE_KEYS = {"name", "is_user", "is_system", "send_date", "mes", "extra"}


def flat(texts: list[str]) -> list[list[float]]:
    """A constant embedding: these tests look at which memories are live, not at recall's ranking."""
    return [[1.0, 0.0, 0.0] for _ in texts]


@pytest.fixture
def store(runtime) -> MemoryStore:
    return MemoryStore(runtime.home, flat, embedder="flat")


def test_a_sillytavern_chat_imports_with_its_swipes_and_exports_in_the_same_shape(runtime):
    chat = chats.import_jsonl("acme/mei", ST_CHAT.read_bytes())
    rows = chats.messages(chat.id)
    assert [(t.role, t.text) for t in rows] == [
        ("assistant", "Hello! I'm Mei."), ("user", "I keep a garden of tomatoes."),
        ("assistant", "Tomatoes! Do you grow the cherry kind?"), ("user", "Yes, the cherry kind, and basil too.")]
    assert rows[2].swipes == ["Tomatoes are lovely.", "Tomatoes! Do you grow the cherry kind?",
                              "How big is the garden?"] and rows[2].swipe == 1
    assert Chat.get_by_id(chat.id).metadata["lastInContextMessageId"] == 3
    assert "Mei" in chat.title
    exported = chats.export_jsonl(chat.id, "Mei", "Lin").splitlines()
    header, *lines = [json.loads(line) for line in exported]
    assert set(header) == {"user_name", "character_name", "create_date", "chat_metadata"}
    assert (header["user_name"], header["character_name"]) == ("Lin", "Mei")
    assert header["chat_metadata"]["note_depth"] == 4
    assert all(set(line) >= ST_MESSAGE_KEYS for line in lines) and len(lines) == 4
    assert [line["name"] for line in lines] == ["Mei", "Lin", "Mei", "Lin"]
    assert [line["is_user"] for line in lines] == [False, True, False, True]
    assert lines[2]["swipes"] == rows[2].swipes and lines[2]["swipe_id"] == 1
    assert lines[2]["mes"] == lines[2]["swipes"][1]
    assert lines[1]["send_date"] == "November 30, 2026 8:16pm"  # SillyTavern's own format, read and written
    again = chats.import_jsonl("acme/mei", "\n".join(exported))
    assert [(t.role, t.text, t.swipes, t.swipe) for t in chats.messages(again.id)] == \
        [(t.role, t.text, t.swipes, t.swipe) for t in rows]


@pytest.mark.parametrize(("body", "says"), [
    (b"", "line 1 must be SillyTavern's header"),
    (b'{"user_name": "a"}\nnot json\n', "line 2 is not JSON"),
    (b'{"user_name": "a"}\n{"name": "Mei", "is_user": false}\n', "line 2: a message needs \"mes\""),
    (b'{"user_name": "a"}\n{"mes": "x", "swipes": ["x", "y"], "swipe_id": 5}\n', "swipe_id 5"),
])
def test_a_bad_chat_file_is_refused_naming_the_line(runtime, body, says):
    with pytest.raises(UsageError, match=says):
        chats.import_jsonl("acme/mei", body)
    assert Chat.select().count() == 0


def test_history_and_memory_see_the_chosen_branch_only(runtime, store):
    first = chats.new_chat("acme/mei", clock=lambda: 1.0)
    asked = store.record_turn("acme/mei", "user", "My name is Lin.", chat=first.id)
    store.remember("acme/mei", "My name is Lin", turn=asked)
    answer = store.record_turn("acme/mei", "assistant", "Hi Lin.", chat=first.id)
    chats.add_swipe(answer, "Hello, Lin!")
    chats.swipe(answer.id, 0)
    assert [t.text for t in store.history("acme/mei", chat=first.id)] == ["My name is Lin.", "Hi Lin."]
    chats.swipe(answer.id, 1)
    assert [t.text for t in store.history("acme/mei", chat=first.id)] == ["My name is Lin.", "Hello, Lin!"]
    # deleting a message takes it, and the memories taken from it, out; Undo brings both back
    chats.delete(asked.id, store)
    assert [t.text for t in store.history("acme/mei", chat=first.id)] == ["Hello, Lin!"]
    assert [m.text for m in store.memories("acme/mei")] == []
    chats.restore(asked.id, store)
    assert [m.text for m in store.memories("acme/mei")] == ["My name is Lin"]
    # an edit changes what the history says and what is remembered; Undo edits it back
    edited = chats.edit(asked.id, "My name is Wei.", store)
    assert edited["before"] == "My name is Lin."
    assert [m.text for m in store.memories("acme/mei")] == ["My name is Wei"]
    chats.edit(asked.id, edited["before"], store)
    assert [m.text for m in store.memories("acme/mei")] == ["My name is Lin"]
    assert store.history("acme/mei", chat=first.id)[0].text == "My name is Lin."
    # the other chat's turns are not this chat's history
    other = chats.new_chat("acme/mei", clock=lambda: 2.0)
    store.record_turn("acme/mei", "user", "Elsewhere.", chat=other.id)
    assert [t.text for t in store.history("acme/mei", chat=other.id)] == ["Elsewhere."]
    assert next(c["id"] for c in chats.list_chats("acme/mei")) == other.id  # newest first


def test_turns_kept_before_chats_become_one_chat_per_character(tmp_path):
    path = tmp_path / "zishu.db"
    open_database(path, migrations=MIGRATIONS[:2]).close()
    with sqlite3.connect(path) as old:
        for character, text, at in (("acme/mei", "hi", 5.0), ("acme/mei", "Hugs.", 6.0), ("acme/bo", "yo", 7.0)):
            old.execute("INSERT INTO companion_turn (character, role, text, created, interrupted) "
                        "VALUES (?, 'user', ?, ?, 0)", (character, text, at))
    open_database(path)
    assert {(c["character"], c["messages"], c["updated"]) for c in
            chats.list_chats("acme/mei") + chats.list_chats("acme/bo")} == {("acme/mei", 2, 6.0), ("acme/bo", 1, 7.0)}
    assert Turn.select().where(Turn.chat.is_null()).count() == 0


@pytest.fixture
def app(companion_home):
    env = {**os.environ, "ZISHU_HOME": str(companion_home)}
    env.pop("ZISHU_QUEUE", None)
    with AppProcess(env) as app:
        yield app


def open_chat(app, chat: int | None = None) -> tuple[dict, Events]:
    body = {"character": "acme/mei", **({"chat": chat} if chat else {})}
    opened = app.api("POST", "/api/companion/sessions", json=body, timeout=180)
    assert opened.status_code == 200, opened.text
    return opened.json(), Events(app, opened.json()["id"])


def test_the_window_keeps_chats_regenerates_swipes_edits_and_deletes_with_undo(app):
    session, events = open_chat(app)
    sid, chat = session["id"], session["chat"]
    assert session["messages"] == []
    assert app.api("POST", f"/api/companion/sessions/{sid}/say", json={"text": "My name is Lin."}).status_code == 200
    done = next(e for e in events.until("done") if e["type"] == "done")
    reply, asked = done["turn"], done["user_turn"]
    # regenerate: the events come again, marked as a new alternative of that reply
    assert app.api("POST", f"/api/companion/sessions/{sid}/messages/{reply}/regenerate").status_code == 200
    seen = events.until("done", 2)
    assert [e for e in seen if e["type"] == "turn"][-1]["regenerating"] == reply
    assert [e for e in seen if e["type"] == "done"][-1]["swipes"] == ["Hugs, cat.", "Hugs, cat."]
    swiped = app.api("POST", f"/api/companion/sessions/{sid}/messages/{reply}/swipe", json={"to": 0}).json()
    assert swiped["message"]["swipe"] == 0
    # edit with undo, delete with undo
    edited = app.api("PUT", f"/api/companion/sessions/{sid}/messages/{asked}", json={"text": "My name is Wei."}).json()
    assert edited["before"] == "My name is Lin." and edited["message"]["text"] == "My name is Wei."
    assert app.api("DELETE", f"/api/companion/sessions/{sid}/messages/{reply}").status_code == 200
    listed = app.api("GET", f"/api/companion/chats/{chat}").json()["messages"]
    assert [m["text"] for m in listed] == ["My name is Wei."]
    assert app.api("POST", f"/api/companion/sessions/{sid}/messages/{reply}/restore").status_code == 200
    app.api("DELETE", f"/api/companion/sessions/{sid}")
    # reopening continues the last chat, with its history
    again, _ = open_chat(app)
    assert again["chat"] == chat
    assert [(m["role"], m["text"], m["swipes"], m["swipe"]) for m in again["messages"]] == [
        ("user", "My name is Wei.", ["My name is Wei."], 0), ("assistant", "Hugs, cat.", ["Hugs, cat."] * 2, 0)]
    app.api("DELETE", f"/api/companion/sessions/{again['id']}")
    # a new chat, listed first; the old one can still be continued
    new = app.api("POST", "/api/companion/characters/acme/mei/chats").json()["chat"]
    listed = app.api("GET", "/api/companion/characters/acme/mei/chats").json()["chats"]
    assert [c["id"] for c in listed] == [new["id"], chat] and listed[1]["messages"] == 2
    old, _ = open_chat(app, chat)
    assert old["chat"] == chat and len(old["messages"]) == 2
    # export as SillyTavern JSONL, and import it back as another chat
    exported = app.api("GET", f"/api/companion/chats/{chat}/export")
    assert exported.headers["Content-Disposition"].endswith('.jsonl"')
    header, *lines = [json.loads(line) for line in exported.text.splitlines()]
    assert header["character_name"] == "Mei" and lines[1]["swipes"] == ["Hugs, cat."] * 2
    imported = app.api("POST", "/api/companion/characters/acme/mei/chats/import", data=ST_CHAT.read_bytes(),
                       headers={"Content-Type": "application/octet-stream"})
    assert imported.status_code == 200, imported.text
    assert imported.json()["messages"] == 4
    bad = app.api("POST", "/api/companion/characters/acme/mei/chats/import", data=b"nope",
                  headers={"Content-Type": "application/octet-stream"})
    assert bad.status_code == 400 and "line 1" in bad.json()["error"]["message"]


def test_the_lorebook_sees_the_chosen_branch_only(runtime, companion_home):
    from zishu.catalog.manifest import LoreEntry
    from zishu.companion.sessions import companion_character, open_text_companion
    from zishu.engines.kinds import ChatOptions

    mei = companion_character(runtime.registry, "acme/mei")
    mei.spec = mei.spec.model_copy(update={"lorebook": [LoreEntry(keys=["basil"], content="Basil grows by the door.",
                                                                    name="basil")]})
    talk = open_text_companion(runtime, mei).conversation
    talk.options = ChatOptions(max_tokens=40, temperature=0.0, seed=1)
    talk.chat = chats.new_chat("acme/mei").id
    store = talk.memory
    assert store is not None
    store.record_turn("acme/mei", "user", "What grows here?", chat=talk.chat)
    answer = store.record_turn("acme/mei", "assistant", "Tomatoes.", chat=talk.chat)
    chats.add_swipe(answer, "Basil, mostly.")

    def lore_of_next_turn() -> list[str]:
        events = list(talk.reply("Tell me more."))
        return next(e for e in events if e["type"] == "turn")["lore"]

    assert lore_of_next_turn() == ["basil"]  # the chosen alternative speaks of basil
    chats.swipe(answer.id, 0)
    assert lore_of_next_turn() == []  # "Tomatoes." chosen: basil is on a branch not taken


@pytest.mark.parametrize("model", [Chat, Turn])
def test_the_migrated_chat_tables_match_the_models(tmp_path, model):
    database = open_database(tmp_path / "zishu.db")
    columns = {c.name: c for c in database.get_columns(model._meta.table_name)}
    fields = model._meta.sorted_fields
    assert set(columns) == {f.column_name for f in fields}
    for f in fields:
        assert columns[f.column_name].null == f.null, f.name
