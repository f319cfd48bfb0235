"""Where Zishu keeps things and which catalog it reads, from the environment with offline defaults.

    ZISHU_HOME        data folder (default ~/.zishu): resources/, registry.json, cache/, ...
    ZISHU_CATALOG     the catalog: an https URL or a file:// URL or path of a built catalog;
                      default: the snapshot bundled with the package (works offline)
    ZISHU_MODEL_DIRS  folders (separated by the OS path separator) where the user already keeps
                      model files; installs look there for a file with the right sha256 first
    ZISHU_RAM_BUDGET_MB   the RAM loaded models may take together (default: 80 % of the RAM)
    ZISHU_VRAM_BUDGET_MB  the VRAM they may take (default: the first GPU's memory)
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    return Path(os.environ.get("ZISHU_HOME") or Path.home() / ".zishu").expanduser()


def catalog_source() -> str | None:
    """The configured catalog, or None for the bundled snapshot."""
    return os.environ.get("ZISHU_CATALOG") or None


def model_dirs() -> list[Path]:
    raw = os.environ.get("ZISHU_MODEL_DIRS", "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]


def memory_budget(name: str) -> int | None:
    """ZISHU_RAM_BUDGET_MB / ZISHU_VRAM_BUDGET_MB in bytes, or None for the default."""
    variable = f"ZISHU_{name.upper()}_BUDGET_MB"
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        from zishu.errors import UsageError

        raise UsageError(f"{variable} must be a whole number of megabytes, not {raw!r}")
    return int(raw) * 2**20
