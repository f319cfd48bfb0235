"""An opened, verified package: what a format's ``open`` hands the host to install."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from zishu.resources.budget import against_machine, budget_lines, budget_of
from zishu.sizes import byte_size

from .format import Embedded, FromCatalog, PackageManifest


@dataclass
class OpenedPackage:
    manifest: PackageManifest
    root: Path  # the verified embedded files, at their package paths
    name: str  # the file it came from, as shown to people

    def summary(self, machine: dict | None = None) -> dict:
        """What the Install dialog and ``zishu install`` show before installing; with ``machine``
        (``zishu.system.summary()``), ``budget`` sets what the character and everything it pulls
        need (disk, RAM, VRAM) against this machine and the tiers."""
        m = self.manifest
        embedded = sum(f.size for f in m.files if isinstance(f.source, Embedded))
        referenced = [f for f in m.files if isinstance(f.source, FromCatalog)]
        download = sum(f.size for f in referenced)
        budget = budget_of([(m.character, m.character.versions[0]), *((r, r.versions[0]) for r in m.resources)])
        return {
            "file": self.name,
            "mode": m.mode,
            "character": {"id": m.character.id, "name": m.character.name, "summary": m.character.summary,
                          "version": m.character.versions[0].version},
            "resources": [{"id": r.id, "version": r.versions[0].version, "kind": r.kind,
                           "embedded": all(not isinstance(f.source, FromCatalog)
                                           for f in m.files if f.path.startswith(f"resources/{r.id}/"))}
                          for r in m.resources],
            "embedded_bytes": embedded,
            "download_bytes": download,
            "shown": f"{m.character.name} ({m.mode}): {byte_size(embedded)} inside, "
                     f"{byte_size(download)} to download",
            "budget": budget_lines(budget, against_machine(budget, machine, download) if machine else None),
        }
