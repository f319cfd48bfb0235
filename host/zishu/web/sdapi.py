"""AUTOMATIC1111's web API, so SillyTavern's image generation and other A1111 clients can draw
with Zishu (docs/a1111-api.md). The mapping lives in ``zishu.studio.a1111``; these routes parse,
call it and render.

    POST /sdapi/v1/txt2img                 an ``image`` job, waited for: {"images": [base64 PNG],
    POST /sdapi/v1/img2img                 "parameters": the payload, "info": a JSON string}
    GET  /sdapi/v1/progress                the running image job: progress 0..1, eta, current_image
    POST /sdapi/v1/interrupt | /skip       cancel that job
    GET  /sdapi/v1/sd-models               installed image models (title: id@version)
    GET  /sdapi/v1/options                 sd_model_checkpoint: the studio's model
    POST /sdapi/v1/options                 {"sd_model_checkpoint": title} sets it (the studio_model setting)
    GET  /sdapi/v1/samplers | /schedulers | /loras | /prompt-styles (Zishu's styles) | /upscalers
         | /latent-upscale-modes | /sd-vae
    POST /sdapi/v1/refresh-checkpoints | /refresh-loras   (nothing to do: the lists are read each time)

Behind the same guard as ``/v1``: on the local API port the key (``Authorization: Bearer <key>``,
or HTTP Basic with the key as the password, which is what A1111 clients send: SillyTavern's
"SD WebUI auth" field ``zishu:<key>``); on the app's own port its secret. A bad payload is 422 in
FastAPI's shape, naming A1111's field (``{"detail": [{"loc": ["body", "width"], "msg", "type"}]}``);
other errors come as A1111's ``{"error", "detail", "body", "errors"}`` with the error's HTTP status.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from werkzeug.exceptions import HTTPException

from zishu.errors import ZishuError
from zishu.studio import a1111

from .api import _body
from .app import runtime

sdapi = Blueprint("sdapi", __name__, url_prefix="/sdapi/v1")
MAX_IMG2IMG_BODY = 48 * 1024 * 1024  # an init picture and a mask, in base64


@sdapi.errorhandler(a1111.A1111Error)
def _field_error(e: a1111.A1111Error):
    loc = ["body", *e.field.split(".")] if e.field != "body" else ["body"]
    return jsonify(detail=[{"loc": loc, "msg": e.detail, "type": "value_error"}], error="UnprocessableEntity",
                   errors=str(e)), 422


@sdapi.errorhandler(ZishuError)
def _zishu_error(e: ZishuError):
    return jsonify(error=e.code, detail=str(e), body="", errors=str(e)), e.http_status


@sdapi.errorhandler(HTTPException)
def _http_error(e: HTTPException):
    message = e.description or e.name
    return jsonify(error=e.name, detail=message, body="", errors=message), e.code or 500


def _studio():
    return runtime().studio


@sdapi.post("/txt2img")
def txt2img():
    rt = runtime()
    return jsonify(a1111.draw(rt.studio, rt.jobs, _body(), stopping=rt.stopping))


@sdapi.post("/img2img")
def img2img():
    request.max_content_length = MAX_IMG2IMG_BODY
    rt = runtime()
    return jsonify(a1111.draw(rt.studio, rt.jobs, _body(), img2img=True, stopping=rt.stopping))


@sdapi.get("/progress")
def progress():
    rt = runtime()
    return jsonify(a1111.progress(rt.jobs, rt.studio.gallery))


@sdapi.post("/interrupt")
@sdapi.post("/skip")
def interrupt():
    """Stop the running image job between two steps (A1111's interrupt and skip)."""
    return jsonify(a1111.interrupt(runtime().jobs) and None)


@sdapi.get("/sd-models")
def sd_models():
    return jsonify(a1111.sd_models(_studio()))


@sdapi.get("/options")
def options():
    return jsonify(a1111.options(_studio()))


@sdapi.post("/options")
def set_options():
    a1111.set_options(_studio(), _body())
    return jsonify(None)


@sdapi.get("/samplers")
def samplers():
    return jsonify(a1111.samplers(_studio()))


@sdapi.get("/schedulers")
def schedulers():
    """The noise schedules A1111 clients may name (only "Automatic" changes nothing here)."""
    return jsonify(a1111.schedulers())


@sdapi.get("/loras")
def loras():
    """The installed LoRAs, as A1111 lists them for a `<lora:name:weight>` tag."""
    return jsonify(a1111.loras(_studio()))


@sdapi.get("/upscalers")
def upscalers():
    """The hires-fix upscalers: only A1111's own "None" (enable_hr is ignored)."""
    return jsonify([{"name": "None", "model_name": None, "model_path": None, "model_url": None, "scale": 4}])


@sdapi.get("/prompt-styles")
def prompt_styles():
    """The studio's styles as A1111 prompt styles (name, prompt, negative_prompt)."""
    return jsonify(a1111.prompt_styles(_studio()))


@sdapi.get("/latent-upscale-modes")
@sdapi.get("/sd-vae")
def empty_list():
    """Lists A1111 clients ask for that Zishu has nothing in (VAEs, latent upscale modes): []."""
    return jsonify([])


@sdapi.post("/refresh-checkpoints")
@sdapi.post("/refresh-loras")
def refresh():
    """A1111's refresh of its model lists: Zishu reads the installed models at each request."""
    return jsonify(None)
