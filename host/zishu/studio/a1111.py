"""AUTOMATIC1111's web API on the studio: its payloads mapped to the studio's ``ImageRequest`` and
its answers built from the gallery, so ``web/sdapi.py`` only parses, calls and renders.

    draw(studio, queue, body, img2img=)                    A1111 payload → an ``image`` job, waited for →
                                                            {"images": [base64 PNG], "parameters", "info"};
                                                            A1111Error naming A1111's field
    sd_models(studio) · samplers(studio) · schedulers()    the lists A1111 clients read on connect
    loras(studio) · prompt_styles(studio)
    options(studio) · set_options(studio, body)            the checkpoint is the ``studio_model`` setting
    progress(queue, gallery)                               the running image job: 0..1, eta, preview

Field by field (A1111 → studio): ``prompt`` (``<lora:name:weight>`` tags become ``loras``: the name of
an installed LoRA, its catalog id, or its id@version), ``negative_prompt``, ``seed`` (-1: random),
``sampler_name`` (or the older ``sampler_index``) with ``scheduler`` ("Automatic", or "Karras" for
the sampler's Karras form: "DPM++ 2M" + "karras" = "DPM++ 2M Karras"), ``steps``, ``cfg_scale`` →
``guidance``, ``width``, ``height``, ``batch_size`` × ``n_iter`` → ``batch`` (at most 8),
``styles`` (one Zishu style), ``override_settings.sd_model_checkpoint`` → ``model`` (a title from
``/sdapi/v1/sd-models``: an installed model's id@version); img2img adds ``init_images`` (the
first; base64 or a data URL), ``mask`` and ``denoising_strength`` → ``strength`` (0.75 unless given).
Fields Zishu does not draw with (``enable_hr``, ``restore_faces``, ``tiling``, ``subseed``,
``alwayson_scripts`` …) are accepted, as A1111 accepts fields it does not know, and listed under
``zishu.ignored`` in ``info`` when they ask for something.

A1111 answers a bad payload with FastAPI's 422 ``{"detail": [{"loc": ["body", field], "msg",
"type"}]}``; ``A1111Error.field`` is that field, in A1111's own name (``cfg_scale``, not ``guidance``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from zishu import settings
from zishu.errors import ResourceNotAvailable, UsageError, ZishuError

from .gallery import Gallery
from .requests import MAX_BATCH
from .waiting import Drawn, draw_and_wait, picture_png

DEFAULT_STRENGTH = 0.75  # A1111's img2img denoising_strength
LORA_TAG = re.compile(r"<lora:([^:>]+)(?::([^:>]*))?(?::[^>]*)?>", re.IGNORECASE)
KARRAS = " Karras"
# The studio's field (as its errors name it) → A1111's
A1111_FIELDS = {"guidance": "cfg_scale", "batch": "batch_size", "scheduler": "sampler_name",
                "init_image": "init_images", "mask": "mask", "strength": "denoising_strength",
                "model": "override_settings.sd_model_checkpoint",
                "style": "styles", "loras": "prompt"}
# Fields that ask for something Zishu does not do: named in info's zishu.ignored when they ask for it
# (hr_scale, hr_upscaler … go with enable_hr, which is named when it is on)
IGNORED_WHEN_SET = ("enable_hr", "restore_faces", "tiling", "subseed_strength", "alwayson_scripts", "script_name",
                    "refiner_checkpoint", "inpainting_fill", "inpaint_full_res",
                    "mask_blur", "resize_mode", "image_cfg_scale", "include_init_images")
SCHEDULERS = {"automatic": "Automatic", "karras": "Karras"}  # A1111 1.9's schedulers this maps


class A1111Error(UsageError):
    """A payload field A1111 clients would see refused with 422, named as they name it."""

    http_status = 422

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.detail = message
        super().__init__(f"{field}: {message}")


class Txt2Img(BaseModel):
    """``POST /sdapi/v1/txt2img``'s payload, as A1111 1.x defines it (the fields Zishu reads; others
    are accepted and ignored, as A1111 does)."""

    model_config = ConfigDict(extra="allow")

    prompt: str = ""
    negative_prompt: str = ""
    styles: list[str] | None = None
    seed: int = -1
    sampler_name: str | None = None
    sampler_index: str | None = None
    scheduler: str | None = None
    batch_size: int = Field(default=1, ge=1, le=MAX_BATCH)
    n_iter: int = Field(default=1, ge=1, le=MAX_BATCH)
    steps: int = 50
    cfg_scale: float = 7.0
    width: int = 512
    height: int = 512
    override_settings: dict[str, Any] | None = None

    @field_validator("seed", "batch_size", "n_iter", "steps", "width", "height", mode="before")
    @classmethod
    def _whole(cls, value: Any) -> Any:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()) or not isinstance(
                value, (int, float)):
            raise ValueError(f"must be a whole number, got {value!r}")
        return int(value)


class Img2Img(Txt2Img):
    init_images: list[str] = Field(min_length=1, max_length=1)
    mask: str | None = None
    denoising_strength: float | None = None


def _parsed(model: type[Txt2Img], body: Any) -> Txt2Img:
    if not isinstance(body, dict):
        raise A1111Error("body", "the payload must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        cause = (first.get("ctx") or {}).get("error")
        message = str(cause) if cause is not None else first["msg"]
        if first["type"] == "missing":
            message = "required"
        raise A1111Error(where, message[0].lower() + message[1:]) from None


def _data_url(field: str, value: str) -> str:
    """A picture A1111 clients send (bare base64, or a data URL) as the data URL the studio takes."""
    if value.startswith("data:"):
        return value
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise A1111Error(field, "must be a picture in base64 (PNG, JPEG or WebP) or a data: URL") from None
    return "data:image/png;base64," + value


def sampler(studio: Any, name: str | None, scheduler: str | None, model: str | None = None) -> str | None:
    """The studio's sampler for A1111's ``sampler_name`` + ``scheduler``; A1111Error naming the field."""
    if not name:
        return None
    known = studio.schedulers(model)
    by_name = {n.lower(): n for n in known}
    found = by_name.get(name.lower())
    if found is None:
        raise A1111Error("sampler_name", f"{name!r} is not one of: {', '.join(known) or 'none'}")
    chosen = (scheduler or "automatic").strip().lower()
    if chosen in ("", "automatic"):
        return found
    if chosen != "karras":
        raise A1111Error("scheduler", f"{scheduler!r} is not one of: {', '.join(SCHEDULERS.values())}")
    if found.endswith(KARRAS):
        return found
    karras = by_name.get((found + KARRAS).lower())
    if karras is None:
        with_karras = [n.removesuffix(KARRAS) for n in known if n.endswith(KARRAS)]
        raise A1111Error("scheduler", f"Karras is available with: {', '.join(with_karras) or 'no sampler'}, "
                         f"not with {found!r}")
    return karras


def _loras(studio: Any, prompt: str) -> tuple[str, list[dict]]:
    """The prompt without its ``<lora:name:weight>`` tags, and those LoRAs as studio choices."""
    installed = installed_loras(studio)
    loras = []
    for tag in LORA_TAG.finditer(prompt):
        name, weight = tag.group(1).strip(), (tag.group(2) or "1").strip()
        found = installed.get(name.lower())
        if found is None:
            raise A1111Error("prompt", f"<lora:{name}> is not an installed LoRA (installed: "
                             f"{', '.join(sorted(set(installed.values()))) or 'none'})")
        try:
            value = float(weight)
        except ValueError:
            raise A1111Error("prompt", f"<lora:{name}:{weight}>: the weight must be a number") from None
        loras.append({"id": found, "weight": value})
    return LORA_TAG.sub("", prompt).strip(" ,"), loras


def installed_loras(studio: Any) -> dict[str, str]:
    """Installed LoRAs by every name a client may use (name, owner/name, owner/name@version; any case)."""
    from zishu.resources.engine_models import installed_manifests

    found: dict[str, str] = {}
    for rid, version, manifest in installed_manifests(studio.host.registry):
        if manifest.kind == "lora":
            full = f"{rid}@{version}"
            for name in (rid.split("/", 1)[1], rid, full):
                found.setdefault(name.lower(), full)
    return found


def _request(studio: Any, asked: Txt2Img) -> tuple[dict, list[str]]:
    """The studio request for an A1111 payload, and the A1111 fields it ignores."""
    checkpoint = (asked.override_settings or {}).get("sd_model_checkpoint")
    if checkpoint is not None and not isinstance(checkpoint, str):
        raise A1111Error("override_settings.sd_model_checkpoint", "must be a title from /sdapi/v1/sd-models")
    model = _title_to_model(studio, checkpoint) if checkpoint else None
    if asked.batch_size * asked.n_iter > MAX_BATCH:
        raise A1111Error("batch_size", f"batch_size × n_iter must be at most {MAX_BATCH}, got "
                         f"{asked.batch_size} × {asked.n_iter}")
    if asked.styles and len(asked.styles) > 1:
        raise A1111Error("styles", f"Zishu draws with one style at a time, got {len(asked.styles)}")
    prompt, loras = _loras(studio, asked.prompt)
    request: dict[str, Any] = {
        "prompt": prompt, "negative_prompt": asked.negative_prompt, "width": asked.width, "height": asked.height,
        "steps": asked.steps, "guidance": asked.cfg_scale, "seed": asked.seed, "batch": asked.batch_size * asked.n_iter,
        "scheduler": sampler(studio, asked.sampler_name or asked.sampler_index, asked.scheduler, model)}
    if loras:
        request["loras"] = loras
    if asked.styles:
        request["style"] = asked.styles[0]
    if model:
        request["model"] = model
    if isinstance(asked, Img2Img):
        request["init_image"] = _data_url("init_images", asked.init_images[0])
        if asked.mask:
            request["mask"] = _data_url("mask", asked.mask)
        strength = asked.denoising_strength
        request["strength"] = DEFAULT_STRENGTH if strength is None else strength
    extra = asked.model_extra or {}
    ignored = [name for name in IGNORED_WHEN_SET if extra.get(name) not in (None, False, "", [], {}, 0)]
    return {k: v for k, v in request.items() if v is not None}, ignored


def draw(studio: Any, queue: Any, body: Any, *, img2img: bool = False,
         stopping: threading.Event | None = None) -> dict:
    """``POST /sdapi/v1/txt2img`` (or ``img2img``): the payload drawn as an ``image`` job, waited
    for, and answered as A1111 answers (``images_answer``). Refusals name A1111's field: A1111Error
    (422), or ResourceNotAvailable (404) for a model or LoRA that is not installed."""
    request, ignored = _request(studio, _parsed(Img2Img if img2img else Txt2Img, body))
    try:
        drawn = draw_and_wait(queue, studio.gallery, request, stopping=stopping)
    except A1111Error:
        raise
    except UsageError as e:
        field, _, message = str(e).partition(": ")
        if field and message and " " not in field:
            raise A1111Error(_a1111_field(field), message) from None
        raise A1111Error("body", str(e)) from None
    except ResourceNotAvailable as e:
        field, _, message = str(e).partition(": ")
        if field in A1111_FIELDS:
            raise ResourceNotAvailable(f"{A1111_FIELDS[field]}: {message}", install=e.install) from None
        raise
    return images_answer(studio, drawn, body, ignored)


def _a1111_field(field: str) -> str:
    return A1111_FIELDS.get(field.partition(".")[0], field)


# -- answers ------------------------------------------------------------------------------------------


def images_answer(studio: Any, drawn: Drawn, body: dict, ignored: list[str]) -> dict:
    """A1111's answer: the pictures as base64 PNGs (each with its ``parameters`` chunk), the payload
    echoed as ``parameters``, and ``info`` (a JSON string, as A1111 sends it)."""
    gallery: Gallery = studio.gallery
    rows = drawn.images
    params = drawn.job["params"]
    first = rows[0] if rows else None
    info = {
        "prompt": params.get("prompt", ""), "all_prompts": [r.prompt for r in rows],
        "negative_prompt": params.get("negative_prompt", ""), "all_negative_prompts": [r.negative_prompt for r in rows],
        "seed": first.seed if first else None, "all_seeds": [r.seed for r in rows],
        "subseed": -1, "all_subseeds": [-1 for _ in rows], "subseed_strength": 0,
        "width": params.get("width"), "height": params.get("height"), "sampler_name": params.get("scheduler"),
        "cfg_scale": params.get("guidance"), "steps": params.get("steps"), "batch_size": params.get("batch"),
        "restore_faces": False, "sd_model_name": first.model if first else params.get("model"),
        "sd_model_hash": first.model_hash if first else None, "denoising_strength": params.get("strength"),
        "styles": [params["style"]] if params.get("style") else [], "infotexts": [r.parameters for r in rows],
        "job_timestamp": time.strftime("%Y%m%d%H%M%S", time.localtime(drawn.job.get("created_at") or time.time())),
        "version": "zishu",
        "zishu": {"job": drawn.job["id"], "images": [r.id for r in rows], "cached": drawn.cached,
                  "interrupted": drawn.interrupted, "ignored": ignored,
                  "blocked": {str(r.id): r.blocked_reason for r in rows if r.blocked}},
    }
    echoed = {k: v for k, v in body.items() if k not in ("init_images", "mask")}
    return {"images": [base64.b64encode(picture_png(gallery, row)).decode("ascii") for row in rows],
            "parameters": echoed, "info": json.dumps(info, ensure_ascii=False)}


def _image_models(studio: Any) -> list[tuple[str, Any]]:
    """(id@version, manifest) of every installed model an image engine takes."""
    from zishu.resources.engine_models import installed_manifests

    engines = studio.host.engines.of_kind("image")
    found = []
    for rid, version, manifest in installed_manifests(studio.host.registry):
        spec: Any = getattr(manifest, "spec", None)
        if manifest.kind == "model" and spec.role == "image" and any(spec.format in e.info.formats for e in engines):
            found.append((f"{rid}@{version}", manifest))
    return found


def _title_to_model(studio: Any, title: str) -> str:
    """A title from sd-models (id@version), an id, or A1111's "name [hash]" form, as a model to draw with."""
    bare = re.sub(r"\s*\[[0-9a-f]+\]$", "", title.strip())
    models = _image_models(studio)
    for full, _ in models:
        rid, _, _ = full.partition("@")
        if bare.lower() in (full.lower(), rid.lower(), rid.split("/", 1)[1].lower()):
            return full
    raise A1111Error("sd_model_checkpoint", f"{title!r} is not an installed image model (GET /sdapi/v1/sd-models "
                     f"lists them: {', '.join(f for f, _ in models) or 'none installed'})")


def sd_models(studio: Any) -> list[dict]:
    """``GET /sdapi/v1/sd-models``: the installed image models; the title is what options and
    ``override_settings.sd_model_checkpoint`` take back."""
    listed = []
    for full, manifest in _image_models(studio):
        rid, version = full.split("@", 1)
        listed.append({"title": full, "model_name": rid.split("/", 1)[1], "hash": None, "sha256": None,
                       "filename": str(studio.host.registry.path(rid, version)), "config": None,
                       "name": manifest.name})
    return listed


def samplers(studio: Any) -> list[dict]:
    """``GET /sdapi/v1/samplers``: the default model's engine's samplers, in A1111's shape."""
    try:
        model: str | None = studio.default_model()
    except ResourceNotAvailable:
        model = None
    try:
        names = studio.schedulers(model)
    except ZishuError:
        names = studio.schedulers()
    return [{"name": name, "aliases": [], "options": {"scheduler": "karras"} if name.endswith(KARRAS) else {}}
            for name in names]


def schedulers() -> list[dict]:
    """``GET /sdapi/v1/schedulers`` (A1111 1.9): Automatic, and Karras for the samplers that have it."""
    return [{"name": name, "label": label, "aliases": None, "default_rho": -1, "need_inner_model": False}
            for name, label in SCHEDULERS.items()]


def loras(studio: Any) -> list[dict]:
    """``GET /sdapi/v1/loras``: installed LoRAs; ``<lora:name:weight>`` in a prompt applies one."""
    seen = {}
    for name, full in installed_loras(studio).items():
        if "/" not in name:
            seen[full] = {"name": name, "alias": name, "path": full, "metadata": {}}
    return list(seen.values())


def prompt_styles(studio: Any) -> list[dict]:
    """``GET /sdapi/v1/prompt-styles``: Zishu's styles (built-in and the user's), which ``styles``
    in a payload names; ``prompt`` is the template, ``{prompt}`` standing for the user's prompt."""
    from .styles import styles

    return [{"name": name, "prompt": style.prompt, "negative_prompt": style.negative}
            for name, style in styles(studio.home).items()]


def options(studio: Any) -> dict:
    """``GET /sdapi/v1/options``: what A1111 clients read of it (the checkpoint above all)."""
    try:
        checkpoint: str | None = studio.default_model()
    except ResourceNotAvailable:
        checkpoint = None
    return {"sd_model_checkpoint": checkpoint, "sd_checkpoint_hash": None, "sd_vae": "Automatic",
            "CLIP_stop_at_last_layers": 1, "samples_format": "png", "outdir_samples": str(studio.gallery.folder)}


def set_options(studio: Any, body: Any) -> None:
    """``POST /sdapi/v1/options``: ``sd_model_checkpoint`` (a title from sd-models) becomes the
    studio's model (the ``studio_model`` setting); other options A1111 has are accepted and ignored."""
    if not isinstance(body, dict):
        raise A1111Error("body", "the options must be a JSON object")
    checkpoint = body.get("sd_model_checkpoint")
    if checkpoint is None:
        return
    if not isinstance(checkpoint, str) or not checkpoint.strip():
        raise A1111Error("sd_model_checkpoint", "must be a title from /sdapi/v1/sd-models")
    settings.change({"studio_model": _title_to_model(studio, checkpoint)})


def progress(queue: Any, gallery: Gallery) -> dict:
    """``GET /sdapi/v1/progress``: the image job running longest (A1111 draws one at a time):
    ``progress`` 0..1, ``eta_relative`` in seconds, ``state`` with the step and how many image jobs
    are running or waiting, and ``current_image``: its latest preview as a base64 PNG."""
    from zishu.jobs.records import Job, Status

    active = list(Job.select().where((Job.kind == "image") & Job.status.in_([Status.RUNNING.value,
                                                                             Status.PENDING.value]))
                  .order_by(Job.started_at.is_null(), Job.started_at, Job.id))
    running = next((job for job in active if job.status == Status.RUNNING.value), None)
    state = {"skipped": False, "interrupted": bool(running and running.cancel_requested), "job": "",
             "job_count": len(active), "job_timestamp": "0", "job_no": 0, "sampling_step": 0, "sampling_steps": 0}
    if running is None:
        return {"progress": 0.0, "eta_relative": 0.0, "state": state, "current_image": None, "textinfo": None}
    done = running.progress or 0.0
    elapsed = time.time() - (running.started_at or time.time())
    eta = elapsed / done - elapsed if done > 0 else 0.0
    extra = json.loads(running.extra) if running.extra else {}
    state.update(job=f"job {running.id}", job_timestamp=time.strftime("%Y%m%d%H%M%S",
                                                                      time.localtime(running.started_at or 0)),
                 sampling_step=int(running.done or 0), sampling_steps=int(running.total or 0))
    return {"progress": round(done, 4), "eta_relative": round(max(0.0, eta), 3), "state": state,
            "current_image": _png_from_data_url(extra.get("preview")), "textinfo": running.message or None}


def interrupt(queue: Any) -> list[int]:
    """``POST /sdapi/v1/interrupt``: cancel the image job ``progress`` reports (A1111 stops its one
    running job); its waiting txt2img answers with what it has (no pictures). Returns the ids cancelled."""
    from zishu.jobs.records import Job, Status

    running = (Job.select().where((Job.kind == "image") & (Job.status == Status.RUNNING.value))
               .order_by(Job.started_at, Job.id).first())
    if running is None:
        return []
    queue.cancel(running.id)
    return [running.id]


def _png_from_data_url(url: Any) -> str | None:
    """A preview data URL (the image job writes JPEG) as a base64 PNG, as A1111's current_image is."""
    if not isinstance(url, str) or "," not in url:
        return None
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as image:
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
    except (OSError, ValueError, binascii.Error):
        return None
    return base64.b64encode(buffer.getvalue()).decode("ascii")
