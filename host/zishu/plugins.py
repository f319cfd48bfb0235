"""The plugin manager: hookspecs from ``zishu.hookspecs``, plugins from the ``zishu`` entry points.

Internal plugins (``INTERNAL``) provide the core's defaults and are registered ``trylast``.
Each entry point loads in its own try/except, and ``call_each`` calls a registration hook plugin
by plugin (``collect`` also gathers their answers): a plugin that fails to import or raises in a
hook is recorded in ``errors`` (shown by ``zishu plugins`` and the UI) and never takes the host down.
``ZISHU_LOAD_PLUGINS`` (comma-separated names) is an allow-list; plugins the user disabled (a setting) are not loaded.
Plugins installed from the catalog live in their own folders under ``ZISHU_HOME/plugins/``
(``zishu.resources.plugin_wheels``); ``load_plugins`` appends those folders to the discovery path
(after everything else, so they cannot shadow a module already there).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Iterable
from importlib.metadata import entry_points
from pathlib import Path

import pluggy

from zishu import hookspecs

log = logging.getLogger(__name__)

INTERNAL = ("zishu.resources.jobs", "zishu.studio.jobs", "zishu.storyboard.jobs", "zishu.companion.jobs",
            "zishu.web.panels",
            "zishu.packaging.zpkg", "zishu.packaging.card_format", "zishu.packaging.jobs")

pm = pluggy.PluginManager("zishu")
pm.add_hookspecs(hookspecs)
errors: dict[str, str] = {}  # plugin name -> what went wrong (import or hook)
skipped: dict[str, str] = {}  # plugin name -> "disabled" or "not in ZISHU_LOAD_PLUGINS"
_loaded = False


def allow_list() -> set[str] | None:
    raw = os.environ.get("ZISHU_LOAD_PLUGINS")
    return {n.strip() for n in raw.split(",") if n.strip()} if raw is not None else None


def load_plugins(disabled: Iterable[str] = (), folders: Iterable[Path] = ()) -> pluggy.PluginManager:
    """Register the internal plugins and every installed, allowed, enabled plugin once;
    ``folders`` (catalog plugins' install folders) join the discovery path first."""
    global _loaded
    if _loaded:
        return pm
    _loaded = True
    for folder in map(str, folders):
        if folder not in sys.path:
            sys.path.append(folder)
    for module in INTERNAL:
        if not pm.has_plugin(module):
            pm.register(importlib.import_module(module), name=module)
    allow, disabled = allow_list(), set(disabled)
    for ep in entry_points(group="zishu"):
        if allow is not None and ep.name not in allow:
            skipped[ep.name] = "not in ZISHU_LOAD_PLUGINS"
            continue
        if ep.name in disabled:
            skipped[ep.name] = "disabled"
            continue
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as e:
            errors[ep.name] = f"failed to load: {type(e).__name__}: {e}"
            log.exception("plugin %s failed to load: %s", ep.name, e)
    return pm


def listening(hook_name: str) -> bool:
    """Whether any plugin implements hook ``hook_name`` (so a caller can skip building its arguments)."""
    return bool(getattr(pm.hook, hook_name).get_hookimpls())


def call_each(hook_name: str, **kwargs) -> None:
    """Call one hook plugin by plugin (in pluggy's order); a plugin that raises is recorded."""
    for impl in reversed(getattr(pm.hook, hook_name).get_hookimpls()):
        try:
            impl.function(**kwargs)
        except Exception as e:
            message = f"{hook_name} raised {type(e).__name__}: {e}"
            if errors.get(impl.plugin_name) != message:  # log once, not at every progress event
                log.exception("plugin %s: %s", impl.plugin_name, message)
            errors[impl.plugin_name] = message


def collect(hook_name: str, failed: dict[str, str] | None = None, **kwargs) -> list[tuple[str, object]]:
    """Call one hook plugin by plugin, like ``call_each``, and return ``(plugin name, answer)`` for
    each plugin that answered something other than None; a plugin that raises is recorded (and put
    in ``failed``, plugin → message, when given) and left out."""
    answers: list[tuple[str, object]] = []
    for impl in reversed(getattr(pm.hook, hook_name).get_hookimpls()):
        try:
            answer = impl.function(**kwargs)
        except Exception as e:
            message = f"{hook_name} raised {type(e).__name__}: {e}"
            if errors.get(impl.plugin_name) != message:
                log.exception("plugin %s: %s", impl.plugin_name, message)
            errors[impl.plugin_name] = message
            if failed is not None:
                failed[impl.plugin_name] = message
            continue
        if answer is not None:
            answers.append((impl.plugin_name, answer))
    return answers


def describe() -> list[dict]:
    """Every plugin known: name, version, status (loaded / failed / disabled / not allowed), error."""
    found: dict[str, dict] = {}
    for ep in entry_points(group="zishu"):
        dist = getattr(ep, "dist", None)
        found[ep.name] = {"name": ep.name, "module": ep.value, "internal": False,
                          "package": dist.name if dist else None, "version": dist.version if dist else None}
    for module in INTERNAL:
        found[module] = {"name": module, "module": module, "internal": True, "package": "zishu", "version": None}
    for name, info in found.items():
        if name in errors:
            status = "failed"
        elif name in skipped:
            status = "disabled" if skipped[name] == "disabled" else "not allowed"
        elif pm.has_plugin(name):
            status = "loaded"
        else:
            status = "not loaded"
        plugin = pm.get_plugin(name)
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or []) if plugin is not None else []
        info.update(status=status, error=errors.get(name), hooks=hooks)
    return sorted(found.values(), key=lambda p: (p["internal"], p["name"]))


def reset() -> None:
    """Forget every plugin (tests, and a second app in one process)."""
    global _loaded
    for name, _ in list(pm.list_name_plugin()):
        pm.unregister(name=name)
    errors.clear()
    skipped.clear()
    _loaded = False
