"""``Studio``: the one service every interface calls to make pictures (the REST API, the ``image``
job, ``zishu image``, and the A1111, OpenAI and MCP surfaces built on them).

- ``prepare(data)`` checks a request before anything is queued: its fields (``requests``), then its
  character and style expanded (``expanders``), then against the model: the model installed (default:
  the ``studio_model`` setting, else the first image model installed), sizes within its limits, the
  sampler among its engine's, each LoRA installed and made for the model's base (catalog
  ``spec.base_model``), img2img/inpaint/control only with an engine that has the capability, and
  their pictures decoded (``pictures``: a gallery id, a data URL or base64) with the ControlNet for
  the model's family found (``postprocess.controlnet_model``). Every refusal is a UsageError (400) or
  ResourceNotAvailable (404) naming the field; a missing ControlNet is a 400 saying what to install.
- ``generate(data, progress=, cancelled=, preview=)`` draws (or returns the cached pictures of an
  identical request, without the engine), writes each picture to the gallery and returns the rows.
  The pipeline comes from the engine cache (``engines.use``): it stays loaded between requests. The
  pictures go to the engine's own ``ImageRequest`` fields (``init_image``, ``mask_image``,
  ``strength``, ``control_image``, ``control_kind``, ``control_scale``, ``control_model``).

What the user asked and what is drawn are kept apart: ``Prepared.asked`` is the user's own fields
(with the model filled in), which the ``image`` job queues and the gallery keeps for "reuse these
settings"; ``Prepared.request`` is the expanded request that is drawn, whose prompt the picture's
A1111 text holds. So a style's template or a character's appearance is applied exactly once per
drawing, however often a request is queued, retried or reused.

Other wings hook in without this module knowing them: ``expanders`` turn a request's character and
style into prompt, LoRAs and defaults (the built-in ``expanders.DrawAsCharacter`` and ``DrawInStyle``
come first); ``prompt_checks`` may refuse a request (raise UsageError); ``image_checks`` return a
reason to block a picture, which then stays in the gallery marked blocked. Safe mode (``safety``:
the prompt filter's word lists and the ``check_image`` plugins) is the first of each list, and is
forced on for a character marked ``audience: all-ages`` (``safety.safe_mode_for``).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zishu import settings
from zishu.engines import CONTROL_KINDS, Engine, ModelRef, resolve_model, use
from zishu.engines import ImageRequest as EngineRequest
from zishu.engines.use import Host
from zishu.errors import ResourceNotAvailable, UsageError

from .cache import cache_key
from .characters import character_of
from .expanders import DrawAsCharacter, DrawInStyle
from .gallery import Gallery, StudioImage
from .hashes import ModelHashes, short
from .metadata import number, parameters_text
from .pictures import as_mask, flat, open_picture
from .postprocess import Capability, capabilities, controlnet_model, suggest_install
from .requests import MAX_SIDE, MIN_SIDE, ImageRequest
from .safety import check_images, check_prompt, image_check_context, safe_mode_for

Progress = Callable[[int, int], None]
Preview = Callable[[int, int, Any], None]
CAPABLE = {"init_image": "img2img", "mask": "inpaint", "control": "controlnet"}
STARTER_MODEL = "stabilityai/sd-turbo"  # offered when no image model is installed: the catalog's quickest to draw


@dataclass(frozen=True)
class Pictures:
    """The pictures a request draws from, decoded, and the ControlNet that follows ``control_image``."""

    init_image: Any = None
    mask_image: Any = None
    control_image: Any = None
    control_model: ModelRef | None = None


@dataclass(frozen=True)
class Prepared:
    """A request checked against its model: what ``generate`` draws."""

    request: ImageRequest  # expanded (character, style), with ``model`` filled in: what is drawn
    model: ModelRef
    engine: Engine
    loras: tuple[tuple[ModelRef, float], ...]
    asked: ImageRequest | None = None  # the user's own fields with ``model``: what a job queues, reuse returns
    pictures: Pictures = field(default_factory=Pictures)

    def queued(self) -> dict[str, Any]:
        """The job parameters of this request: the user's own fields (expanded again when drawn)."""
        return (self.asked or self.request).given()


@dataclass
class Result:
    """What ``generate`` made: the gallery rows, and whether they came from the cache."""

    images: list[StudioImage]
    cached: bool = False
    seed: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"images": [row.as_dict() for row in self.images], "cached": self.cached, "seed": self.seed}


@dataclass
class Studio:
    home: Path
    host: Host
    expanders: list[Callable[[ImageRequest], ImageRequest]] = field(default_factory=list)
    prompt_checks: list[Callable[[ImageRequest], None]] = field(default_factory=list)
    image_checks: list[Callable[[Any, ImageRequest], str | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.home = Path(self.home)
        self.gallery = Gallery(self.home)
        self.hashes = ModelHashes(self.gallery.folder)
        self.expanders[:0] = [DrawAsCharacter(self.host), DrawInStyle(self.home, self.host)]
        self.prompt_checks.insert(0, self._prompt_filter)  # safe mode (``safety``) comes first
        self.image_checks.insert(0, self._image_check)

    def safe_mode(self, request: ImageRequest, chosen: settings.Settings | None = None) -> bool:
        """Whether safe mode holds for ``request``: the setting, forced on by an all-ages character."""
        character = None
        if request.character:
            try:
                character = character_of(self.host.registry, request.character)
            except (ResourceNotAvailable, UsageError):  # gone since it was drawn: the setting decides
                character = None
        return safe_mode_for(chosen or settings.load(), character)

    def _prompt_filter(self, request: ImageRequest) -> None:
        """Safe mode's word lists: refuse a prompt that holds one of their entries, naming them."""
        verdict = check_prompt(request.prompt, self.safe_mode(request), self.home)
        if verdict is not None:
            raise UsageError(f"prompt: {verdict.reason}")

    def _image_check(self, picture: Any, request: ImageRequest) -> str | None:
        """The ``check_image`` plugins' verdict on one picture: the reason to block it, or None."""
        chosen = settings.load()
        context = image_check_context(self.host.registry, chosen, safe_mode=self.safe_mode(request, chosen),
                                      prompt=request.prompt, character=request.character)
        [verdict] = check_images([picture], context)
        return verdict.reason or "blocked" if verdict.blocked else None

    # -- checking ------------------------------------------------------------------------------

    def default_model(self) -> str:
        """The ``studio_model`` setting, else the first installed image model (catalog id@version)."""
        chosen = settings.load().studio_model
        if chosen:
            return chosen
        from zishu.resources.engine_models import installed_models

        for engine in self.host.engines.of_kind("image"):
            found = installed_models(self.host.registry, engine)  # type: ignore[arg-type]
            if found:
                return found[0]
        raise ResourceNotAvailable(f"model: no image model is installed; install one (zishu install "
                                   f"{STARTER_MODEL}) or name a model folder or file", install=STARTER_MODEL)

    def capabilities(self, model: str | None = None) -> dict[str, Capability]:
        """What can be done here (``postprocess.capabilities``) with ``model`` (default: the default
        model, when one is installed), with a catalog model to install for what is missing."""
        name = model
        if name is None:
            try:
                name = self.default_model()
            except ResourceNotAvailable:
                name = None
        ref = None
        if name:
            try:
                ref = resolve_model(name, self.host.registry)
            except ResourceNotAvailable as e:
                raise ResourceNotAvailable(f"model: {e}", install=e.install) from None
        catalog = getattr(self.host, "catalog", None)
        return capabilities(self.host.engines, self.host.registry, ref,  # type: ignore[arg-type]
                            catalog() if callable(catalog) else None)

    def schedulers(self, model: str | None = None) -> tuple[str, ...]:
        """The sampler names the model's engine takes (the first image engine's without a model)."""
        if model:
            ref = resolve_model(model, self.host.registry)
            return self.host.engines.choose("image", ref).info.schedulers
        engines = self.host.engines.of_kind("image")
        return engines[0].info.schedulers if engines else ()

    def prepare(self, data: Any) -> Prepared:
        """``data`` (a dict or an ImageRequest) checked field by field and against its model."""
        asked = request = ImageRequest.parse(data)
        if not request.expanded:
            for expand in self.expanders:
                request = expand(request)
        if not request.prompt.strip():
            raise UsageError(f"prompt: nothing to draw: {request.character} has no appearance or persona; "
                             "give a prompt")
        for check in self.prompt_checks:
            check(request)
        name = request.model or self.default_model()
        try:
            model = resolve_model(name, self.host.registry)
        except ResourceNotAvailable as e:
            raise ResourceNotAvailable(f"model: {e}") from None
        engine = self.host.engines.choose("image", model)
        most = int(model.spec.get("max_size") or MAX_SIDE)
        for side in ("width", "height"):
            value = getattr(request, side)
            if not MIN_SIDE <= value <= most:
                raise UsageError(f"{side}: must be from {MIN_SIDE} to {most} for {model.label}, got {value}")
        known = engine.info.schedulers
        if request.scheduler is not None and request.scheduler not in known:
            raise UsageError(f"scheduler: {request.scheduler!r} is not one of: {', '.join(known) or 'none'}")
        for name_of_field, capability in CAPABLE.items():
            if getattr(request, name_of_field) is not None and capability not in engine.info.capabilities:
                raise UsageError(f"{name_of_field}: the {engine.info.name} engine cannot draw with it here "
                                 f"(it lacks the {capability} capability)")
        if request.loras and "lora" not in engine.info.capabilities:
            raise UsageError(f"loras: the {engine.info.name} engine does not apply LoRAs")
        loras = tuple((self._lora(n, choice.id, model), choice.weight) for n, choice in enumerate(request.loras))
        pictures = self._pictures(request, model)
        kept = ImageRequest.parse({**asked.given(), "model": name})
        kept._expanded = asked.expanded
        return Prepared(request.model_copy(update={"model": name}), model, engine, loras, kept, pictures)

    def _pictures(self, request: ImageRequest, model: ModelRef) -> Pictures:
        """The request's pictures decoded, and the ControlNet its control needs; refused naming the field."""
        init = mask = control = control_model = None
        if request.init_image is not None:
            init = flat(open_picture(request.init_image, "init_image", self.gallery))
            strength = request.strength if request.strength is not None else EngineRequest.strength
            if strength <= 0 or strength * request.steps < 1:
                raise UsageError(f"strength: {strength:g} × steps {request.steps} leaves no step to draw; raise "
                                 "the strength (above 0) or the steps")
        if request.mask is not None:
            if init is None:
                raise UsageError("mask: needs init_image, the picture whose masked part is repainted")
            mask = as_mask(open_picture(request.mask, "mask", self.gallery))
        if request.control is not None:
            kind = request.control.type
            if kind not in CONTROL_KINDS:
                raise UsageError(f"control.type: must be one of {', '.join(CONTROL_KINDS)}, got {kind!r}")
            control = flat(open_picture(request.control.image, "control.image", self.gallery))
            if request.control.model:
                try:
                    control_model = resolve_model(request.control.model, self.host.registry)
                except ResourceNotAvailable as e:
                    raise ResourceNotAvailable(f"control.model: {e}", install=e.install) from None
            else:
                try:
                    control_model = controlnet_model(self.host, model, kind)
                except ResourceNotAvailable as e:
                    catalog = getattr(self.host, "catalog", None)
                    raise UsageError(f"control: {e}", install=suggest_install(
                        catalog() if callable(catalog) else None, "controlnet", model, kind)) from None
        return Pictures(init, mask, control, control_model)

    def _lora(self, number: int, name: str, model: ModelRef) -> ModelRef:
        try:
            lora = resolve_model(name, self.host.registry)
        except ResourceNotAvailable as e:
            raise ResourceNotAvailable(f"loras.{number}.id: {e}") from None
        made_for = str(lora.spec.get("base_model") or "").lower()
        bases = {str(model.spec.get("base_model") or "").lower(), (model.id or "").lower()} - {""}
        if made_for and bases and made_for not in bases:
            raise UsageError(f"loras.{number}.id: {lora.label} is made for {made_for}, not for {model.label} "
                             f"(base {', '.join(sorted(bases))})")
        return lora

    # -- drawing -------------------------------------------------------------------------------

    def generate(self, data: Any, *, job_id: int | None = None, progress: Progress | None = None,
                 cancelled: Callable[[], bool] | None = None, preview: Preview | None = None,
                 preview_every: int = 5, device: str | None = None) -> Result:
        """Draw the request (or return its cached pictures) and keep every picture in the gallery."""
        prepared = data if isinstance(data, Prepared) else self.prepare(data)
        request, model, given = prepared.request, prepared.model, prepared.pictures
        model_sha = self.hashes.of(model)
        lora_shas = [(self.hashes.of(lora), weight) for lora, weight in prepared.loras]
        params = request.params()
        if given.control_model is not None:  # the ControlNet chosen here changes the pixels too
            params["control"] = {**params["control"], "model": self.hashes.of(given.control_model)}
        key = cache_key(params, model_sha, lora_shas)
        if key is not None:
            kept = self.gallery.cached(key)
            if len(kept) == request.batch:
                return Result(kept, cached=True, seed=request.seed)
        seed = request.seed if request.seed is not None else secrets.randbelow(2**32 - request.batch)
        control = request.control
        drawing = EngineRequest(prompt=request.prompt, negative_prompt=request.negative_prompt, width=request.width,
                                height=request.height, steps=request.steps, guidance=request.guidance, seed=seed,
                                batch=request.batch, scheduler=request.scheduler, loras=prepared.loras,
                                preview=preview, preview_every=preview_every, init_image=given.init_image,
                                mask_image=given.mask_image,
                                strength=request.strength if request.strength is not None else EngineRequest.strength,
                                control_image=given.control_image, control_kind=control.type if control else None,
                                control_scale=control.weight if control else 1.0, control_model=given.control_model)
        ready = use(self.host, "image", request.model, engine=prepared.engine.info.name, device=device)
        pictures = ready.handle.draw(drawing, progress=progress, cancelled=cancelled)
        asked = (prepared.asked or request).given()
        rows = []
        for index, picture in enumerate(pictures):
            own_seed = int(picture.info.get("seed", seed + index))
            text = self.parameters(request, own_seed, model, model_sha, prepared.loras, lora_shas)
            again = {**asked, "seed": own_seed, "batch": 1}  # the user's own fields: reuse expands them again
            row = self.gallery.add(picture, parameters=text, fields={
                "job_id": job_id, "prompt": request.prompt, "negative_prompt": request.negative_prompt,
                "character": request.character, "style": request.style, "model": request.model,
                "model_hash": short(model_sha), "seed": own_seed, "width": picture.width, "height": picture.height,
                "steps": request.steps, "guidance": request.guidance, "scheduler": request.scheduler,
                "request": _json(again), "cache_key": key, "batch_index": index})
            for check in self.image_checks:
                reason = check(picture, request)
                if reason:
                    row = self.gallery.mark_blocked(row.id, reason)
                    break
            rows.append(row)
        return Result(rows, cached=False, seed=seed)

    @staticmethod
    def parameters(request: ImageRequest, seed: int, model: ModelRef, model_sha: str,
                   loras: tuple[tuple[ModelRef, float], ...], lora_shas: list[tuple[str, float]]) -> str:
        """The A1111 ``parameters`` text of one picture (``metadata``)."""
        lora_tags = "".join(f" <lora:{_name(lora)}:{number(weight)}>" for lora, weight in loras)
        return parameters_text(request.prompt + lora_tags, request.negative_prompt, {
            "Steps": request.steps, "Sampler": request.scheduler, "CFG scale": number(request.guidance),
            "Seed": seed, "Size": f"{request.width}x{request.height}", "Model hash": short(model_sha),
            "Model": _name(model), "Lora hashes": ", ".join(f"{_name(lora)}: {short(sha)}"
                                                             for (lora, _), (sha, _) in zip(loras, lora_shas,
                                                                                            strict=True)),
            "Style": request.style, "Character": request.character, "Version": "zishu"})


def _name(model: ModelRef) -> str:
    """A model's name as A1111 shows it: the catalog id's name, else the file or folder's stem."""
    return model.id.split("/", 1)[1] if model.id else model.path.stem


def _json(data: Any) -> str:
    import json

    return json.dumps(data, ensure_ascii=False)
