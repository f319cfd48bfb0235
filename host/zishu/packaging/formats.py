"""The package formats plugins registered through ``register_package_formats``.

A format is a name, the file suffixes it reads and writes, the modes it packs in, and two
functions: ``pack(parts, mode, out, progress)`` writes a file from a ``CharacterParts``
(``zishu.packaging.parts``) and returns its path; ``open(path, workdir)`` (optional) reads a
file, verifies it, and returns an ``OpenedPackage`` (``zishu.packaging.opened``) the host then
installs. ``progress(done, total, message)`` reports bytes. The first registration of a name wins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zishu import plugins
from zishu.errors import UsageError

Progress = Callable[[int, int | None, str], None]


@dataclass(frozen=True)
class PackageFormat:
    name: str
    suffixes: tuple[str, ...]
    pack: Callable[..., Path]
    open: Callable[..., Any] | None = None
    modes: tuple[str, ...] = ("standalone",)
    title: str = ""

    def as_dict(self) -> dict:
        return {"name": self.name, "suffixes": list(self.suffixes), "modes": list(self.modes),
                "title": self.title or self.name, "opens": self.open is not None}


def formats() -> dict[str, PackageFormat]:
    """Every registered format by name, in registration order (plugins before the core's)."""
    found: dict[str, PackageFormat] = {}

    def register(name: str, suffixes, pack, open=None, modes=("standalone",), title: str = "") -> None:
        if name not in found:
            found[name] = PackageFormat(name, tuple(s.lower() for s in suffixes), pack, open, tuple(modes), title)

    plugins.call_each("register_package_formats", register=register)
    return found


def format_named(name: str) -> PackageFormat:
    known = formats()
    if name not in known:
        raise UsageError(f"--format {name}: no such package format (known: {', '.join(known) or 'none'})")
    return known[name]


def format_for(path: Path) -> PackageFormat:
    """The format that opens ``path``, by its suffix."""
    suffix = path.suffix.lower()
    for fmt in formats().values():
        if suffix in fmt.suffixes and fmt.open is not None:
            return fmt
    raise UsageError(f"{path.name}: no package format opens {suffix or 'files without a suffix'} files")
