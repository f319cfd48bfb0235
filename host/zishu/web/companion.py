"""The companion panel and its transport: talk with a character by text or voice.

The duplex stream is two halves on the same local server, behind the same secret and origin
checks as every other route (a WebSocket would need another server than cheroot):

    GET  /api/companion/sessions/<id>/events     server-sent events: the session's events, audio as base64
    POST /api/companion/sessions/<id>/audio      microphone PCM (16 kHz mono int16), ~100 ms a request
    POST /api/companion/sessions/<id>/say        {"text"}: a typed message
    POST /api/companion/sessions/<id>/playback   {"event": "playing" | "heard" | "barge_in", "sentences": n}

A session opens with ``POST /api/companion/sessions {"character": id}`` (its engines load then) and
closes when its event stream does or on ``DELETE``. The memory panel's routes work on the session's
character with the session's embedding model.
"""

from __future__ import annotations

import base64
import json
import threading

from flask import Blueprint, Response, current_app, jsonify, render_template, request, stream_with_context

from zishu.errors import NotFound, UsageError

from .api import _body
from .app import runtime

companion = Blueprint("companion", __name__)

HEARTBEAT = 15.0  # seconds between keep-alive comments on a quiet event stream
MAX_SESSIONS = 4  # the oldest closes when a fifth opens (a window that reloaded, say)
_lock = threading.Lock()


def _sessions() -> dict:
    return current_app.config.setdefault("ZISHU_COMPANIONS", {})


def _session(sid: int):
    found = _sessions().get(sid)
    if found is None:
        raise NotFound(f"no companion session {sid}: it closed; open the character again")
    return found


@companion.get("/companion")
def panel():
    from zishu.companion.characters import list_characters

    characters = list_characters(runtime())
    chosen = request.args.get("character") or (characters[0]["id"] if characters else None)
    return render_template("companion.html", title="Companion", active="/companion",
                           characters=characters, chosen=chosen)


@companion.post("/api/companion/sessions")
def open_session():
    from zishu.companion.brain import Character
    from zishu.companion.expressions import emotion_map
    from zishu.companion.session import Session, open_companion

    body = _body()
    rid = body.get("character")
    if not isinstance(rid, str) or not rid:
        raise UsageError('expected {"character": "owner/name"}')
    models = body.get("models") or {}
    if not isinstance(models, dict):
        raise UsageError('"models" must be an object: {"llm": id, "asr": id, ...}')
    rt = runtime()
    character = Character.installed(rt.registry, rid)
    character.spec = character.spec.model_copy(update={"emotions": emotion_map(character)})
    session = Session(open_companion(rt, character, models=models))
    with _lock:
        sessions = _sessions()
        while len(sessions) >= MAX_SESSIONS:
            sessions.pop(next(iter(sessions))).close()
        sessions[session.id] = session
    info = session.companion
    greeting = character.spec.greetings[0] if character.spec.greetings else None
    return jsonify(id=session.id, character={"id": rid, "name": character.name, "greeting": greeting},
                   models=info.models, hearing=info.asr is not None, speaking=info.conversation.tts is not None,
                   memory=info.conversation.memory is not None, notes=info.notes)


@companion.delete("/api/companion/sessions/<int:sid>")
def close_session(sid: int):
    with _lock:
        session = _sessions().pop(sid, None)
    if session is not None:
        session.close()
    return jsonify(closed=session is not None)


@companion.get("/api/companion/sessions/<int:sid>/events")
def events(sid: int):
    session = _session(sid)

    @stream_with_context
    def stream():
        try:
            yield "retry: 1000\n\n"
            for event in session.events(timeout=HEARTBEAT):
                if event is None:
                    yield ": still here\n\n"
                    continue
                if event["type"] == "audio":
                    event = {**event, "pcm": base64.b64encode(event["pcm"]).decode()}
                yield f"event: {event['type']}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n"
        finally:  # the window went away: nobody will listen to this session again
            with _lock:
                _sessions().pop(sid, None)
            session.close()

    return Response(stream(), mimetype="text/event-stream", headers={"X-Accel-Buffering": "no"})


@companion.post("/api/companion/sessions/<int:sid>/say")
def say(sid: int):
    text = _body().get("text")
    if not isinstance(text, str):
        raise UsageError('expected {"text": "..."}')
    _session(sid).say(text)
    return jsonify(ok=True)


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


def _memory(sid: int):
    session = _session(sid)
    store = session.talk.memory
    if store is None:
        raise UsageError("this companion keeps no long-term memory: no embedding model could be loaded")
    return session, store


@companion.get("/api/companion/sessions/<int:sid>/memories")
def memories(sid: int):
    session, store = _memory(sid)
    rows = store.memories(session.talk.character.id, include_forgotten=request.args.get("forgotten") == "1")
    return jsonify(memories=[m.as_dict() for m in rows])


@companion.put("/api/companion/sessions/<int:sid>/memories/<int:mid>")
def change_memory(sid: int, mid: int):
    session, store = _memory(sid)
    body = _body()
    unknown = set(body) - {"text", "pinned"}
    if unknown or not body:
        raise UsageError('expected {"text": "...", "pinned": true|false} (either or both)')
    if "pinned" in body and not isinstance(body["pinned"], bool):
        raise UsageError('"pinned" must be true or false')
    _own(session, store, mid)
    if "text" in body:
        store.edit(mid, body["text"])
    if "pinned" in body:
        store.pin(mid, body["pinned"])
    return jsonify(memory=_own(session, store, mid).as_dict())


@companion.post("/api/companion/sessions/<int:sid>/memories/<int:mid>/<action>")
def memory_action(sid: int, mid: int, action: str):
    session, store = _memory(sid)
    if action not in ("forget", "restore"):
        raise NotFound(f"no memory action {action!r}: use forget or restore")
    _own(session, store, mid)
    return jsonify(memory=getattr(store, action)(mid).as_dict())


@companion.get("/api/companion/sessions/<int:sid>/memories/export")
def export_memories(sid: int):
    session, store = _memory(sid)
    rid = session.talk.character.id
    body = json.dumps(store.export(rid), ensure_ascii=False, indent=1)
    name = rid.replace("/", "-") + "-memory.json"
    return Response(body, mimetype="application/json", headers={"Content-Disposition": f'attachment; filename="{name}"'})


@companion.post("/api/companion/sessions/<int:sid>/memories/delete-all")
def delete_all(sid: int):
    """Erases the character's turns and memories; the answer's ``undo`` restores them."""
    session, store = _memory(sid)
    session.undo_delete = store.delete_all(session.talk.character.id)
    session.talk.history.clear()
    erased = session.undo_delete
    return jsonify(deleted={"turns": len(erased.get("turns", [])), "memories": len(erased.get("memories", []))})


@companion.post("/api/companion/sessions/<int:sid>/memories/undo-delete")
def undo_delete(sid: int):
    session, store = _memory(sid)
    erased = getattr(session, "undo_delete", None)
    if erased is None:
        raise UsageError("nothing to undo: no memories were deleted in this session")
    restored = store.import_(session.talk.character.id, erased)
    session.undo_delete = None
    return jsonify(restored=restored)


def _own(session, store, mid: int):
    """Memory ``mid``, which must belong to the session's character."""
    found = [m for m in store.memories(session.talk.character.id, include_forgotten=True) if m.id == mid]
    if not found:
        raise NotFound(f"{session.talk.character.name} has no memory {mid}")
    return found[0]
