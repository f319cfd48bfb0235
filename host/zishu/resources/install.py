"""Installing, adopting, uninstalling and cleaning up resource versions under ZISHU_HOME.

A version is assembled in a hidden staging folder beside its final place (holding the version
store's ``assembling`` claim, not its lock, since a download may take hours); ``manifest.json`` is
written last and the store renames the folder into place and records it in one step under its
lock (see ``versions.py``), so a version folder either holds every verified file or does not
exist. Files the user already has (``--from PATH``, or a file with the right sha256 in one of
``ZISHU_MODEL_DIRS``) are hard-linked, or copied across disks, instead of downloaded.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from filelock import FileLock, Timeout

from zishu.catalog import RESOURCE, FileEntry, Resource, Version
from zishu.errors import ChecksumMismatch, UsageError
from zishu.files import write_atomic

from .locks import LOCK, key_of, lock_path
from .plan import InstallPlan, Step
from .versions import MANIFEST, VersionStore

if TYPE_CHECKING:
    from .plugin_wheels import WheelInfo


class Fetcher(Protocol):
    def fetch(self, entry: FileEntry, dest: Path): ...


Approve = Callable[[Resource, "WheelInfo"], bool]  # the user's consent to one plugin (plugin_wheels)


@dataclass
class Installed:
    id: str
    version: str
    path: Path
    transferred: int
    reused: int


def sha256_of(path: Path, chunk: int = 1024 * 1024) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def link_or_copy(src: Path, dest: Path) -> None:
    """Hard link ``src`` at ``dest`` (no extra space), or copy when they are on different disks."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.unlink(missing_ok=True)
    try:
        os.link(src, dest)
    except OSError:
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)


def find_local(entry: FileEntry, folders: Iterable[Path]) -> Path | None:
    """A file the user already has with this entry's size and sha256, if any."""
    if not entry.sha256 or entry.size is None:
        return None
    for folder in folders:
        for path in folder.rglob("*") if folder.is_dir() else []:
            try:
                if path.is_file() and path.stat().st_size == entry.size and sha256_of(path) == entry.sha256:
                    return path
            except OSError:
                continue
    return None


def _verify(path: Path, entry: FileEntry, *, trust_unverified: bool = True) -> dict:
    """The sha256 and size of a file the user has, refused when they are not the manifest's, or
    when the manifest gives no sha256 to check them against and ``trust_unverified`` is False."""
    if not entry.sha256 and not trust_unverified:
        raise UsageError(
            f"{entry.name}: the catalog gives no sha256 for this file, so {path} cannot be verified "
            "(any file of that name would be adopted); download it with `zishu install` to have it "
            "checked against the hub's published hash, or pass --trust-unverified to adopt it anyway"
        )
    size = path.stat().st_size
    digest = sha256_of(path)
    if entry.size is not None and size != entry.size:
        raise ChecksumMismatch(f"{entry.name}: {path} is {size:,} bytes, the manifest says {entry.size:,}")
    if entry.sha256 and digest != entry.sha256:
        raise ChecksumMismatch(f"{entry.name}: {path} has sha256 {digest}, the manifest says {entry.sha256}")
    return {"sha256": digest, "size": size}


class Installer:
    """Puts resource versions in place. One per ZISHU_HOME; safe across threads and processes."""

    def __init__(self, registry: VersionStore, fetcher: Fetcher, *, model_dirs: Iterable[Path] = ()) -> None:
        self.registry = registry  # the version store every version is put in place through
        self.fetcher = fetcher
        self.model_dirs = list(model_dirs)

    def install(self, plan: InstallPlan, on_step: Callable[[Step], None] | None = None,
                approve_plugin: Approve | None = None) -> list[Installed]:
        """Install every step not yet installed, dependencies first. A plugin's wheel is then
        checked and shown to ``approve_plugin``; only with its consent is it installed for loading
        at the next start (``plugin_wheels``), otherwise its version is removed again and the
        install stops with the reason."""
        done = []
        for step in plan.steps:
            if on_step:
                on_step(step)
            done.append(self.install_version(step.resource, step.version))
            if step.resource.kind == "plugin":
                self._enable_plugin(step, done[-1], approve_plugin)
        return done

    def _enable_plugin(self, step: Step, installed: Installed, approve: Approve | None) -> None:
        from .plugin_wheels import enabled_version, inspect_plugin, install_plugin

        home = self.registry.home
        if enabled_version(home, step.id) == installed.version:
            return  # this very version is already enabled
        try:
            info = inspect_plugin(step.resource, installed.path, home)
            if approve is None or not approve(step.resource, info):
                raise UsageError(f"{step.id}@{installed.version} was not installed: a plugin runs code inside "
                                 "Zishu, and its installation was not approved (--yes, or the app's dialog)")
            install_plugin(step.resource, installed.version, installed.path, home)
        except Exception:
            self.uninstall(step.id, installed.version)  # nothing of a refused plugin stays
            raise

    def install_version(self, resource: Resource, version: Version, *, source: Path | None = None,
                        trust_unverified: bool = False) -> Installed:
        """Put one version in place (from ``source`` when given, else local copies or downloads).

        A file from ``source`` must match the manifest's sha256 and size; one whose sha256 the
        manifest does not give is refused unless ``trust_unverified``. The measured sha256 and size
        of every file are recorded, in the registry and in the installed manifest.json."""
        rid, store = resource.id, self.registry
        with store.assembling(rid, version.version):  # a download may take hours: not under the store's lock
            final = store.version_dir(rid, version.version)
            if (final / MANIFEST).exists() and version.version in store.versions(rid):
                return Installed(rid, version.version, final, 0, 0)
            staging = store.staging(rid, version.version)
            files, transferred, reused = {}, 0, 0
            for entry in version.files:
                dest = staging / entry.name
                local = self._source_file(source, entry, version) if source else find_local(entry, self.model_dirs)
                if local is not None:
                    files[entry.name] = _verify(local, entry, trust_unverified=source is None or trust_unverified)
                    link_or_copy(local, dest)
                    reused += files[entry.name]["size"]
                else:
                    fetched = self.fetcher.fetch(entry, dest)
                    files[entry.name] = {"sha256": fetched.sha256, "size": fetched.size}
                    transferred += fetched.transferred
            measured = with_measured(resource, version, files)
            write_atomic(staging / MANIFEST, RESOURCE.dump_json(measured, indent=1).decode() + "\n")
            store.put(staging, rid, version.version, kind=resource.kind, files=files)
            return Installed(rid, version.version, final, transferred, reused)

    @staticmethod
    def _source_file(source: Path, entry: FileEntry, version: Version) -> Path:
        if source.is_dir():
            path = source / entry.name
        elif len(version.files) == 1:
            path = source
        else:
            raise UsageError(
                f"{source} is one file but version {version.version} has {len(version.files)}; pass their folder"
            )
        if not path.is_file():
            raise UsageError(f"{entry.name} is not in {source}")
        return path

    def uninstall(self, rid: str, version: str | None = None) -> list[str]:
        """Remove one version, or every version when ``version`` is None; returns what was removed."""
        versions = [version] if version else self.registry.versions(rid)
        if version and version not in self.registry.versions(rid):
            raise UsageError(f"{rid}@{version} is not installed")
        for v in versions:
            with self.registry.assembling(rid, v):  # after an install of it in progress, not during
                self.registry.remove(rid, v)
        from .plugin_wheels import remove_plugin

        remove_plugin(self.registry.home, rid, versions)  # a catalog plugin installed from one of them
        return versions

    def gc(self, partials: Path | None = None) -> int:
        """Remove staging leftovers, folders without manifest.json and partial downloads; bytes freed."""
        freed = self.registry.collect_garbage()
        if partials is None or not partials.is_dir():
            return freed
        for part in sorted(partials.iterdir()):
            key = key_of(part)
            if key is None or part.name.endswith(LOCK):
                continue
            try:
                with FileLock(str(lock_path(partials, key))).acquire(timeout=0):
                    freed += part.stat().st_size
                    part.unlink()
            except (Timeout, FileNotFoundError):
                continue  # a transfer holds it right now, or it is already gone
        return freed


def with_measured(resource: Resource, version: Version, files: dict[str, dict]) -> Resource:
    """``resource`` with ``version``'s files carrying the sha256 and size measured at install where
    the catalog gave none, so the installed manifest.json shows them from then on."""
    entries = [f.model_copy(update={"sha256": f.sha256 or files[f.name]["sha256"],
                                    "size": f.size if f.size is not None else files[f.name]["size"]})
               if f.name in files else f for f in version.files]
    filled = version.model_copy(update={"files": entries})
    return resource.model_copy(update={"versions": [filled if v is version else v for v in resource.versions]})


def manifest_of(folder: Path) -> Resource:
    return RESOURCE.validate_json((folder / MANIFEST).read_bytes())



def installer_for(registry: VersionStore, *, progress=None, cancelled=None, **downloader_options) -> Installer:
    """The installer the CLI and the install job use: downloads into ZISHU_HOME/partials (after
    clearing leftovers nothing can resume), reusing files from ZISHU_MODEL_DIRS.
    ``downloader_options`` go to the Downloader (the install job waits out outages)."""
    from zishu import config

    from .downloader import Downloader
    from .locks import reconcile

    reconcile(registry.home / "partials")
    downloader = Downloader(registry.home / "partials", progress=progress, cancelled=cancelled,
                            **downloader_options)
    return Installer(registry, downloader, model_dirs=config.model_dirs())
