"""Catalog plugins: a ``kind: plugin`` resource's wheel, installed for this user and loaded at start.

After the installer has put the version in place (its wheel downloaded and sha256-verified), the
wheel is read (``read_wheel``: its name, version, requirements and entry points from its
``*.dist-info``), checked against the catalog's ``spec`` (the distribution it names, the ``zishu``
entry point it declares), shown to the user for consent (``consent_lines``), and only then installed
(``install_plugin``) with ``pip install --no-deps --no-index --target`` into its own folder,
``ZISHU_HOME/plugins/<distribution>/``: no network, and nothing outside that folder. Its
requirements must already be installed (here or in another plugin folder), or the install is
refused naming them. ``plugins.load_plugins`` puts each folder on the discovery path at the next
start, where the usual entry-point loading isolates a plugin that fails. ``remove_plugin`` deletes
the folder when the resource is uninstalled.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
import zipfile
from dataclasses import dataclass, field
from email.parser import Parser
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from zishu.catalog import Resource
from zishu.catalog.manifest import PluginSpec
from zishu.errors import InstallPlanError

FOLDER = "plugins"
MARK = "zishu-plugin.json"  # in each plugin's folder: the catalog id and version it came from


@dataclass
class WheelInfo:
    distribution: str
    version: str
    requires: list[str] = field(default_factory=list)
    entry_points: dict[str, list[str]] = field(default_factory=dict)  # group -> ["name = module:attr"]


def plugins_root(home: Path) -> Path:
    return Path(home) / FOLDER


def plugin_folders(home: Path) -> list[Path]:
    """Every installed catalog plugin's folder (what ``load_plugins`` adds to the discovery path)."""
    root = plugins_root(home)
    return sorted(p for p in root.iterdir() if (p / MARK).is_file()) if root.is_dir() else []


def read_wheel(path: Path) -> WheelInfo:
    """A wheel's metadata, read from the zip without running anything in it."""
    try:
        with zipfile.ZipFile(path) as wheel:
            infos = {n.split("/", 1)[0] for n in wheel.namelist() if n.split("/", 1)[0].endswith(".dist-info")}
            if len(infos) != 1:
                raise InstallPlanError(f"{path.name}: a wheel holds one *.dist-info folder; this one has {len(infos)}")
            info = infos.pop()
            meta = Parser().parsestr(wheel.read(f"{info}/METADATA").decode("utf-8"))
            try:
                points = wheel.read(f"{info}/entry_points.txt").decode("utf-8")
            except KeyError:
                points = ""
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError) as e:
        raise InstallPlanError(f"{path.name} is not a readable wheel: {e}") from None
    groups: dict[str, list[str]] = {}
    group = None
    for line in points.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            group = line[1:-1].strip()
            groups.setdefault(group, [])
        elif line and not line.startswith("#") and group is not None:
            groups[group].append(" = ".join(part.strip() for part in line.split("=", 1)))
    return WheelInfo(meta["Name"] or "", meta["Version"] or "", meta.get_all("Requires-Dist") or [], groups)


def check_wheel(resource: Resource, info: WheelInfo) -> None:
    """Refuse a wheel that is not what the catalog entry says: another distribution, or no
    ``zishu`` entry point of the spec's name (what the user consents to is what gets loaded)."""
    spec = resource.spec
    assert isinstance(spec, PluginSpec)
    if canonicalize_name(info.distribution) != canonicalize_name(spec.distribution):
        raise InstallPlanError(f"{resource.id}: the wheel is distribution {info.distribution!r}, "
                            f"the catalog's spec.distribution says {spec.distribution!r}")
    names = [p.split(" = ", 1)[0] for p in info.entry_points.get("zishu", [])]
    if names != [spec.entry_point]:
        raise InstallPlanError(f"{resource.id}: the wheel declares zishu entry points {names or 'none'}, "
                            f"the catalog's spec.entry_point says exactly [{spec.entry_point!r}]")


def missing_requirements(info: WheelInfo, home: Path) -> list[str]:
    """The wheel's requirements that nothing installed satisfies (here, or in a plugin folder)."""
    paths = [*sys.path, *map(str, plugin_folders(home))]
    missing = []
    for text in info.requires:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            missing.append(f"{text} (not a requirement pip can read)")
            continue
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # an optional extra, or another platform's
        found = _installed_version(req.name, paths)
        if found is None:
            missing.append(f"{req} (not installed)")
        elif req.specifier and not req.specifier.contains(found, prereleases=True):
            missing.append(f"{req} (found {found})")
    return missing


def _installed_version(name: str, paths: list[str]) -> str | None:
    from importlib.metadata import distributions

    for dist in distributions(path=paths):
        if canonicalize_name(dist.metadata["Name"] or "") == canonicalize_name(name):
            return dist.version
    try:
        return distribution(name).version
    except PackageNotFoundError:
        return None


def consent_lines(resource: Resource, info: WheelInfo) -> list[str]:
    """What the user agrees to: the catalog's spec and what the wheel itself declares."""
    spec = resource.spec
    assert isinstance(spec, PluginSpec)
    lines = [f"{resource.id} is a plugin: Python code that runs inside Zishu with your user's rights.",
             f"  distribution {info.distribution} {info.version} (catalog: {spec.distribution}, "
             f"entry point {spec.entry_point!r})"]
    for group, points in sorted(info.entry_points.items()):
        lines.extend(f"  entry point [{group}] {p}" for p in points)
    lines.append(f"  requires {', '.join(info.requires)}" if info.requires else "  requires nothing else")
    lines.append(f"  license {resource.license} · maintainers {', '.join(resource.maintainers)}")
    return lines


def plugin_wheel(resource: Resource, version_dir: Path) -> Path:
    spec = resource.spec
    assert isinstance(spec, PluginSpec)
    return version_dir / spec.wheel


def inspect_plugin(resource: Resource, version_dir: Path, home: Path) -> WheelInfo:
    """Read and check an installed plugin version's wheel; refuse it when a requirement is missing."""
    info = read_wheel(plugin_wheel(resource, version_dir))
    check_wheel(resource, info)
    missing = missing_requirements(info, home)
    if missing:
        raise InstallPlanError(f"{resource.id} needs Python packages that are not installed: {'; '.join(missing)} "
                               "(plugins are installed without their dependencies; install those first)")
    return info


def install_plugin(resource: Resource, version: str, version_dir: Path, home: Path) -> Path:
    """Install the (verified, checked, consented-to) wheel into ``ZISHU_HOME/plugins/<dist>/``;
    it replaces an earlier version of the same plugin in one rename. Returns the folder."""
    info = inspect_plugin(resource, version_dir, home)
    root = plugins_root(home)
    root.mkdir(parents=True, exist_ok=True)
    final = root / canonicalize_name(info.distribution)
    staging = root / f".{final.name}.{uuid.uuid4().hex}.tmp"
    command = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--no-compile",
               "--disable-pip-version-check", "--target", str(staging), str(plugin_wheel(resource, version_dir))]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PIP_NO_INPUT": "1"})
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise InstallPlanError(f"{resource.id}: pip refused the wheel: {done.stderr.strip()[-2000:]}")
    (staging / MARK).write_text(json.dumps({"id": resource.id, "version": version,
                                            "distribution": info.distribution}) + "\n")
    old = root / f".{final.name}.{uuid.uuid4().hex}.old"
    if final.exists():
        os.replace(final, old)
    os.replace(staging, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def _marks(home: Path) -> list[tuple[Path, dict]]:
    found = []
    for folder in plugin_folders(home):
        try:
            found.append((folder, json.loads((folder / MARK).read_text())))
        except (OSError, ValueError):
            continue
    return found


def enabled_version(home: Path, rid: str) -> str | None:
    """The version of catalog plugin ``rid`` installed for loading, if any."""
    return next((mark.get("version") for _, mark in _marks(home) if mark.get("id") == rid), None)


def remove_plugin(home: Path, rid: str, versions: list[str] | None = None) -> list[Path]:
    """Delete the plugin folder installed from catalog resource ``rid`` (from one of ``versions``
    when given); returns what was removed."""
    removed = []
    for folder, mark in _marks(home):
        if mark.get("id") == rid and (versions is None or mark.get("version") in versions):
            shutil.rmtree(folder)
            removed.append(folder)
    return removed
