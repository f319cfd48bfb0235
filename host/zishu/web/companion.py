"""The companion panel and its transport: talk with a character by text or voice.

The duplex stream is two halves on the same local server, behind the same secret and origin
checks as every other route (a WebSocket would need another server than cheroot):

    GET  /api/companion/sessions/<id>/events     server-sent events: the session's events, audio as base64
    POST /api/companion/sessions/<id>/audio      microphone PCM (16 kHz mono int16), ~100 ms a request,
                                                 queued for the session's listening thread (answers at once)
    POST /api/companion/sessions/<id>/say        {"text"}: a typed message (at most 4,000 characters)
    POST /api/companion/sessions/<id>/playback   {"event": "playing" | "heard" | "barge_in", "sentences": n}

A session opens with ``POST /api/companion/sessions {"character": id, "max_tokens": n}`` (its engines
load then; ``max_tokens`` is optional and bounds each reply) and
closes when its event stream does or on ``DELETE``. Event streams count against the app's cap
(``streams.py``). The memory panel's routes work on the session's
character with the session's embedding model. Sessions are opened, found and closed by the app's
``CompanionSessions`` (``zishu.companion.sessions``), which ``/v1/chat/completions`` shares; the
memory panel's work is ``zishu.companion.memory_panel``'s.

Chats (``zishu.companion.chats``): a session opens in ``{"chat": id}`` or the chat talked in last
(its messages come back with the session), and

    GET  /api/companion/characters/<owner>/<name>/chats          the chats, newest first
    POST /api/companion/characters/<owner>/<name>/chats          a new chat
    POST /api/companion/characters/<owner>/<name>/chats/import   a SillyTavern .jsonl body: a new chat
    GET  /api/companion/chats/<cid>                              its messages (chosen branch)
    GET  /api/companion/chats/<cid>/export                       as SillyTavern .jsonl
    POST /api/companion/sessions/<sid>/messages/<tid>/regenerate the reply again, as a new swipe
    POST /api/companion/sessions/<sid>/messages/<tid>/swipe      {"to": n}: choose alternative n
    PUT|DELETE /api/companion/sessions/<sid>/messages/<tid>      edit {"text"} (answers ``before``) or delete
    POST /api/companion/sessions/<sid>/messages/<tid>/restore    undo a delete
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator

from flask import Blueprint, Response, current_app, jsonify, render_template, request

from zishu.companion import chats
from zishu.companion.brain import opening_greeting
from zishu.engines.kinds import ChatOptions
from zishu.errors import NotFound, UsageError

from .api import _body
from .app import runtime
from .streams import KEEP_ALIVE, open_stream

companion = Blueprint("companion", __name__)

_lock = threading.Lock()


def companion_sessions():
    """This app's ``CompanionSessions`` (the window's sessions and the text companions), made on first use."""
    from zishu.companion.sessions import CompanionSessions

    with _lock:
        found = current_app.config.get("ZISHU_COMPANIONS")
        if found is None:
            found = current_app.config["ZISHU_COMPANIONS"] = CompanionSessions(runtime())
        return found


def _session(sid: int):
    return companion_sessions().find(sid)


@companion.get("/companion")
def panel():
    from zishu.companion.characters import list_characters

    characters = list_characters(runtime())
    chosen = request.args.get("character") or (characters[0]["id"] if characters else None)
    return render_template("companion.html", title="Companion", active="/companion",
                           characters=characters, chosen=chosen)


@companion.post("/api/companion/sessions")
def open_session():
    body = _body()
    rid = body.get("character")
    if not isinstance(rid, str) or not rid:
        raise UsageError('expected {"character": "owner/name"}')
    models = body.get("models") or {}
    if not isinstance(models, dict):
        raise UsageError('"models" must be an object: {"llm": id, "asr": id, ...}')
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1):
        raise UsageError('"max_tokens" must be a whole number, 1 or more')
    options = ChatOptions(max_tokens=max_tokens) if max_tokens else None
    chat = body.get("chat")
    if chat is not None and (not isinstance(chat, int) or isinstance(chat, bool)):
        raise UsageError('"chat" must be the id of one of the character\'s chats')
    session = companion_sessions().open(rid, models, options, chat)
    info = session.companion
    character = info.conversation.character
    greeting, emotion = opening_greeting(character, info.conversation.user_name)
    mood = None if emotion is None else {
        "name": emotion.name, "tag": emotion.tag, "expression": getattr(emotion.target, "expression", None)}
    chat_id = info.conversation.chat
    return jsonify(id=session.id, character={"id": rid, "name": character.name, "greeting": greeting or None,
                                             "greeting_emotion": mood},
                   models=info.models, hearing=info.asr is not None, speaking=info.conversation.tts is not None,
                   memory=info.conversation.memory is not None, notes=info.notes, chat=chat_id,
                   messages=[t.as_message() for t in chats.messages(chat_id)] if chat_id is not None else [])


@companion.delete("/api/companion/sessions/<int:sid>")
def close_session(sid: int):
    return jsonify(closed=companion_sessions().close(sid))


@companion.get("/api/companion/sessions/<int:sid>/events")
def events(sid: int):
    sessions = companion_sessions()
    session = sessions.find(sid)

    def stream() -> Iterator[str]:
        try:
            yield "retry: 1000\n\n"
            for event in session.events(timeout=KEEP_ALIVE):
                if event is None:
                    yield ": still here\n\n"
                    continue
                if event["type"] == "audio":
                    event = {**event, "pcm": base64.b64encode(event["pcm"]).decode()}
                yield f"event: {event['type']}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n"
        finally:  # the window went away: nobody will listen to this session again
            sessions.close(sid)
            session.close()

    return open_stream(stream())


@companion.post("/api/companion/sessions/<int:sid>/say")
def say(sid: int):
    """A typed message of at most ``MESSAGE_CHARS`` (4,000) characters; a longer one is refused with
    400 USAGE naming the limit. One the model's context cannot hold is cut to fit, and a ``note``
    event says so; the turn stops at the ``companion_turn_seconds`` budget or when the session closes."""
    text = _body().get("text")
    if not isinstance(text, str):
        raise UsageError('expected {"text": "..."}')
    _session(sid).say(text)
    return jsonify(ok=True)


# -- chats: listed, new, continued, each message regenerated, swiped, edited, deleted and restored --


@companion.get("/api/companion/characters/<owner>/<name>/chats")
def list_chats(owner: str, name: str):
    return jsonify(chats=chats.list_chats(f"{owner}/{name}"))


@companion.post("/api/companion/characters/<owner>/<name>/chats")
def new_chat(owner: str, name: str):
    from zishu.companion.sessions import companion_character

    rid = companion_character(runtime().registry, f"{owner}/{name}").id
    return jsonify(chat=chats.new_chat(rid).as_dict())


@companion.post("/api/companion/characters/<owner>/<name>/chats/import")
def import_chat(owner: str, name: str):
    """A SillyTavern chat file (.jsonl), uploaded as ``file`` or as the request body: a new chat."""
    from zishu.companion.sessions import companion_character

    rid = companion_character(runtime().registry, f"{owner}/{name}").id
    upload = request.files.get("file")
    chat = chats.import_jsonl(rid, upload.read() if upload is not None else request.get_data())
    return jsonify(chat=chat.as_dict(), messages=len(chats.messages(chat.id)))


@companion.get("/api/companion/chats/<int:cid>")
def chat_messages(cid: int):
    chat = chats.find_chat(cid)
    return jsonify(chat=chat.as_dict(), messages=[t.as_message() for t in chats.messages(cid)])


@companion.get("/api/companion/chats/<int:cid>/export")
def export_chat(cid: int):
    """The chat as a SillyTavern .jsonl file (the chosen branch, each reply with its swipes)."""
    from zishu.companion.sessions import companion_character

    chat = chats.find_chat(cid)
    try:
        character_name = companion_character(runtime().registry, chat.character).name
    except (NotFound, UsageError):  # the character was uninstalled: its chats are still its
        character_name = chat.character.split("/")[-1]
    body = chats.export_jsonl(cid, character_name, request.args.get("user") or "User")
    disposition = f'attachment; filename="{character_name} - chat {cid}.jsonl"'
    return Response(body, mimetype="application/jsonl", headers={"Content-Disposition": disposition})


def _message_work(sid: int):
    """The session's character and memory store, which message changes go through."""
    talk = _session(sid).talk
    return talk.character.id, talk.memory


@companion.post("/api/companion/sessions/<int:sid>/messages/<int:tid>/regenerate")
def regenerate(sid: int, tid: int):
    """Answer again: the reply's events follow on the event stream (``turn`` has ``regenerating``)."""
    session = _session(sid)
    chats.find_turn(tid, session.talk.character.id)
    session.regenerate(tid)
    return jsonify(ok=True)


@companion.post("/api/companion/sessions/<int:sid>/messages/<int:tid>/swipe")
def swipe(sid: int, tid: int):
    to = _body().get("to")
    if not isinstance(to, int) or isinstance(to, bool):
        raise UsageError('expected {"to": n}: the alternative to choose, from 0')
    character, _ = _message_work(sid)
    return jsonify(message=chats.swipe(tid, to, character).as_message())


@companion.put("/api/companion/sessions/<int:sid>/messages/<int:tid>")
def edit_message(sid: int, tid: int):
    """{"text"}: the message's new text; the answer's ``before`` is the old one (what Undo puts back)."""
    text = _body().get("text")
    if not isinstance(text, str):
        raise UsageError('expected {"text": "..."}')
    character, memory = _message_work(sid)
    return jsonify(chats.edit(tid, text, memory, character))


@companion.delete("/api/companion/sessions/<int:sid>/messages/<int:tid>")
def delete_message(sid: int, tid: int):
    character, memory = _message_work(sid)
    return jsonify(message=chats.delete(tid, memory, character).as_message())


@companion.post("/api/companion/sessions/<int:sid>/messages/<int:tid>/restore")
def restore_message(sid: int, tid: int):
    character, memory = _message_work(sid)
    return jsonify(message=chats.restore(tid, memory, character).as_message())


@companion.post("/api/companion/sessions/<int:sid>/audio")
def audio(sid: int):
    if request.mimetype != "application/octet-stream":
        raise UsageError("microphone audio must be sent as application/octet-stream: 16 kHz mono int16 PCM")
    session = _session(sid)
    pcm = request.get_data()
    if pcm:
        session.hear(pcm)
    if request.args.get("end") == "1":
        session.end_of_audio()
    return jsonify(ok=True)


@companion.post("/api/companion/sessions/<int:sid>/playback")
def playback(sid: int):
    body = _body()
    event, sentences = body.get("event"), body.get("sentences", 0)
    if not isinstance(sentences, int) or isinstance(sentences, bool) or sentences < 0:
        raise UsageError('"sentences" must be a whole number of sentences played, 0 or more')
    session = _session(sid)
    if event == "playing":
        session.playing()
    elif event == "heard":
        session.heard(sentences)
    elif event == "barge_in":
        session.barge_in(sentences)
    else:
        raise UsageError(f'"event" must be playing, heard or barge_in, not {event!r}')
    return jsonify(ok=True)


# -- the memory panel -----------------------------------------------------------------------------


def _memories(sid: int):
    from zishu.companion.memory_panel import SessionMemories

    return SessionMemories(_session(sid))


@companion.get("/api/companion/sessions/<int:sid>/memories")
def memories(sid: int):
    rows = _memories(sid).list(include_forgotten=request.args.get("forgotten") == "1")
    return jsonify(memories=[m.as_dict() for m in rows])


@companion.put("/api/companion/sessions/<int:sid>/memories/<int:mid>")
def change_memory(sid: int, mid: int):
    panel = _memories(sid)
    body = _body()
    unknown = set(body) - {"text", "pinned"}
    if unknown or not body:
        raise UsageError('expected {"text": "...", "pinned": true|false} (either or both)')
    if "pinned" in body and not isinstance(body["pinned"], bool):
        raise UsageError('"pinned" must be true or false')
    return jsonify(memory=panel.change(mid, **body).as_dict())


@companion.post("/api/companion/sessions/<int:sid>/memories/<int:mid>/<action>")
def memory_action(sid: int, mid: int, action: str):
    panel = _memories(sid)
    if action not in ("forget", "restore"):
        raise NotFound(f"no memory action {action!r}: use forget or restore")
    changed = panel.forget(mid) if action == "forget" else panel.restore(mid)
    return jsonify(memory=changed.as_dict())


@companion.get("/api/companion/sessions/<int:sid>/memories/export")
def export_memories(sid: int):
    name, exported = _memories(sid).export()
    body = json.dumps(exported, ensure_ascii=False, indent=1)
    disposition = f'attachment; filename="{name}"'
    return Response(body, mimetype="application/json", headers={"Content-Disposition": disposition})


@companion.post("/api/companion/sessions/<int:sid>/memories/delete-all")
def delete_all(sid: int):
    """Erases the character's turns and memories; undo-delete restores them."""
    return jsonify(deleted=_memories(sid).delete_all())


@companion.post("/api/companion/sessions/<int:sid>/memories/undo-delete")
def undo_delete(sid: int):
    return jsonify(restored=_memories(sid).undo_delete())
