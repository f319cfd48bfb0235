"""Which Live2D Cubism Core is installed and what it can run.

The Cubism Core for Web (``live2dcubismcore.min.js``) answers ``Live2DCubismCore.Version.
csmGetVersion()`` (``0xMMmmpppp``: major, minor, patch) and ``csmGetLatestMocVersion()`` (the newest
model file format it reads) only when it runs. Zishu reads both from the file without running it:
every published core is emscripten output whose two functions return a constant, written as
``csmGetVersion:function(){return 67174400}`` (asm.js, 4.x), as an export that names such a
function (``_csmGetVersion=function(){return b.asm.f.apply(...)}`` then ``f:function(){return
83951616}``, 5.x) or as ``_csmGetVersion:Ga`` then ``function Ga(){return 50528257}`` (3.3). A file
whose version cannot be read is accepted; the page checks the running core again.

A model's ``.moc3`` starts with ``MOC3`` and a format byte (Live2D's ``csmMocVersion``):

    1  Cubism 3.0-3.2     2  Cubism 3.3     3  Cubism 4.0-4.1     4  Cubism 4.2
    5  Cubism 5.0-5.2     6  Cubism 5.3 and later (blend modes, offscreen drawing)

A core reads formats up to its latest; a model in a newer format is refused with what it needs
("this model needs a Cubism 5 core; yours is 4.1") rather than failing inside the renderer. The
renderer (pixi-live2d-display 0.4, Cubism 4 framework) needs a core of 4.0 or later and draws formats
up to 5: a 3.x core, or a 5.3 model, is refused with that reason.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

MOC_FORMATS = {1: "3.0", 2: "3.3", 3: "4.0", 4: "4.2", 5: "5.0", 6: "5.3"}
"""moc3 format byte -> the first Cubism Editor version that writes it."""
CORE_NEEDED = {1: "3", 2: "3.3", 3: "4", 4: "4.2", 5: "5", 6: "5 (SDK R5, core 6.0)"}
"""moc3 format byte -> the Cubism Core generation that first reads it."""
RENDERER = "pixi-live2d-display 0.4"
RENDERER_OLDEST_CORE = 4  # its Cubism 4 framework calls functions that 3.x cores lack
RENDERER_LATEST_MOC = 5  # Cubism 5.3's blend modes and offscreen drawing are beyond it
MAX_MOC3_JSON_BYTES = 1024 * 1024

_NUMBER = r"(\d{1,10})"
_NAME = r"([A-Za-z_$][\w$]*)"


@dataclass(frozen=True)
class CoreVersion:
    """A Cubism Core's version and the newest moc3 format it reads (``latest_moc``)."""

    major: int
    minor: int
    patch: int
    latest_moc: int

    @classmethod
    def from_number(cls, number: int, latest_moc: int | None = None) -> CoreVersion:
        major, minor, patch = (number >> 24) & 0xFF, (number >> 16) & 0xFF, number & 0xFFFF
        return cls(major, minor, patch, latest_moc if latest_moc else _latest_moc_of(major, minor))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def short(self) -> str:
        """What a user calls it: "4.1", "5.0"."""
        return f"{self.major}.{self.minor}"

    def problem(self) -> str:
        """Why the renderer cannot use this core ("" when it can)."""
        if self.major < RENDERER_OLDEST_CORE:
            return (f"Cubism Core {self} is older than {RENDERER} works with (it needs a core of "
                    f"{RENDERER_OLDEST_CORE}.0 or later): use live2dcubismcore.min.js from the Cubism SDK for "
                    f"Web 4 or 5")
        return ""

    def runs(self) -> str:
        """Which models it runs, in words."""
        top = min(self.latest_moc, RENDERER_LATEST_MOC)
        text = f"it runs models made with Cubism 3.0 to {_up_to(top)} (moc3 formats 1-{top})"
        if top < RENDERER_LATEST_MOC:
            text += f"; Cubism {MOC_FORMATS[top + 1]} and newer models need a newer core"
        return text


def _latest_moc_of(major: int, minor: int) -> int:
    """For cores older than csmGetLatestMocVersion (3.x): the format they read."""
    if major < 3:
        return 0
    if major == 3:
        return 2 if minor >= 3 else 1
    if major == 4:
        return 3 if minor < 2 else 4
    return 5 if major == 5 else 6


def _up_to(moc: int) -> str:
    """The newest Cubism Editor version writing format ``moc``, as a user reads it."""
    return {1: "3.2", 2: "3.3", 3: "4.1", 4: "4.2", 5: "5.2", 6: "5.3+"}.get(moc, MOC_FORMATS.get(moc, "?"))


def _constant(text: str, function: str) -> int | None:
    """The constant that the core's ``function`` (csmGetVersion, csmGetLatestMocVersion) returns."""
    found = set(re.findall(rf"\b_?{function}\s*:\s*function\s*\(\)\s*\{{\s*return\s+{_NUMBER}\s*;?\s*\}}", text))
    if not found:  # an export pointing at a function defined elsewhere
        names = set(re.findall(rf"\b_{function}\s*=\s*function\s*\(\)\s*\{{\s*return\s+\w+\.asm\.{_NAME}\.apply", text))
        names |= set(re.findall(rf"\b_{function}\s*:\s*{_NAME}\s*[,}}]", text))
        for name in names - {"function"}:
            n = re.escape(name)
            found |= set(re.findall(
                rf"(?<![\w$.]){n}\s*:\s*function\s*\(\)\s*\{{\s*return\s+{_NUMBER}\s*;?\s*\}}", text))
            found |= set(re.findall(rf"\bfunction\s+{n}\s*\(\)\s*\{{\s*return\s+{_NUMBER}\s*;?\s*\}}", text))
    return int(found.pop()) if len(found) == 1 else None


def read_core_version(data: bytes | str) -> CoreVersion | None:
    """The version of the Cubism Core in ``data`` (the .js file), or None when it cannot be read."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    number = _constant(text, "csmGetVersion")
    if number is None or not 3 <= (number >> 24) <= 30:
        return None
    latest = _constant(text, "csmGetLatestMocVersion")
    return CoreVersion.from_number(number, latest if latest and latest < 64 else None)


@lru_cache(maxsize=8)
def _core_version_cached(path: str, mtime_ns: int, size: int) -> CoreVersion | None:
    return read_core_version(Path(path).read_bytes())


def installed_core_version(path: Path) -> CoreVersion | None:
    """``read_core_version`` of the file at ``path`` (cached while the file is unchanged)."""
    try:
        stat = path.stat()
        return _core_version_cached(str(path), stat.st_mtime_ns, stat.st_size)
    except OSError:
        return None


def describe(version: CoreVersion | None) -> str:
    """One line for ``zishu live2d core``: the version and what it runs, or why it cannot be used."""
    if version is None:
        return "Its version could not be read from the file; the app checks it when the avatar starts."
    if version.problem():
        return f"{version.problem()}."
    return f"Cubism Core {version}: {version.runs()}."


# -- models ---------------------------------------------------------------------------------------


def read_moc_version(header: bytes) -> int | None:
    """The format byte of a .moc3 file's header, or None when ``header`` is not a moc3 header."""
    if len(header) < 5 or header[:4] != b"MOC3" or header[4] == 0:
        return None
    return header[4]


def model_moc_version(model3: Path) -> int | None:
    """The moc3 format of the model whose .model3.json is ``model3`` (None: unreadable)."""
    try:
        if model3.stat().st_size > MAX_MOC3_JSON_BYTES:
            return None
        moc = json.loads(model3.read_text(encoding="utf-8"))["FileReferences"]["Moc"]
        path = (model3.parent / moc).resolve()
        if not isinstance(moc, str) or not path.is_relative_to(model3.parent.resolve()):
            return None
        with path.open("rb") as f:
            return read_moc_version(f.read(8))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def moc_info(moc: int | None) -> dict | None:
    """What the page needs to check the running core against the model: {"version", "format", "needs"}."""
    if moc is None:
        return None
    return {"version": moc, "format": MOC_FORMATS.get(moc, f"newer than {MOC_FORMATS[6]}"),
            "needs": CORE_NEEDED.get(moc, f"newer than {CORE_NEEDED[6]}")}


def model_refusal(core: CoreVersion | None, moc: int | None) -> str:
    """Why this core and renderer cannot show a model of moc3 format ``moc`` ("" when they can or
    when it cannot be known here)."""
    if core is not None and core.problem():
        return core.problem()
    if moc is None:
        return ""
    info = moc_info(moc) or {}
    if moc > RENDERER_LATEST_MOC:  # no core would help
        return (f"this model is in Cubism {info['format']}'s format (blend modes, offscreen drawing), which "
                f"{RENDERER} cannot draw: export it from the Cubism Editor as Cubism "
                f"{MOC_FORMATS[RENDERER_LATEST_MOC]}")
    if core is not None and moc > core.latest_moc:
        return (f"this model needs a Cubism {info['needs']} core; yours is {core.short} (the model is in Cubism "
                f"{info['format']}'s format): put a newer core in place with `zishu live2d core`")
    return ""


def check_live2d(core_file: Path, model3: Path) -> tuple[dict | None, str]:
    """For the avatar: the model's moc3 format (``moc_info``) and why the installed core cannot show
    it ("" when it can, as far as the files tell)."""
    moc = model_moc_version(model3)
    return moc_info(moc), model_refusal(installed_core_version(core_file), moc)
