"""What the studio does to a picture after (or around) drawing it, and what it can do here.

- ``upscale(host, image, scale, model)`` and ``remove_background(host, image, model)``: through the
  ``upscale`` and ``background`` engines (plugins/zishu_onnx_vision), with an installed model of
  that catalog role (the first installed one when none is named);
- ``encode(image, format, quality, parameters)``: PNG, WebP or JPEG bytes carrying the
  AUTOMATIC1111 ``parameters`` text (a PNG ``parameters`` text chunk; WebP and JPEG: EXIF
  UserComment, UNICODE-prefixed UTF-16, as A1111 writes it). JPEG has no alpha: it is flattened
  onto white;
- ``controlnet_for(registry, model, kind)`` (``controlnet_model``: as the ModelRef a request takes):
  the installed ControlNet (catalog role ``controlnet``) made
  for an image model's family (its ``base_model`` is the model's id or the model's own
  ``base_model``), following ``kind`` pictures (tagged "canny", "pose" or "depth", or untagged);
- ``capabilities(engines, registry, model)``: each control and post-processing capability as "ok" or
  what to install, so the UI can say it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from zishu.engines import CONTROL_KINDS, Engines, ModelRef, resolve_model, use
from zishu.engines.use import Host
from zishu.errors import ResourceNotAvailable, UsageError
from zishu.resources.engine_models import installed_manifests
from zishu.resources.versions import VersionStore

FORMATS = ("png", "webp", "jpeg")
OK = "ok"
EXIF_IFD = 0x8769  # the Exif sub-IFD
USER_COMMENT = 0x9286
INSTALL_HINTS = {
    "upscale": "install an upscaler: a catalog model of role 'upscale' (format onnx, a Real-ESRGAN-family "
               "export), e.g. `zishu search upscale`",
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


def capabilities(engines: Engines, registry: VersionStore, model: ModelRef | None = None) -> dict[str, str]:
    """``{capability: "ok" or what to install}`` for img2img, inpaint, controlnet.<kind> (for ``model``,
    the image model in use), upscale, background and each save format."""
    image_engines = [e for e in engines.of_kind("image") if not _unavailable(e)]
    declared = set().union(*(e.info.capabilities for e in image_engines)) if image_engines else set()
    found: dict[str, str] = {}
    for name in ("img2img", "inpaint"):
        found[name] = OK if name in declared else f"no image engine here can do {name}: install the diffusers plugin"
    for kind in CONTROL_KINDS:
        key = f"controlnet.{kind}"
        if "controlnet" not in declared:
            found[key] = "no image engine here can follow a control picture: install the diffusers plugin"
        elif model is None:
            found[key] = "choose an image model first"
        else:
            found[key] = OK if controlnet_for(registry, model, kind) else controlnet_hint(model, kind)
    for kind in ("upscale", "background"):
        usable = [e for e in engines.of_kind(kind) if not _unavailable(e)]
        if not usable:
            found[kind] = f"no {kind} engine can run here: pip install 'zishu[image]' (onnxruntime)"
        else:
            found[kind] = OK if installed_models(registry, kind) else INSTALL_HINTS[kind]
    for name in FORMATS:
        found[name] = OK if _can_save(name) else f"this Pillow cannot write {name.upper()}"
    return found


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


__all__ = ["FORMATS", "Installed", "capabilities", "controlnet_for", "controlnet_model", "encode", "installed_models",
           "read_parameters", "remove_background", "upscale"]
