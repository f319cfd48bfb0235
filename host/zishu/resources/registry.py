"""``Registry``: the name the rest of Zishu (``runtime.registry``, the resolver, the install plan,
the commands) gives the version store of a ZISHU_HOME.

registry.json, the version folders beside it and the one lock every change to them takes are
described and owned by ``zishu.resources.versions``; this module only keeps the older name.
"""

from __future__ import annotations

from .versions import FORMAT, MANIFEST, VersionStore

Registry = VersionStore

__all__ = ["FORMAT", "MANIFEST", "Registry", "VersionStore"]
