"""The plugin manager: hookspecs from ``zishu.hookspecs``, plugins from the ``zishu`` entry points.

Each entry point loads in its own try/except: a plugin that fails to import is recorded in
``load_errors`` (shown by ``zishu plugins`` and the UI) and never takes the host down.
``ZISHU_LOAD_PLUGINS`` (comma-separated names) is an allow-list.
"""

from __future__ import annotations

import os
from importlib.metadata import entry_points

import pluggy

from zishu import hookspecs

pm = pluggy.PluginManager("zishu")
pm.add_hookspecs(hookspecs)
load_errors: dict[str, str] = {}
_loaded = False


def load_plugins() -> pluggy.PluginManager:
    """Register every installed plugin once; return the manager."""
    global _loaded
    if _loaded:
        return pm
    _loaded = True
    allowed = os.environ.get("ZISHU_LOAD_PLUGINS")
    allow = {n.strip() for n in allowed.split(",") if n.strip()} if allowed is not None else None
    for ep in entry_points(group="zishu"):
        if allow is not None and ep.name not in allow:
            continue
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as e:  # noqa: BLE001 - a broken plugin must not take the host down
            load_errors[ep.name] = f"{type(e).__name__}: {e}"
    return pm
