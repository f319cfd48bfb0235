"""What each engine can run here: its installed models and voices, and why it cannot run at all.

``zishu engines`` and the Engines panel show this list; both hand in the engines the plugins
registered and the registry of installed resources.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from zishu.engines import Engine, Engines

from .install import manifest_of
from .versions import VersionStore


def installed_manifests(registry: VersionStore) -> Iterator[tuple[str, str, Any]]:
    """(id, version, manifest) of every installed version whose manifest reads, by id."""
    for rid, versions in sorted(registry.load().items()):
        for version in versions:
            try:
                yield rid, version, manifest_of(registry.version_dir(rid, version))
            except (OSError, ValueError):
                continue


def installed_models(registry: VersionStore, engine: Engine) -> list[str]:
    """Installed catalog models whose format and role this engine takes, and the voices that name it."""
    found = []
    for rid, version, manifest in installed_manifests(registry):
        spec: Any = getattr(manifest, "spec", None)
        takes_model = (manifest.kind == "model" and spec.role == engine.info.kind
                       and spec.format in engine.info.formats)
        takes_voice = manifest.kind == "voice" and spec.engine == engine.info.name
        if takes_model or takes_voice:
            found.append(f"{rid}@{version}")
    return found


def describe_engines(engines: Engines, registry: VersionStore) -> list[dict]:
    """Every engine as JSON-able facts (kind, formats, capabilities, …), ``unavailable`` (why it
    cannot run here, or None) and ``models`` (what it can run from what is installed)."""
    listed = []
    for engine in engines.engines.values():
        info = engine.info
        listed.append({"name": info.name, "kind": info.kind, "formats": list(info.formats),
                       "capabilities": sorted(info.capabilities), "languages": list(info.languages),
                       "description": info.description, "needs_model": info.needs_model,
                       "unavailable": _unavailable(engine),
                       "models": installed_models(registry, engine)})
    return sorted(listed, key=lambda e: (e["kind"], e["name"]))


def _unavailable(engine: Engine) -> str | None:
    """Why the engine cannot run here; a plugin that raises while answering is reported, not fatal."""
    check = getattr(engine, "unavailable", None)
    if not callable(check):
        return None
    try:
        return check()
    except Exception as e:  # noqa: BLE001 - a third party's check failing must not hide the others
        return f"its availability check failed: {type(e).__name__}: {e}"
