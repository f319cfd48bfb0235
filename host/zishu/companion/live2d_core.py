"""The Live2D Cubism Core, which Zishu may not ship: where the app finds it, and putting it there.

Live2D's Cubism Core for Web (``live2dcubismcore.min.js``) is proprietary code, redistributable
only under Live2D's licence agreement, so Zishu neither commits nor bundles it. The app looks for
it at ``ZISHU_HOME/live2d/live2dcubismcore.min.js``; ``zishu live2d core PATH_OR_URL`` puts it there
(copied from a file or downloaded), after printing the licence notice. Without it the companion
shows a static avatar. A core the renderer cannot use (3.x) is refused with the reason; which core
it is and what it runs comes from ``zishu.companion.cubism_core``.
"""

from __future__ import annotations

from pathlib import Path

from zishu.companion.cubism_core import read_core_version
from zishu.errors import RemoteError, UsageError
from zishu.sizes import byte_size

CORE_NAME = "live2dcubismcore.min.js"
LICENSE_URL = "https://www.live2d.com/eula/live2d-proprietary-software-license-agreement_en.html"
DOWNLOAD_PAGE = "https://www.live2d.com/en/sdk/download/web/"
MAX_CORE_BYTES = 16 * 1024 * 1024  # the real file is a few hundred KB
MARKER = b"Live2DCubismCore"  # every Cubism Core for Web defines this global

NOTICE = (
    "The Live2D Cubism Core is Live2D Inc.'s proprietary software. Using it means agreeing to the\n"
    f"Live2D Proprietary Software License Agreement: {LICENSE_URL}\n"
    "(and, to publish what you make with it, to Live2D's publication licence where it applies).\n"
    "Zishu does not include it; the copy below stays on this computer."
)


def core_folder(home: Path | None = None) -> Path:
    from zishu import config

    return Path(home or config.home()) / "live2d"


def core_path(home: Path | None = None) -> Path:
    """Where the app looks for the Cubism Core (the file may not exist)."""
    return core_folder(home) / CORE_NAME


def _read_source(source: str) -> bytes:
    if source.startswith(("http://", "https://")):
        import requests

        try:
            response = requests.get(source, timeout=60, stream=True)
            response.raise_for_status()
            data = b""
            for block in response.iter_content(64 * 1024):
                data += block
                if len(data) > MAX_CORE_BYTES:
                    raise UsageError(f"{source} is larger than {byte_size(MAX_CORE_BYTES)}: not the Cubism Core")
            return data
        except requests.RequestException as e:
            raise RemoteError(f"could not download the Cubism Core from {source}: {e}") from None
    path = Path(source).expanduser()
    if not path.is_file():
        raise UsageError(f"{source}: no such file (give the path of {CORE_NAME}, or an https:// URL)")
    if path.stat().st_size > MAX_CORE_BYTES:
        raise UsageError(f"{source} is larger than {byte_size(MAX_CORE_BYTES)}: not the Cubism Core")
    return path.read_bytes()


def install_core(source: str, home: Path | None = None) -> Path:
    """Copy or download the Cubism Core from ``source`` to ZISHU_HOME/live2d/; returns its path."""
    from zishu.files import write_atomic

    data = _read_source(source)
    if MARKER not in data[:1_000_000]:
        raise UsageError(f"{source} does not look like the Cubism Core for Web ({CORE_NAME}): "
                         f"it never mentions {MARKER.decode()}")
    version = read_core_version(data)
    if version is not None and version.problem():
        raise UsageError(f"{source}: {version.problem()}")
    dest = core_path(home)
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(dest, data)
    return dest

