"""The library: what is installed here, as the app's Library panel and Discover show it.

``Library(registry)`` reads the registry of installed resources and the manifests in their version
folders:

    library.installed()              id → the versions installed, sorted
    library.listing()                the Library panel: each resource with its name, summary, kind and
                                     versions (size, install time, folder), and the total size
    library.mark_installed(entries)  catalog entries (search results, a detail document) with the
                                     versions installed here under "installed"
    library.uninstall(id, version)   remove one version (or all); NotFound when nothing is installed
    library.folder(id, version)      the version folder; ResourceNotAvailable unless installed

Ids reach it already checked by the caller; folders come only from the registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zishu.errors import NotFound

from .install import Installer, manifest_of
from .versions import VersionStore


class Library:
    def __init__(self, registry: VersionStore) -> None:
        self.registry = registry

    def installed(self) -> dict[str, list[str]]:
        """id → the versions of it installed here, sorted."""
        return {rid: sorted(versions) for rid, versions in self.registry.load().items()}

    def mark_installed(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each entry (a dict with an "id") with ``installed``: the versions installed here."""
        installed = self.installed()
        return [{**e, "installed": installed.get(e["id"], [])} for e in entries]

    def listing(self) -> dict[str, Any]:
        """What is installed, with names from the installed manifests and sizes (the Library panel)."""
        items, total = [], 0
        for rid, versions in sorted(self.registry.load().items()):
            entry: dict[str, Any] = {"id": rid, "name": rid, "summary": "", "kind": None, "versions": []}
            for version, rec in sorted(versions.items()):
                folder = self.registry.version_dir(rid, version)
                try:
                    manifest = manifest_of(folder)
                    entry.update(name=manifest.name, summary=manifest.summary, kind=manifest.kind)
                except (OSError, ValueError):
                    entry["kind"] = rec.get("kind")
                size = _bytes_on_disk(folder, rec.get("size_bytes", 0))
                entry["versions"].append({"version": version, "size_bytes": size,
                                          "installed_at": rec.get("installed_at"), "path": str(folder)})
                total += size
            entry["size_bytes"] = sum(v["size_bytes"] for v in entry["versions"])
            items.append(entry)
        return {"resources": items, "size_bytes": total, "home": str(self.registry.home)}

    def uninstall(self, rid: str, version: str | None = None) -> list[str]:
        """Remove ``version`` of ``rid`` (every version when None); returns the versions removed."""
        if rid not in self.registry.load():
            raise NotFound(f"{rid} is not installed")
        return Installer(self.registry, fetcher=None).uninstall(rid, version)  # type: ignore[arg-type]

    def folder(self, rid: str, version: str | None = None) -> Path:
        """The folder of ``version`` of ``rid`` (the newest when None); MODEL_NOT_AVAILABLE unless installed."""
        return self.registry.path(rid, version)


def _bytes_on_disk(folder: Path, recorded: int) -> int:
    """What a version folder holds on disk, its manifest included (so a character with no files of
    its own never shows "0 B"); the recorded size when the folder cannot be read."""
    try:
        return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())
    except OSError:
        return recorded
