"""An opened, verified package: what a format's ``open`` hands the host to install."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from zishu.sizes import byte_size

from .format import Embedded, FromCatalog, PackageManifest


@dataclass
class OpenedPackage:
    manifest: PackageManifest
    root: Path  # the verified embedded files, at their package paths
    name: str  # the file it came from, as shown to people

    def summary(self) -> dict:
        """What the Install dialog and ``zishu install`` show before installing."""
        m = self.manifest
        embedded = sum(f.size for f in m.files if isinstance(f.source, Embedded))
        referenced = [f for f in m.files if isinstance(f.source, FromCatalog)]
        download = sum(f.size for f in referenced)
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
        }
