"""What the studio does to a picture after (or around) drawing it, and what it can do here.

- ``upscale(host, image, scale, model)`` and ``remove_background(host, image, model)``: through the
  ``upscale`` and ``background`` engines (plugins/zishu_spandrel for ``.pth``/``.safetensors``
  upscalers, plugins/zishu_onnx_vision for ``.onnx`` ones, chosen by the model's format), with an
  installed model of that catalog role (the first installed one when none is named);
- ``encode(image, format, quality, parameters)``: PNG, WebP or JPEG bytes carrying the
  AUTOMATIC1111 ``parameters`` text (a PNG ``parameters`` text chunk; WebP and JPEG: EXIF
  UserComment, UNICODE-prefixed UTF-16, as A1111 writes it). JPEG has no alpha: it is flattened
  onto white;
- ``controlnet_for(registry, model, kind)`` (``controlnet_model``: as the ModelRef a request takes):
  the installed ControlNet (catalog role ``controlnet``) made
  for an image model's family (its ``base_model`` is the model's id or the model's own
  ``base_model``), following ``kind`` pictures (tagged "canny", "pose" or "depth", or untagged);
- ``capabilities(engines, registry, model, catalog)``: each control and post-processing capability
  (``CAPABILITIES``) as a ``Capability``: ok, what is used or what to install, and a catalog id to
  install when the catalog has one (``suggest_install``), so the UI can say it and offer Install.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from zishu.engines import CONTROL_KINDS, Engines, ModelRef, resolve_model, use
from zishu.engines.use import Host
from zishu.errors import ResourceNotAvailable, UsageError, ZishuError
from zishu.resources.engine_models import installed_manifests
from zishu.resources.versions import VersionStore

FORMATS = ("png", "webp", "jpeg")
EXIF_IFD = 0x8769  # the Exif sub-IFD
USER_COMMENT = 0x9286
MAX_SUGGESTIONS = 20  # catalog manifests read to suggest one model to install
INSTALL_HINTS = {
    "upscale": "install an upscaler: a catalog model of role 'upscale' (Real-ESRGAN-family weights, format "
               "pytorch or safetensors, or an onnx export), e.g. `zishu search upscale`",
    "background": "install a background remover: a catalog model of role 'background' (format onnx, a "
                  "U²-Net/BiRefNet-family segmenter), e.g. `zishu search background`",
}


@dataclass(frozen=True)
class Installed:
    """One installed catalog model: its id, version, role, base model and tags."""

    id: str
    version: str
    role: str
    format: str
    base_model: str | None
    tags: tuple[str, ...]


def installed_models(registry: VersionStore, role: str) -> list[Installed]:
    """Installed catalog models of ``role``, by id."""
    found = []
    for rid, version, manifest in installed_manifests(registry):
        spec: Any = getattr(manifest, "spec", None)
        if manifest.kind == "model" and spec.role == role:
            found.append(Installed(rid, version, role, spec.format, spec.base_model, tuple(manifest.tags)))
    return found


def family_of(model: ModelRef) -> set[str]:
    """What a ControlNet's ``base_model`` may name to fit ``model``: its catalog id and its own base model."""
    names = {model.id} if model.id else set()
    if model.spec.get("base_model"):
        names.add(model.spec["base_model"])
    return names


def controlnet_for(registry: VersionStore, model: ModelRef, kind: str) -> Installed | None:
    """The installed ControlNet for ``model``'s family that follows ``kind`` pictures (one tagged with
    ``kind`` before an untagged one), or None."""
    if kind not in CONTROL_KINDS:
        raise UsageError(f"control_kind must be one of {', '.join(CONTROL_KINDS)}, got {kind!r}")
    family = family_of(model)
    fitting = [m for m in installed_models(registry, "controlnet") if m.base_model in family]
    tagged = [m for m in fitting if kind in m.tags]
    untagged = [m for m in fitting if not set(m.tags) & set(CONTROL_KINDS)]
    chosen = tagged or untagged
    return chosen[0] if chosen else None


def controlnet_model(host: Host, model: ModelRef, kind: str) -> ModelRef:
    """The ControlNet an ImageRequest's ``control_model`` takes for ``model`` and ``kind``; refused,
    saying what to install, when none is installed."""
    registry = host.registry
    found = controlnet_for(registry, model, kind) if isinstance(registry, VersionStore) else None
    if found is None:
        raise ResourceNotAvailable(f"no {kind} ControlNet is installed for {model.label}: "
                                   f"{controlnet_hint(model, kind)}")
    return resolve_model(f"{found.id}@{found.version}", registry)


def controlnet_hint(model: ModelRef, kind: str) -> str:
    family = " or ".join(sorted(family_of(model))) or "this model"
    return (f"install a {kind} ControlNet for {family}: a catalog model of role 'controlnet' whose base_model is "
            f"{family}, tagged '{kind}'")


@dataclass(frozen=True)
class Capability:
    """Whether the studio can do one thing here: ``message`` says what is used, or what is missing;
    ``install`` is a catalog id whose install would make it work, when the catalog offers one."""

    ok: bool
    message: str
    install: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "message": self.message, "install": self.install}


CAPABILITIES = ("img2img", "inpaint", *(f"controlnet_{kind}" for kind in CONTROL_KINDS), "upscale", "background",
                *FORMATS)


def capabilities(engines: Engines, registry: VersionStore, model: ModelRef | None = None,
                 catalog: Any = None) -> dict[str, Capability]:
    """Each of ``CAPABILITIES`` here, for ``model`` (the image model in use; None: any image engine):
    img2img, inpaint, controlnet_<kind>, upscale, background, and each save format. ``catalog`` (a
    ``CatalogClient``, optional) is asked for a model to install where one is missing."""
    if model is not None:
        image_engines = [engines.choose("image", model)]
    else:
        image_engines = [e for e in engines.of_kind("image") if not _unavailable(e)]
    declared = set().union(*(e.info.capabilities for e in image_engines)) if image_engines else set()
    found: dict[str, Capability] = {}
    no_engine = "install the diffusers plugin (pip install 'zishu[image]')"
    for name in ("img2img", "inpaint"):
        found[name] = (Capability(True, f"drawn by the {image_engines[0].info.name} engine") if name in declared
                       else Capability(False, f"no image engine here can do {name}: {no_engine}"))
    for kind in CONTROL_KINDS:
        key = f"controlnet_{kind}"
        chosen = controlnet_for(registry, model, kind) if model is not None and "controlnet" in declared else None
        if "controlnet" not in declared:
            found[key] = Capability(False, f"no image engine here can follow a control picture: {no_engine}")
        elif model is None:
            found[key] = Capability(False, "choose an image model first")
        elif chosen is not None:
            found[key] = Capability(True, f"{chosen.id}@{chosen.version}")
        else:
            found[key] = Capability(False, controlnet_hint(model, kind),
                                    suggest_install(catalog, "controlnet", model, kind))
    for kind in ("upscale", "background"):
        usable = [e for e in engines.of_kind(kind) if not _unavailable(e)]
        models = installed_models(registry, kind)
        if not usable:
            found[kind] = Capability(False, f"no {kind} engine can run here: pip install 'zishu[image]' (onnxruntime)"
                                    + (" or 'zishu[upscale]' (spandrel)" if kind == "upscale" else ""))
        elif models:
            found[kind] = Capability(True, f"{models[0].id}@{models[0].version}")
        else:
            found[kind] = Capability(False, INSTALL_HINTS[kind], suggest_install(catalog, kind))
    for name in FORMATS:
        found[name] = (Capability(True, f"saved as {name.upper()} with its parameters") if _can_save(name)
                       else Capability(False, f"this Pillow cannot write {name.upper()}"))
    return found


def suggest_install(catalog: Any, role: str, model: ModelRef | None = None, kind: str | None = None) -> str | None:
    """A catalog model of ``role`` to install (for ``model``'s family and tagged ``kind`` when given),
    or None. Reads the index, then the manifests of at most ``MAX_SUGGESTIONS`` likely entries (those
    tagged with the role or kind, or made for the family); an unreachable catalog suggests nothing."""
    if catalog is None:
        return None
    family = family_of(model) if model is not None else set()
    words = {role, *([kind] if kind else [])}
    try:
        entries = [e for e in catalog.index() if isinstance(e, dict) and e.get("kind") == "model"]
    except (ZishuError, OSError, ValueError):
        return None
    likely = [e for e in entries if (not family or e.get("base_model") in family)
              and (set(e.get("tags") or ()) & words or family)]
    for entry in likely[:MAX_SUGGESTIONS]:
        try:
            spec = catalog.resource(str(entry.get("id"))).spec
        except (ZishuError, OSError, ValueError, AttributeError):
            continue
        if getattr(spec, "role", None) == role and (kind is None or kind in (entry.get("tags") or ())
                                                    or not set(entry.get("tags") or ()) & set(CONTROL_KINDS)):
            return str(entry["id"])
    return None


def upscale(host: Host, image: Any, scale: float | None = None, model: str | None = None) -> Any:
    """``image`` enlarged ``scale`` times (the model's own factor when None) with ``model`` (an id or
    path; the first installed upscaler when None)."""
    return use(host, "upscale", model or _first(host, "upscale")).handle.upscale(image, scale)


def remove_background(host: Host, image: Any, model: str | None = None) -> Any:
    """``image`` as RGBA with its background clear, with ``model`` (the first installed one when None)."""
    return use(host, "background", model or _first(host, "background")).handle.remove_background(image)


def _first(host: Host, role: str) -> str:
    registry = host.registry
    if not isinstance(registry, VersionStore):
        raise ResourceNotAvailable(f"no {role} model named; {INSTALL_HINTS[role]}")
    found = installed_models(registry, role)
    if not found:
        raise ResourceNotAvailable(f"no {role} model is installed: {INSTALL_HINTS[role]}")
    return f"{found[0].id}@{found[0].version}"


def encode(image: Any, format: str = "png", quality: int = 90, parameters: str | None = None) -> bytes:
    """``image`` as ``format`` bytes (``quality`` 1–100 for WebP and JPEG), carrying ``parameters``."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    name = format.lower()
    if name == "jpg":
        name = "jpeg"
    if name not in FORMATS:
        raise UsageError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise UsageError(f"quality must be a whole number from 1 to 100, got {quality!r}")
    out = io.BytesIO()
    if name == "png":
        info = PngInfo()
        if parameters:
            info.add_text("parameters", parameters)
        image.save(out, "PNG", pnginfo=info)
        return out.getvalue()
    if name == "jpeg" and image.mode != "RGB":
        flat = Image.new("RGB", image.size, "white")
        rgba = image.convert("RGBA")
        flat.paste(rgba, mask=rgba.getchannel("A"))
        image = flat
    options: dict[str, Any] = {"quality": quality}
    if parameters:
        exif = Image.Exif()
        exif.get_ifd(EXIF_IFD)[USER_COMMENT] = b"UNICODE\0" + parameters.encode("utf-16-be")
        options["exif"] = exif.tobytes()
    image.save(out, name.upper(), **options)
    return out.getvalue()


def read_parameters(data: bytes) -> str | None:
    """The A1111 ``parameters`` text ``encode`` wrote (PNG text chunk, or EXIF UserComment), or None."""
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    if "parameters" in image.info:
        return str(image.info["parameters"])
    comment = image.getexif().get_ifd(EXIF_IFD).get(USER_COMMENT)
    if not isinstance(comment, bytes) or len(comment) < 8:
        return None
    head, body = comment[:8], comment[8:]
    if head == b"UNICODE\0":
        return body.decode("utf-16-be", errors="replace")
    return body.decode("utf-8", errors="replace").rstrip("\0")


def _can_save(name: str) -> bool:
    from PIL import features

    return name != "webp" or bool(features.check("webp"))


def _unavailable(engine: Any) -> str | None:
    check = getattr(engine, "unavailable", None)
    try:
        return check() if callable(check) else None
    except Exception as e:  # noqa: BLE001 - a third party's check failing must not hide the others
        return f"its availability check failed: {e}"


__all__ = ["CAPABILITIES", "FORMATS", "Capability", "Installed", "capabilities", "controlnet_for", "controlnet_model",
           "encode", "installed_models", "read_parameters", "remove_background", "suggest_install", "upscale"]
