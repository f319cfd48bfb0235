"""What a character (or Settings) can pick for each of its parts: the models of each companion role,
LLM and image LoRAs, Live2D models and voices, each installed here or offered by the catalog.

``choices(runtime)`` answers ``{part: [{"id", "name", "installed"}...]}`` for the parts
``llm``, ``asr``, ``vad``, ``embedding``, ``llm_lora``, ``image_lora``, ``live2d`` and ``voice``,
installed ones first. A catalog that cannot be read leaves only what is installed. The catalog's
compact index does not say a model's role, so each model's detail is read (the catalog client
caches details until the index changes).

``model_to_install(runtime, role)`` is the one catalog model of ``role`` to suggest when nothing is
installed: the catalog's only one, else None (the user chooses); ``install_advice`` puts it in words.
"""

from __future__ import annotations

import logging
from typing import Any

from zishu.errors import ZishuError
from zishu.settings import COMPANION_ROLES

log = logging.getLogger(__name__)

PARTS = (*COMPANION_ROLES, "llm_lora", "image_lora", "live2d", "voice")


def _installed(runtime) -> dict[str, dict[str, str]]:
    """part → {id: name} of what is installed."""
    from zishu.resources.install import manifest_of

    found: dict[str, dict[str, str]] = {part: {} for part in PARTS}
    for rid, versions in sorted(runtime.registry.load().items()):
        kinds = {v.get("kind") for v in versions.values() if isinstance(v, dict)}
        if not kinds & {"model", "lora", "live2d", "voice"}:
            continue
        try:
            resource = manifest_of(runtime.registry.path(rid))
        except (ZishuError, OSError, ValueError):
            continue
        part = _part_of(resource.kind, resource.spec)
        if part in found:
            found[part][rid] = resource.name
    return found


def _part_of(kind: str, spec: Any) -> str | None:
    from zishu.catalog.manifest import LoraSpec, ModelSpec

    if kind == "model" and isinstance(spec, ModelSpec):
        return spec.role
    if kind == "lora" and isinstance(spec, LoraSpec):
        return f"{spec.target}_lora"
    return kind if kind in ("live2d", "voice") else None


def _from_catalog(runtime) -> dict[str, dict[str, str]]:
    """part → {id: name} of what the catalog offers (empty when it cannot be read)."""
    found: dict[str, dict[str, str]] = {part: {} for part in PARTS}
    try:
        catalog = runtime.catalog()
        entries = catalog.index()
    except (ZishuError, OSError, ValueError) as e:
        log.info("the catalog cannot be read for the character editor's choices: %s", e)
        return found
    for entry in entries:
        kind, rid, name = entry.get("kind"), entry.get("id"), entry.get("name") or entry.get("id")
        if kind in ("live2d", "voice"):
            found[kind][rid] = name
        elif kind in ("model", "lora"):
            try:
                spec = catalog.detail(rid).get("spec") or {}
            except (ZishuError, OSError, ValueError):
                continue
            part = spec.get("role") if kind == "model" else f"{spec.get('target')}_lora"
            if part in found:
                found[part][rid] = name
    return found


def choices(runtime) -> dict[str, list[dict]]:
    """part → the ids to choose from, installed ones first, each ``{"id", "name", "installed"}``."""
    here, offered = _installed(runtime), _from_catalog(runtime)
    out: dict[str, list[dict]] = {}
    for part in PARTS:
        listed = [{"id": rid, "name": name, "installed": True} for rid, name in here[part].items()]
        listed += [{"id": rid, "name": name, "installed": False}
                   for rid, name in sorted(offered[part].items()) if rid not in here[part]]
        out[part] = listed
    return out


def model_to_install(runtime, role: str) -> str | None:
    """The catalog's one model of ``role`` (None when it has none or several)."""
    offered = _from_catalog(runtime)[role]
    return next(iter(offered)) if len(offered) == 1 else None


def install_advice(runtime, role: str) -> tuple[str, str | None]:
    """What to tell a user who has no model of ``role``, and the catalog id to offer (an error's
    ``install``): "install X (zishu install X)", or where to find one when the catalog has not one."""
    rid = model_to_install(runtime, role)
    return (f"install {rid} (zishu install {rid})" if rid
            else f"install one (find a model of role {role} in Discover)"), rid
