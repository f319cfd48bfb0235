"""Packing a character and installing a package: what ``zishu pack``, ``zishu install FILE`` and
the app's routes and jobs call.

A package is opened into a fresh folder under ``ZISHU_HOME/tmp/`` (the same disk as the
resources, so installing moves nothing across disks), verified there by its format, installed,
and the folder removed, whatever happened.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from zishu import system
from zishu.errors import UsageError
from zishu.resources.versions import VersionStore

from .formats import Progress, format_for, format_named
from .install import cleanup, install_package
from .opened import OpenedPackage
from .parts import Catalog, gather


def pack_character(store: VersionStore, rid: str, out: Path, *, mode: str = "standalone", format: str = "zpkg",
                   catalog: Catalog | None = None, progress: Progress | None = None) -> Path:
    """Write the character ``rid`` (and what it needs) as a package at ``out``."""
    fmt = format_named(format)
    if mode not in fmt.modes:
        raise UsageError(f"--mode {mode}: the {fmt.name} format packs in {', '.join(fmt.modes)} mode only")
    parts = gather(store, rid, catalog)
    return fmt.pack(parts, mode, out, progress)


def workdir(home: Path) -> Path:
    return home / "tmp" / f"package-{uuid.uuid4().hex}"


def is_package(path: Path) -> bool:
    """Whether some format opens files like ``path`` (by suffix)."""
    try:
        format_for(path)
    except UsageError:
        return False
    return True


def read_package(home: Path, path: Path) -> dict:
    """Open and verify ``path`` without installing; its summary (the Install dialog's plan)."""
    where = workdir(home)
    try:
        return _open(path, where).summary(system.summary(home))
    finally:
        cleanup(where)


def install_package_file(store: VersionStore, path: Path, *, installer, progress: Progress | None = None) -> dict:
    """Open, verify and install the package at ``path``; returns what landed and the summary."""
    where = workdir(store.home)
    try:
        opened = _open(path, where)
        result = install_package(store, opened, installer, progress)
        return {**result, "summary": opened.summary(system.summary(store.home))}
    finally:
        cleanup(where)


def _open(path: Path, where: Path) -> OpenedPackage:
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    fmt = format_for(path)
    assert fmt.open is not None  # format_for returns only formats that open files
    return fmt.open(path, where)
