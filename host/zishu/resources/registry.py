"""registry.json: what is installed, written atomically under a lock, rebuilt from disk when lost.

    ZISHU_HOME/resources/<owner>/<name>/<version>/   the files + manifest.json (written last)
    ZISHU_HOME/registry.json                          the summary below

    {"format": 1,
     "resources": {"owner/name": {"1.0.0": {"status": "ready", "kind": "model",
                                              "installed_at": "…", "size_bytes": 123,
                                              "files": {"model.gguf": {"sha256": "…", "size": 123}},
                                              "extra": {}}}}}

A version folder counts as installed only when its ``manifest.json`` exists: the installer writes it
last, so a crash mid-install leaves a folder that ``rebuild`` ignores and ``gc`` removes. The
``extra`` dict of each version is kept as it is, for fields later versions of Zishu add.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import semver
from filelock import FileLock

from zishu.errors import ResourceNotAvailable
from zishu.files import write_atomic

FORMAT = 1
MANIFEST = "manifest.json"


class Registry:
    """The installed resources of one ZISHU_HOME."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.root = home / "resources"
        self.file = home / "registry.json"
        self.lock = FileLock(str(home / "registry.json.lock"))

    # ---- reading -----------------------------------------------------------------------------

    def load(self) -> dict[str, dict[str, dict]]:
        """id → version → record. Rebuilt from the version folders when missing or corrupt."""
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
            if data.get("format") == FORMAT and isinstance(data.get("resources"), dict):
                return data["resources"]
        except (OSError, ValueError, AttributeError):
            pass
        with self.lock:
            resources = self._scan()
            self._write(resources)
        return resources

    def versions(self, rid: str) -> list[str]:
        """Installed versions of ``rid``, highest first."""
        return sorted(self.load().get(rid, {}), key=semver.Version.parse, reverse=True)

    def path(self, rid: str, version: str | None = None) -> Path:
        """The folder of an installed version (the highest when ``version`` is None).

        Never downloads: raises ResourceNotAvailable (MODEL_NOT_AVAILABLE) at once.
        """
        installed = self.versions(rid)
        if version is None and installed:
            version = installed[0]
        if version not in installed:
            have = f" (installed: {', '.join(installed)})" if installed else ""
            raise ResourceNotAvailable(f"{rid}@{version or 'any'} is not installed{have}; run: zishu install {rid}")
        folder = self.version_dir(rid, version)
        if not (folder / MANIFEST).exists():
            raise ResourceNotAvailable(f"{rid}@{version} is registered but its folder is gone; run: zishu install {rid}@{version}")
        return folder

    def version_dir(self, rid: str, version: str) -> Path:
        return self.root / rid / version

    # ---- writing -----------------------------------------------------------------------------

    def record(self, rid: str, version: str, *, kind: str, files: dict[str, dict], extra: dict | None = None) -> None:
        """Mark a version installed (its folder and manifest.json must already be in place)."""
        with self.lock:
            resources = self.load()
            previous = resources.get(rid, {}).get(version, {})
            resources.setdefault(rid, {})[version] = {
                "status": "ready",
                "kind": kind,
                "installed_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "size_bytes": sum(f["size"] for f in files.values()),
                "files": files,
                "extra": {**previous.get("extra", {}), **(extra or {})},
            }
            self._write(resources)

    def forget(self, rid: str, version: str) -> None:
        with self.lock:
            resources = self.load()
            versions = resources.get(rid, {})
            versions.pop(version, None)
            if not versions:
                resources.pop(rid, None)
            self._write(resources)

    def _write(self, resources: dict) -> None:
        body = {"format": FORMAT, "resources": {k: resources[k] for k in sorted(resources)}}
        write_atomic(self.file, json.dumps(body, indent=1, ensure_ascii=False) + "\n")

    def _scan(self) -> dict[str, dict[str, dict]]:
        """Every complete version folder on disk, read back from its manifest.json."""
        found: dict[str, dict[str, dict]] = {}
        for manifest in sorted(self.root.glob(f"*/*/*/{MANIFEST}")):
            folder = manifest.parent
            rid, version = f"{folder.parent.parent.name}/{folder.parent.name}", folder.name
            try:
                data = json.loads(manifest.read_text(encoding="utf-8"))
                entry = next(v for v in data["versions"] if v["version"] == version)
                files = {f["name"]: {"sha256": f.get("sha256"), "size": f.get("size") or 0} for f in entry["files"]}
                installed = dt.datetime.fromtimestamp(manifest.stat().st_mtime, dt.timezone.utc)
            except (OSError, ValueError, KeyError, StopIteration, TypeError):
                continue  # unreadable: not counted as installed; gc reports it
            found.setdefault(rid, {})[version] = {
                "status": "ready",
                "kind": data.get("kind"),
                "installed_at": installed.isoformat(timespec="seconds"),
                "size_bytes": sum(f["size"] for f in files.values()),
                "files": files,
                "extra": {},
            }
        return found
