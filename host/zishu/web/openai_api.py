"""The OpenAI-compatible API, so the tools people already use (SillyTavern, Open WebUI, any OpenAI
client) can talk to Zishu's characters and models:

    GET  /v1/models                  characters and raw installed models, each with what it serves
    GET  /v1/models/<id>             one of them (404 model_not_found naming those that exist)
    POST /v1/chat/completions        as a character: usage, stream_options.include_usage, n,
                                     max_completion_tokens, finish_reason stop|length
    POST /v1/embeddings              input a text or a list; encoding_format float|base64
    POST /v1/audio/speech            voice: a Zishu voice or character; mp3, opus, aac, flac, wav, pcm,
                                     sent in chunks as they are synthesised
    POST /v1/audio/transcriptions    multipart; json, text, verbose_json (segments), srt, vtt
    POST /v1/images/generations      prompt, model, n (1–8), size "WxH", response_format b64_json | url
                                     (``zishu.studio.openai_images``); waits for the image job
    GET  /v1/images/files/<file>     a picture a ``url`` answer names (behind the same key)

Routes parse, call ``zishu.companion.openai_compat``/``openai_media`` and render. Errors come in
OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, with the HTTP status of the
error's class (``code`` is Zishu's own, ``model_not_found`` for an unknown model). A chat completion
is remembered like any other turn unless the request opts out: header ``X-Zishu-Memory: off``, or
``"user": "zishu-memory-off"``. The same secret guards these routes as every other: send
``Authorization: Bearer <secret>`` (the ``api_key`` of an OpenAI client).

Limits: each chat message at most 4,000 characters and all of them at most 64,000 together
(``zishu.companion.limits``), else 400 naming the limit. The history is cut to the model's context,
oldest first; when the last message itself had to be cut, the ``X-Zishu-Note`` header says so. A
completion has the ``companion_turn_seconds`` budget; a streamed one stops when the client
disconnects. An uploaded audio file may be 25 MiB.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import unquote

from flask import Blueprint, Response, jsonify, request, stream_with_context
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from zishu.companion import openai_compat as compat
from zishu.companion import openai_media as media
from zishu.errors import ZishuError
from zishu.studio import openai_images as images
from zishu.studio.waiting import picture_png

from .api import _body
from .app import runtime
from .companion import companion_sessions

openai_api = Blueprint("openai_api", __name__)

FORM_OVERHEAD = 64 * 1024  # the multipart form around an uploaded file


@openai_api.errorhandler(ZishuError)
def _zishu_error(e: ZishuError):
    return jsonify(compat.zishu_error_body(e)), e.http_status


@openai_api.errorhandler(HTTPException)
def _http_error(e: HTTPException):
    status = e.code or 500
    message = e.description or e.name
    if isinstance(e, RequestEntityTooLarge):
        message = f"the request body is more than {request.max_content_length} bytes, the limit for this request"
    return jsonify(compat.error_body(status, (e.name or "error").upper().replace(" ", "_"), message)), status


@openai_api.get("/v1/models")
def models():
    return jsonify(object="list", data=compat.list_models(runtime()))


@openai_api.get("/v1/models/<path:model>")
def model(model: str):
    # the openai client quotes the id's slash (acme%2Fmei), which the server may pass on as it came
    return jsonify(compat.find_model(runtime(), unquote(model)))


@openai_api.post("/v1/chat/completions")
def chat_completions():
    """A reply as the character; see the module docstring for the limits and the memory opt-out."""
    asked = compat.parsed(compat.ChatCompletionRequest, _body())
    remember = not compat.memory_opt_out(request.headers.get("X-Zishu-Memory"), asked.user)
    completion = compat.ChatCompletion(companion_sessions(), runtime(), asked, remember)
    if not asked.stream:
        try:
            answer = jsonify(completion.answer())
        finally:
            completion.close()
        answer.headers.update(completion.notes)
        return answer

    def stream() -> Iterator[str]:
        try:
            for chunk in completion.chunks():
                yield f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"
            yield "data: [DONE]\n\n"
        finally:  # the client went away (or the reply ended): stop generating for nobody
            completion.close()

    return Response(stream_with_context(stream()), mimetype="text/event-stream",
                    headers={"X-Accel-Buffering": "no", **completion.notes})


@openai_api.post("/v1/embeddings")
def embeddings():
    return jsonify(media.embeddings(runtime(), compat.parsed(media.EmbeddingRequest, _body())))


@openai_api.post("/v1/audio/speech")
def speech():
    spoken = media.Speech(runtime(), compat.parsed(media.SpeechRequest, _body()))

    def audio() -> Iterator[bytes]:
        try:
            yield from spoken.audio()
        finally:
            spoken.close()

    return Response(stream_with_context(audio()), mimetype=spoken.media_type,
                    headers={"X-Accel-Buffering": "no", "X-Zishu-Sample-Rate": str(spoken.rate)})


@openai_api.post("/v1/audio/transcriptions")
def transcriptions():
    request.max_content_length = media.MAX_AUDIO_BYTES + FORM_OVERHEAD
    upload = request.files.get("file")
    if upload is None:
        raise compat.BadParam("file", 'send the audio as the multipart form field "file"')
    asked = compat.parsed(media.TranscriptionRequest, request.form.to_dict())
    body, media_type = media.transcription(runtime(), upload.read(), asked)
    return Response(body, content_type=media_type)


@openai_api.post("/v1/images/generations")
def image_generations():
    """Pictures from the studio; ``url`` answers point at ``/v1/images/files`` on this same server."""
    rt = runtime()
    asked = compat.parsed(images.ImageGenerationRequest, _body())
    base = request.host_url.rstrip("/")
    return jsonify(images.generate(rt.studio, rt.jobs, asked, lambda row: f"{base}/v1/images/files/{row.file}",
                                   stopping=rt.stopping))


@openai_api.get("/v1/images/files/<path:relative>")
def image_file(relative: str):
    gallery = runtime().studio.gallery
    return Response(picture_png(gallery, images.picture_at(gallery, relative)), mimetype="image/png")
