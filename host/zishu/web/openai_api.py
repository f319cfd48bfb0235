"""An OpenAI-compatible chat endpoint, so other local tools can talk to a character.

    GET  /v1/models              the installed characters, as models
    POST /v1/chat/completions    {"model": "owner/character", "messages": [...], "stream": bool, ...}

The character answers as in the companion panel: its persona, lorebook and long-term memories, with
the client's messages as the short-term history (the client keeps its own; system messages from the
client are ignored: the character's persona is the system prompt). The exchange is remembered like
any other turn. Replies are the spoken text: emotion tags are taken out, so a reply of only a tag
(or cut at ``max_tokens`` before any word) is an empty message, never an error; ``finish_reason``
is "length" when the model was cut at ``max_tokens``. The same secret guards it
as every other route: send ``Authorization: Bearer <secret>`` (the ``api_key`` of an OpenAI client).

Limits: each message at most 4,000 characters and all of them at most 64,000 together
(``zishu.companion.limits``), else 400 USAGE naming the limit. The history is cut to the model's
context, oldest first; when the last message itself had to be cut, the ``X-Zishu-Note`` header says
so. A completion has the ``companion_turn_seconds`` budget (waiting for a busy model included); a
streamed one stops when the client disconnects. A model busy with more queued replies than it takes
answers 503 ENGINE_FAILED at once.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Iterator

from flask import Blueprint, Response, jsonify, stream_with_context

from zishu.companion.limits import checked_conversation
from zishu.companion.stream_text import join_spoken
from zishu.engines.kinds import ChatOptions
from zishu.errors import UsageError

from .api import _body
from .app import runtime
from .companion import companion_sessions

openai_api = Blueprint("openai_api", __name__)

ROLES = ("system", "user", "assistant")


@openai_api.get("/v1/models")
def models():
    from zishu.companion.characters import list_characters

    return jsonify(object="list", data=[{"id": c["id"], "object": "model", "owned_by": c["id"].split("/")[0]}
                                        for c in list_characters(runtime())])


@openai_api.post("/v1/chat/completions")
def chat_completions():
    """A reply as the character; each message at most 4,000 characters and all of them at most
    64,000 (400 USAGE naming the limit); see the module docstring for the context fit and the budget."""
    body = _body()
    rid = body.get("model")
    if not isinstance(rid, str) or not rid:
        raise UsageError('"model" must name an installed character, e.g. "local/mei" (GET /v1/models lists them)')
    history, last = _messages(body.get("messages"))
    talk = companion_sessions().text_chat(rid, _options(body))
    reply_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def chunk(delta: dict, finish: str | None = None) -> str:
        data = {"id": reply_id, "object": "chat.completion.chunk", "created": created, "model": rid,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

    replying = talk.reply(last, history=history)
    first = next(replying)  # the "turn" event: the prompt is built (and a note follows) before any answer
    after = next(replying)
    notes = {"X-Zishu-Note": after["message"]} if after["type"] == "note" else {}
    events = itertools.chain([first, after], replying)
    if not body.get("stream"):
        try:
            done = next(e for e in events if e["type"] == "done")
        finally:
            replying.close()
        choice = {"index": 0, "message": {"role": "assistant", "content": done["text"]},
                  "finish_reason": done["finish_reason"]}
        answer = jsonify(id=reply_id, object="chat.completion", created=created, model=rid, choices=[choice])
        answer.headers.update(notes)
        return answer

    def stream() -> Iterator[str]:
        said, finish = "", "stop"
        try:
            yield chunk({"role": "assistant", "content": ""})
            for event in events:
                if event["type"] == "sentence":
                    longer = join_spoken([said, event["text"]])
                    yield chunk({"content": longer[len(said):]})
                    said = longer
                elif event["type"] == "done":
                    finish = event["finish_reason"]
            yield chunk({}, finish)
            yield "data: [DONE]\n\n"
        finally:  # the client went away (or the reply ended): stop generating for nobody
            replying.close()

    return Response(stream_with_context(stream()), mimetype="text/event-stream",
                    headers={"X-Accel-Buffering": "no", **notes})


def _messages(messages) -> tuple[list[dict], str]:
    """The history before the last message, and the last one, which must be the user's."""
    if not isinstance(messages, list) or not messages:
        raise UsageError('"messages" must be a non-empty list of {"role", "content"}')
    history: list[dict] = []
    checked: list[str] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise UsageError(f"messages[{i}]: expected a role of {', '.join(ROLES)}")
        content = message.get("content")
        if isinstance(content, list):  # content parts: keep the text ones
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
        if not isinstance(content, str):
            raise UsageError(f"messages[{i}].content: expected text")
        checked.append(content)
        if message["role"] != "system":
            history.append({"role": message["role"], "content": content})
    checked_conversation(checked)
    if not history or history[-1]["role"] != "user" or not history[-1]["content"].strip():
        raise UsageError("the last message must be the user's, with some text")
    return history[:-1], history[-1]["content"]


def _options(body: dict) -> ChatOptions:
    fields = {"max_tokens": int, "temperature": float, "top_p": float, "seed": int}
    chosen = {}
    for name, kind in fields.items():
        value = body.get(name)
        if value is None:
            continue
        not_a_number = isinstance(value, bool) or not isinstance(value, (int, float))
        if not_a_number or (kind is int and not float(value).is_integer()):
            raise UsageError(f'"{name}" must be a number')
        chosen[name] = kind(value)
    if chosen.get("max_tokens", 1) < 1:
        raise UsageError('"max_tokens" must be 1 or more')
    stop = body.get("stop")
    if stop is not None:
        stop = [stop] if isinstance(stop, str) else stop
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise UsageError('"stop" must be a string or a list of strings')
        chosen["stop"] = tuple(stop)
    return ChatOptions(**{"max_tokens": 512, **chosen})

