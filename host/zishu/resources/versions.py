"""The version store: the folders of every resource's versions under ZISHU_HOME, and registry.json.

Installed catalog resources and the user's own characters are stored the same way, and every
change to them (a version put in place, replaced, removed, moved to or back from the trash, gc)
goes through ``VersionStore`` under its ONE lock, whoever makes it::

    ZISHU_HOME/resources/<owner>/<name>/<version>/          the files + manifest.json (written last)
    ZISHU_HOME/resources/<owner>/<name>/.<version>.staging/ a version being assembled
    ZISHU_HOME/registry.json                                the summary below
    ZISHU_HOME/registry.json.lock                           the lock (an OS lock: a crash drops it)
    ZISHU_HOME/locks/<owner>__<name>@<version>.lock          held while a version is assembled (a download)

    {"format": 1,
     "resources": {"owner/name": {"1.0.0": {"status": "ready", "kind": "model",
                                              "installed_at": "…", "size_bytes": 123,
                                              "files": {"model.gguf": {"sha256": "…", "size": 123}},
                                              "extra": {}}}}}

The rules:

* A version folder counts as installed only when its ``manifest.json`` exists: writers write it
  last, so a crash leaves a folder that ``load`` (when rebuilding a lost registry.json) ignores and
  ``collect_garbage`` removes. The ``extra`` dict of each version is kept as it is, for fields later
  versions of Zishu add.
* A version is assembled in ``staging(id, version)`` and ``put`` in place: one rename and its
  record, together under the lock, so registry.json and the folders always agree for anyone who
  holds the lock (gc does, for all of its scan).
* Assembling may take hours (a download). It then happens outside the lock, holding
  ``assembling(id, version)``, which gc never waits for: it leaves that staging folder alone. Short
  work (a character's save) holds the lock from the first read to the last write instead.
* The lock is re-entrant in a thread and shared by every store of the same ZISHU_HOME in a process
  (``is_singleton``), so code holding it may call any method here.
* A folder is removed by renaming it aside and then deleting it: it is never seen half deleted.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import uuid
from pathlib import Path

import semver
from filelock import FileLock, Timeout

from zishu.errors import ResourceNotAvailable
from zishu.files import write_atomic
from zishu.ids import is_id

FORMAT = 1
MANIFEST = "manifest.json"
STAGING = ".staging"


class VersionStore:
    """The resource versions of one ZISHU_HOME: their folders and registry.json, under one lock."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.root = home / "resources"
        self.file = home / "registry.json"
        self.locks = home / "locks"
        self.lock = FileLock(str(home / "registry.json.lock"), is_singleton=True)

    # ---- reading -----------------------------------------------------------------------------

    def load(self) -> dict[str, dict[str, dict]]:
        """id → version → record. Rebuilt from the version folders when missing, corrupt, or of
        the wrong shape (``well_formed``): a bad registry.json never hides what is installed."""
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
            if isinstance(data, dict) and data.get("format") == FORMAT and well_formed(data.get("resources")):
                return data["resources"]
        except (OSError, ValueError, RecursionError):
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
            raise ResourceNotAvailable(f"{rid}@{version or 'any'} is not installed{have}; run: zishu install {rid}",
                                      install=rid)
        folder = self.version_dir(rid, version)
        if not (folder / MANIFEST).exists():
            raise ResourceNotAvailable(
                f"{rid}@{version} is registered but its folder is gone; run: zishu install {rid}@{version}"
            )
        return folder

    def version_dir(self, rid: str, version: str) -> Path:
        return self.root / rid / version

    # ---- registry.json -----------------------------------------------------------------------

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
        """Drop a version's record (its folder is the caller's: see ``remove``)."""
        with self.lock:
            resources = self.load()
            versions = resources.get(rid, {})
            versions.pop(version, None)
            if not versions:
                resources.pop(rid, None)
            self._write(resources)

    # ---- version folders ---------------------------------------------------------------------

    def assembling(self, rid: str, version: str) -> FileLock:
        """The claim on assembling ``rid@version`` outside the lock (one writer at a time; gc
        leaves its staging folder alone while it is held). Take it before ``staging``."""
        self.locks.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.locks / f"{rid.replace('/', '__')}@{version}.lock"))

    def staging(self, rid: str, version: str) -> Path:
        """An empty hidden folder beside ``rid@version``'s place to assemble it in; ``put`` moves it
        in. The caller holds ``assembling(rid, version)`` or the lock until then, or gc may take it."""
        folder = self.version_dir(rid, version).with_name(f".{version}{STAGING}")
        with self.lock:
            if folder.exists():
                discard(folder)  # a leftover of a crash: never trusted
            folder.mkdir(parents=True)
        return folder

    def put(self, staging: Path, rid: str, version: str, *, kind: str, files: dict[str, dict],
            extra: dict | None = None) -> Path:
        """Move an assembled ``staging`` folder (manifest.json in it) into place as ``rid@version``,
        replacing what is there, and record it: one step for anyone holding the lock."""
        final = self.version_dir(rid, version)
        with self.lock:
            if final.exists():
                discard(final)  # a half-installed leftover, an undone edit, or a version replaced
            os.replace(staging, final)
            self.record(rid, version, kind=kind, files=files, extra=extra)
        return final

    def remove(self, rid: str, version: str) -> None:
        """Forget ``rid@version`` and remove its folder."""
        with self.lock:
            self.forget(rid, version)
            folder = self.version_dir(rid, version)
            if folder.exists():
                discard(folder)

    def take_out(self, rid: str, dest: Path) -> dict[str, dict]:
        """Move every version folder of ``rid`` to ``dest`` in one rename and forget them; returns
        their records (version → record), for ``bring_back``."""
        with self.lock:
            records = self.load().get(rid, {})
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.root / rid, dest)
            for version in records:
                self.forget(rid, version)
        return records

    def bring_back(self, source: Path, rid: str, *, kind: str, records: dict[str, dict]) -> None:
        """Move ``source`` (a folder of version folders, as ``take_out`` left it) back in as
        ``rid``'s folder, and record each version in ``records`` (version → {files, extra})."""
        folder = self.root / rid
        with self.lock:
            if folder.exists():
                discard(folder)  # leftovers of a crash (no registered version lives there)
            folder.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, folder)
            for version, record in records.items():
                self.record(rid, version, kind=kind, files=record["files"], extra=record.get("extra"))

    def collect_garbage(self) -> int:
        """Remove staging leftovers and version folders without manifest.json or record; bytes freed.

        Runs under the lock, so a version put in place meanwhile is never taken for a leftover; a
        staging folder whose ``assembling`` claim is held (a download in progress) is left alone.
        """
        freed = 0
        with self.lock:
            installed = self.load()
            for folder in sorted(self.root.glob("*/*/*")) if self.root.is_dir() else []:
                rid = f"{folder.parent.parent.name}/{folder.parent.name}"
                stale = (folder.name.startswith(".") or not (folder / MANIFEST).exists()
                         or folder.name not in installed.get(rid, {}))
                if not stale or not folder.is_dir():
                    continue
                try:
                    with self.assembling(rid, folder.name.strip(".").removesuffix(STAGING)).acquire(timeout=0):
                        freed += _size(folder)
                        discard(folder)
                except Timeout:
                    continue  # being assembled right now
        return freed

    # ---- inside ------------------------------------------------------------------------------

    def _write(self, resources: dict) -> None:
        body = {"format": FORMAT, "resources": {k: resources[k] for k in sorted(resources)}}
        write_atomic(self.file, json.dumps(body, indent=1, ensure_ascii=False) + "\n")

    def _scan(self) -> dict[str, dict[str, dict]]:
        """Every complete version folder on disk, read back from its manifest.json."""
        found: dict[str, dict[str, dict]] = {}
        for manifest in sorted(self.root.glob(f"*/*/*/{MANIFEST}")):
            folder = manifest.parent
            if folder.name.startswith("."):
                continue  # staging, or set aside for deletion: not installed
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


def well_formed(resources: object) -> bool:
    """Whether ``resources`` has the shape registry.json promises: resource id → semver version →
    a record whose ``kind`` is text, ``files`` maps names to {sha256, size} and ``extra`` is a dict."""
    if not isinstance(resources, dict):
        return False
    for rid, versions in resources.items():
        if not is_id(rid) or not isinstance(versions, dict):
            return False
        for version, record in versions.items():
            if not isinstance(version, str) or not semver.Version.is_valid(version) or not isinstance(record, dict):
                return False
            files, extra, size = record.get("files", {}), record.get("extra", {}), record.get("size_bytes", 0)
            if not isinstance(record.get("kind"), str) or not isinstance(extra, dict) or not isinstance(files, dict):
                return False
            if isinstance(size, bool) or not isinstance(size, int):
                return False
            if not all(isinstance(name, str) and isinstance(f, dict) and isinstance(f.get("size", 0), int)
                       for name, f in files.items()):
                return False
    return True


def file_inside(folder: Path, relative: str) -> Path | None:
    """The regular file ``relative`` (a "/"-separated path) inside a version ``folder``, or None:
    never a symbolic link (at any step), never ``..``, never outside ``folder``. What the app
    serves from a resource's files goes through here: a model folder could carry a link to
    /etc/passwd or to /."""
    path = folder
    try:
        for part in relative.split("/"):
            if part in ("", ".", "..") or "\\" in part or "\0" in part:
                return None
            path = path / part
            if path.is_symlink():  # raises for a name the file system refuses (too long)
                return None
        inside = path.resolve(strict=True).is_relative_to(folder.resolve(strict=True))
    except (OSError, RuntimeError):
        return None
    return path if inside and path.is_file() else None


def discard(folder: Path) -> None:
    """Move a folder aside in one rename, then delete it: it is never seen half deleted."""
    aside = folder.with_name(f".trash-{uuid.uuid4().hex}")
    os.replace(folder, aside)
    shutil.rmtree(aside, ignore_errors=True)


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
