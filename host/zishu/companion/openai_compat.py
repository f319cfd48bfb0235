"""The OpenAI-compatible API's chat side, to OpenAI's spec: the request models (pydantic, so the same
classes can describe the API), the model list, errors in OpenAI's shape, and chat completions as
the character.

    list_models(runtime)                  characters (chat) and raw installed models by capability
    find_model(runtime, id)               one of them; 404 ``model_not_found`` listing what exists
    parsed(Model, body)                   a request body checked against a model; 400 naming the field
    error_body(status, code, message, param)  {"error": {"message", "type", "param", "code"}}
    ChatCompletion(sessions, runtime, request, remember)
                                          one /v1/chat/completions request: ``answer()`` or ``chunks()``

A completion answers as the character (its persona, lorebook and memories; the client's system
messages are ignored), ``n`` replies one after another (only the first is remembered), each with
``finish_reason`` "stop" or "length" (cut at ``max_completion_tokens``, or ``max_tokens``), and
``usage`` counted with the model's tokenizer. ``remember=False`` (the ``X-Zishu-Memory: off`` header,
or ``user`` set to ``MEMORY_OFF_USER``) recalls memories but writes nothing to them.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, ValidationError

from zishu.engines.kinds import ChatOptions
from zishu.errors import NotFound, UsageError, ZishuError

from .limits import checked_conversation
from .stream_text import join_spoken

MEMORY_OFF_USER = "zishu-memory-off"  # the ``user`` value that opts a request out of memory writes
MAX_CHOICES = 8  # ``n``: replies one request may ask for
OPENAI_SPEECH_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")  # "let the voice choose"
OPENAI_TRANSCRIPTION_MODELS = ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe")  # the default ASR
LISTED = 20  # model ids an error message names at most
# what each role of raw model serves, as /v1/models tells it
ROLE_ENDPOINTS = {"embedding": ["/v1/embeddings"], "tts": ["/v1/audio/speech"], "asr": ["/v1/audio/transcriptions"],
                  "llm": [], "image": ["/v1/images/generations"], "vad": []}


# -- errors -----------------------------------------------------------------------------------------


class BadParam(UsageError):
    """A request field that is wrong: 400, with OpenAI's ``param`` naming it."""

    def __init__(self, param: str | None, message: str) -> None:
        self.param = param
        super().__init__(message)


class UnknownModel(NotFound):
    """No model by that id here (or none that does what was asked): 404 ``model_not_found``, naming
    the ones that exist."""

    openai_code = "model_not_found"

    def __init__(self, message: str, param: str = "model") -> None:
        self.param = param
        super().__init__(message)


def error_type(status: int) -> str:
    """OpenAI's ``error.type`` for an HTTP status."""
    if status in (401,):
        return "authentication_error"
    if status == 403:
        return "permission_error"
    if status == 404:
        return "invalid_request_error"
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def error_body(status: int, code: str, message: str, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": error_type(status), "param": param, "code": code}}


def zishu_error_body(e: ZishuError) -> dict:
    """A ZishuError in OpenAI's shape; ``code`` is Zishu's own (``model_not_found`` for an unknown model)."""
    return error_body(e.http_status, getattr(e, "openai_code", e.code), str(e), getattr(e, "param", None))


# -- request models ---------------------------------------------------------------------------------


class OpenAIRequest(BaseModel):
    """Fields OpenAI defines that Zishu does not use (``logit_bias``, ``presence_penalty`` …) are
    accepted and ignored, as OpenAI-compatible servers do."""

    model_config = ConfigDict(extra="allow")


R = TypeVar("R", bound=BaseModel)


def field_name(loc: tuple) -> str:
    """A pydantic location as the request writes it: ``messages[1].content``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not str(part).startswith(("str", "list[", "function-", "literal[", "int", "float", "bool")) or not out:
            out += f".{part}" if out else str(part)
    return out


def parsed(model: type[R], body: dict) -> R:
    """``body`` as ``model``; BadParam naming the first wrong field."""
    try:
        return model.model_validate(body)
    except ValidationError as e:
        first = e.errors()[0]
        where = field_name(tuple(first["loc"]))
        raise BadParam(where or None, f'"{where}": {first["msg"]}' if where else first["msg"]) from None


class ContentPart(OpenAIRequest):
    type: str
    text: str | None = None


class ChatMessage(OpenAIRequest):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: keep the text ones
            return "".join(p.text or "" for p in self.content if p.type == "text")
        return self.content or ""


class StreamOptions(OpenAIRequest):
    include_usage: StrictBool = False


class ChatCompletionRequest(OpenAIRequest):
    model: str | None = Field(None, description="A character id from GET /v1/models, e.g. local/mei.")
    messages: list[ChatMessage]
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    max_completion_tokens: Annotated[StrictInt, Field(ge=1)] | None = None
    max_tokens: Annotated[StrictInt, Field(ge=1)] | None = Field(
        None, description="The older name of max_completion_tokens.")
    n: Annotated[StrictInt, Field(ge=1, le=MAX_CHOICES)] = 1
    temperature: Annotated[StrictFloat | StrictInt, Field(ge=0, le=2)] | None = None
    top_p: Annotated[StrictFloat | StrictInt, Field(ge=0, le=1)] | None = None
    seed: StrictInt | None = None
    stop: str | list[str] | None = None
    user: str | None = Field(None, description=f'"{MEMORY_OFF_USER}": write nothing to the character\'s memory.')


# -- models -----------------------------------------------------------------------------------------


def _created(records: dict) -> int:
    """When the newest version was installed, as a Unix time (0 when the registry does not say)."""
    times = []
    for record in records.values():
        try:
            times.append(int(dt.datetime.fromisoformat(record["installed_at"]).timestamp()))
        except (KeyError, TypeError, ValueError):
            continue
    return max(times, default=0)


def list_models(runtime: Any) -> list[dict]:
    """Every model a /v1 client may name: characters first (chat, and speech with their voice), then
    raw installed models and voices, each with ``zishu.kind``, ``zishu.role`` and the endpoints it serves."""
    from .characters import list_characters
    from .session import installed_models

    registry = runtime.registry.load()
    found = [{"id": c["id"], "object": "model", "created": _created(registry.get(c["id"], {})),
              "owned_by": c["id"].split("/")[0],
              "zishu": {"kind": "character", "name": c.get("name"), "role": None,
                        "endpoints": ["/v1/chat/completions", "/v1/audio/speech"]}}
             for c in list_characters(runtime)]
    for role, ids in sorted(installed_models(runtime.registry).items()):
        for rid in ids:
            found.append({"id": rid, "object": "model", "created": _created(registry.get(rid, {})),
                          "owned_by": rid.split("/")[0],
                          "zishu": {"kind": "model", "role": role, "endpoints": ROLE_ENDPOINTS.get(role, [])}})
    for rid, records in sorted(registry.items()):
        voice = isinstance(records, dict) and any(isinstance(r, dict) and r.get("kind") == "voice"
                                                  for r in records.values())
        if voice:
            found.append({"id": rid, "object": "model", "created": _created(records), "owned_by": rid.split("/")[0],
                          "zishu": {"kind": "voice", "role": "tts", "endpoints": ["/v1/audio/speech"]}})
    return found


def named(ids: list[str]) -> str:
    """Ids for an error message: at most LISTED of them, or "none installed"."""
    if not ids:
        return "none is installed"
    more = f" and {len(ids) - LISTED} more" if len(ids) > LISTED else ""
    return ", ".join(ids[:LISTED]) + more


def find_model(runtime: Any, mid: str, endpoint: str | None = None, param: str = "model") -> dict:
    """The listed model ``mid`` (serving ``endpoint`` when given); UnknownModel naming those that do."""
    models = list_models(runtime)
    serving = [m for m in models if endpoint is None or endpoint in m["zishu"]["endpoints"]]
    for m in serving:
        if m["id"] == mid:
            return m
    what = f"for {endpoint} " if endpoint else ""
    other = next((m for m in models if m["id"] == mid), None)
    why = f"{mid!r} is a {other['zishu']['role'] or other['zishu']['kind']} model, not one " if other else \
        f"there is no model {mid!r} "
    raise UnknownModel(f"{why}{what}here; the models {what}are: {named([m['id'] for m in serving])} "
                       "(GET /v1/models lists them)", param)


# -- chat completions -------------------------------------------------------------------------------


def conversation_of(messages: list[ChatMessage]) -> tuple[list[dict], str]:
    """The history before the last message, and the last one, which must be the user's; system (and
    developer) messages are left out: the character's persona is the system prompt."""
    if not messages:
        raise BadParam("messages", '"messages" must be a non-empty list of {"role", "content"}')
    texts = [m.text() for m in messages]
    checked_conversation(texts)
    history = [{"role": m.role, "content": text} for m, text in zip(messages, texts, strict=True)
               if m.role in ("user", "assistant")]
    if not history or history[-1]["role"] != "user" or not history[-1]["content"].strip():
        raise BadParam("messages", "the last message must be the user's, with some text")
    return history[:-1], history[-1]["content"]


def chat_options(request: ChatCompletionRequest) -> ChatOptions:
    chosen: dict[str, Any] = {"max_tokens": request.max_completion_tokens or request.max_tokens or 512}
    if request.temperature is not None:
        chosen["temperature"] = float(request.temperature)
    if request.top_p is not None:
        chosen["top_p"] = float(request.top_p)
    if request.seed is not None:
        chosen["seed"] = request.seed
    if request.stop is not None:
        chosen["stop"] = (request.stop,) if isinstance(request.stop, str) else tuple(request.stop)
    return ChatOptions(**chosen)


class ChatCompletion:
    """One /v1/chat/completions request as the character. Construction checks the request and starts
    the first reply, up to the point its prompt is built, so that errors come before any answer and
    ``notes`` (the X-Zishu-Note header: the last message was cut to fit) are known; then either
    ``answer()`` (the whole completion) or ``chunks()`` (chat.completion.chunk objects) gives it."""

    def __init__(self, sessions: Any, runtime: Any, request: ChatCompletionRequest, remember: bool = True) -> None:
        if not request.model:
            raise BadParam("model", '"model" must name an installed character, e.g. "local/mei" '
                                    "(GET /v1/models lists them)")
        find_model(runtime, request.model, "/v1/chat/completions")
        self.request, self.sessions, self.remember = request, sessions, remember
        self.history, self.last = conversation_of(request.messages)
        self.options = chat_options(request)
        self.id, self.created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        self.notes: dict[str, str] = {}
        self._first = self._start(0)

    def _start(self, index: int) -> _Primed:
        """Reply ``index``, primed: its turn event (and its note, if any) already read."""
        talk = self.sessions.text_chat(self.request.model, self.options, remember=self.remember and index == 0)
        replying = talk.reply(self.last, history=self.history)
        first = next(replying)  # the "turn" event: the prompt is built (and a note follows) before any answer
        after = next(replying)
        if after["type"] == "note" and index == 0:
            self.notes["X-Zishu-Note"] = after["message"]
        return _Primed([first, after], replying)

    def _replies(self) -> Iterator[tuple[int, _Primed]]:
        yield 0, self._first
        for index in range(1, self.request.n):
            yield index, self._start(index)

    def close(self) -> None:
        self._first.close()

    def answer(self) -> dict:
        choices, usage = [], {"prompt_tokens": 0, "completion_tokens": 0}
        for index, replying in self._replies():
            try:
                done = next(e for e in replying if e["type"] == "done")
            finally:
                replying.close()
            _add(usage, done)
            choices.append({"index": index, "message": {"role": "assistant", "content": done["text"]},
                            "logprobs": None, "finish_reason": done["finish_reason"]})
        return {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.request.model,
                "choices": choices, "usage": _total(usage)}

    def chunks(self) -> Iterator[dict]:
        """The streamed completion; with ``stream_options.include_usage`` every chunk has
        ``usage: null`` and a last one has no choices and the usage."""
        counted = bool(self.request.stream_options and self.request.stream_options.include_usage)
        usage = {"prompt_tokens": 0, "completion_tokens": 0}

        def chunk(choices: list[dict], **more) -> dict:
            extra = {"usage": None} if counted else {}
            return {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                    "model": self.request.model, "choices": choices, **extra, **more}

        for index, replying in self._replies():
            said, finish = "", "stop"
            try:
                yield chunk([{"index": index, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
                for event in replying:
                    if event["type"] == "sentence":
                        longer = join_spoken([said, event["text"]])
                        yield chunk([{"index": index, "delta": {"content": longer[len(said):]}, "finish_reason": None}])
                        said = longer
                    elif event["type"] == "done":
                        finish = event["finish_reason"]
                        _add(usage, event)
                yield chunk([{"index": index, "delta": {}, "finish_reason": finish}])
            finally:  # the client went away (or the reply ended): stop generating for nobody
                replying.close()
        if counted:
            yield chunk([], usage=_total(usage))


class _Primed:
    """A reply whose first events were read already: they come first, then the rest; ``close()``
    stops the reply (even when nothing more was read)."""

    def __init__(self, first: list[dict], rest: Iterator[dict]) -> None:
        self._first, self._rest = list(first), rest

    def __iter__(self) -> _Primed:
        return self

    def __next__(self) -> dict:
        return self._first.pop(0) if self._first else next(self._rest)

    def close(self) -> None:
        close = getattr(self._rest, "close", None)
        if close is not None:
            close()


def _add(usage: dict, done: dict) -> None:
    for key, value in (done.get("usage") or {}).items():
        usage[key] += value


def _total(usage: dict) -> dict:
    return {**usage, "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"]}


def memory_opt_out(header: str | None, user: str | None) -> bool:
    """Whether this request asks that nothing be written to memory: ``X-Zishu-Memory: off`` or
    ``user`` = MEMORY_OFF_USER. Another header value than on/off is a 400 naming it."""
    if header is not None and header.strip().lower() not in ("on", "off"):
        raise BadParam(None, f"X-Zishu-Memory: {header[:20]!r}: expected on or off")
    return (header or "").strip().lower() == "off" or user == MEMORY_OFF_USER
