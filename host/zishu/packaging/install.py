"""Installing an opened, verified package: its resources through the normal installer, then the
character as a version of its own.

Resources are resolved by the normal plan (``zishu.resources.plan.make_plan``, here over the
manifests the package carries, so it needs no catalog) and put in place by the normal
``Installer``: an embedded resource from the verified files (checked again against its manifest),
a referenced one downloaded (resumable, verified), and in a hybrid package a referenced one whose
download fails installs from its embedded fallback. A resource version already installed is kept.

The character never overwrites anything: when its id is not installed, it lands as the packed
version; when it is (the user's own edits, or an older copy), it lands as a NEW version above every
installed one, and ``undo_package_install`` removes that version again (the previous one is current
again), like Undo after an edit.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import semver

from zishu.catalog import RESOURCE, Resource
from zishu.errors import NotFound, RemoteError, UnknownResource, UsageError
from zishu.files import write_atomic
from zishu.resources.install import Installer, link_or_copy, sha256_of
from zishu.resources.plan import make_plan
from zishu.resources.versions import MANIFEST, VersionStore, discard

from .format import Embedded, FromCatalog
from .opened import OpenedPackage

log = logging.getLogger(__name__)

Progress = Callable[[int, int | None, str], None]
FROM_PACKAGE = "from_package"  # the registry record's extra: which package file a version came from


class _PackageCatalog:
    """The resource manifests a package carries, as the plan's catalog."""

    def __init__(self, resources: list[Resource]) -> None:
        self.resources = {r.id: r for r in resources}

    def resource(self, id: str) -> Resource:
        if id not in self.resources:
            raise UnknownResource(f"{id} is not among the resources the package carries")
        return self.resources[id]


def install_package(store: VersionStore, opened: OpenedPackage, installer: Installer,
                    progress: Progress | None = None) -> dict:
    """Install the package's resources and its character; returns what landed."""
    report = progress or (lambda done, total, message: None)
    m = opened.manifest
    by_resource: dict[str, list] = {}
    for f in m.files:
        if f.path.startswith("resources/"):
            rid = "/".join(f.path.split("/")[1:3])
            by_resource.setdefault(rid, []).append(f)
    installed: list[dict] = []
    if m.resources:
        plan = make_plan(_PackageCatalog(m.resources), [f"{r.id}@{r.versions[0].version}" for r in m.resources],
                         store)
        for step in plan.steps:
            if step.installed:
                continue
            report(0, None, f"installing {step.id}@{step.version.version}")
            files = by_resource.get(step.id, [])
            folder = opened.root / "resources" / step.id / step.version.version
            embedded = all(isinstance(f.source, Embedded) for f in files)
            how = "embedded"
            if embedded:
                done = installer.install_version(step.resource, step.version, source=folder)
            else:
                try:
                    done = installer.install_version(step.resource, step.version)
                    how = "downloaded"
                except RemoteError as e:
                    if not all(isinstance(f.source, FromCatalog) and f.source.fallback for f in files):
                        raise
                    log.warning("%s: %s; installing the copy inside the package", step.id, e)
                    done = installer.install_version(step.resource, step.version, source=folder)
                    how = "fallback"
            installed.append({"id": done.id, "version": done.version, "how": how})
    character = _install_character(store, opened)
    report(1, 1, f"installed {character['id']}@{character['version']}")
    return {"character": character, "resources": installed, "file": opened.name}


def _install_character(store: VersionStore, opened: OpenedPackage) -> dict:
    character = opened.manifest.character
    rid, packed = character.id, character.versions[0].version
    own = opened.root / "character"
    with store.lock:
        versions = store.versions(rid)
        version = packed
        if versions:
            newest = semver.Version.parse(versions[0])
            if same_as_installed(store, rid, versions[0], opened):
                return {"id": rid, "version": versions[0], "new": False, "replaced_nothing": True}
            if semver.Version.parse(packed) <= newest or packed in versions:
                version = str(newest.bump_patch())
        entry = character.versions[0].model_copy(update={"version": version})
        resource = character.model_copy(update={"versions": [entry]})
        staging = store.staging(rid, version)
        try:
            files = {}
            for path in sorted(own.rglob("*")) if own.is_dir() else []:
                if path.is_file():
                    name = path.relative_to(own).as_posix()
                    link_or_copy(path, staging / name)
                    files[name] = {"sha256": sha256_of(path), "size": path.stat().st_size}
            write_atomic(staging / MANIFEST, RESOURCE.dump_json(resource, indent=1).decode() + "\n")
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        store.put(staging, rid, version, kind="character", files=files, extra={FROM_PACKAGE: opened.name})
    return {"id": rid, "version": version, "new": True, "previous": versions[0] if versions else None}


def same_as_installed(store: VersionStore, rid: str, version: str, opened: OpenedPackage) -> bool:
    """Whether the installed ``rid@version`` already is the packed character (same spec and files)."""
    from zishu.resources.install import manifest_of

    try:
        installed = manifest_of(store.version_dir(rid, version))
    except (OSError, ValueError):
        return False
    keep = {"name", "summary", "tags", "spec", "license"}
    if installed.model_dump(mode="json", include=keep) != opened.manifest.character.model_dump(mode="json",
                                                                                               include=keep):
        return False
    record = store.load().get(rid, {}).get(version, {}).get("files", {})
    own = {f.path.removeprefix("character/"): f.sha256 for f in opened.manifest.files
           if f.path.startswith("character/")}
    return own == {name: f.get("sha256") for name, f in record.items()}


def undo_package_install(store: VersionStore, rid: str, version: str) -> dict:
    """Remove the character version a package installed; the one before is current again (a
    character that had none before is removed). Only the newest version can be undone."""
    with store.lock:
        versions = store.versions(rid)
        if version not in versions:
            raise NotFound(f"{rid}@{version} is not installed")
        if versions[0] != version:
            raise UsageError(f"{rid}@{version} is not the newest version ({versions[0]} is); undo that first")
        record = store.load()[rid][version]
        if FROM_PACKAGE not in (record.get("extra") or {}):
            raise UsageError(f"{rid}@{version} was not installed from a package")
        store.remove(rid, version)
    return {"id": rid, "removed": version, "version": versions[1] if len(versions) > 1 else None}


def cleanup(workdir: Path) -> None:
    if workdir.exists():
        discard(workdir)
