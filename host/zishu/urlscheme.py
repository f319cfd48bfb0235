"""Registering the ``zishu://`` URL scheme, so the catalog site's buttons open Zishu.

A click on a ``zishu://install/owner/name`` link makes the system run ``python -m zishu.cli open
URL``, which shows the page in the running window (or starts the app on it). ``register`` does what
the platform allows, for the current user only, and writes nothing when it is already in place:

- Linux (and BSDs): a hidden ``zishu-url-handler.desktop`` in ``$XDG_DATA_HOME/applications``
  declaring ``x-scheme-handler/zishu``, then ``xdg-mime default`` and ``update-desktop-database``
  where those commands exist;
- Windows: ``HKEY_CURRENT_USER\\Software\\Classes\\zishu`` (a "URL Protocol" key whose
  ``shell\\open\\command`` runs the command);
- macOS: a scheme belongs to an app bundle, which a pip install has not; use ``zishu open URL``.

``zishu app`` calls it at every start of the window unless ``ZISHU_NO_URL_SCHEME=1``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from zishu.files import write_if_changed

log = logging.getLogger(__name__)

SCHEME = "zishu"
DESKTOP_FILE = "zishu-url-handler.desktop"
MIME = f"x-scheme-handler/{SCHEME}"


def command() -> list[str]:
    """What the system runs for a link (the link is appended): this Python, ``-m zishu.cli open``."""
    python = Path(sys.executable)
    if sys.platform == "win32" and (python.parent / "pythonw.exe").exists():
        python = python.parent / "pythonw.exe"  # no console window flashing up for a click
    return [str(python), "-m", "zishu.cli", "open"]


def register() -> str:
    """Register the scheme for this user where the platform allows; says what it did."""
    if sys.platform == "win32":
        return _register_windows()
    if sys.platform == "darwin":
        return ("macOS binds URL schemes to app bundles, which a pip install does not have; "
                "open zishu:// links with: zishu open URL")
    return _register_xdg()


# -- Linux / freedesktop ----------------------------------------------------------------------------

_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


def _exec_arg(arg: str) -> str:
    """One argument of a desktop entry's Exec key (quoted per the Desktop Entry spec when needed)."""
    if arg and not (_RESERVED & set(arg)):
        return arg
    quoted = "".join("\\" + c if c in '"`$\\' else c for c in arg)
    return '"' + quoted + '"'


def desktop_entry() -> str:
    exec_line = " ".join(_exec_arg(a) for a in command()) + " %u"
    # the value is itself a string value: a backslash in it is written twice
    exec_line = exec_line.replace("\\", "\\\\")
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        "Name=Zishu\n"
        "Comment=Open zishu:// links in Zishu\n"
        f"Exec={exec_line}\n"
        f"MimeType={MIME};\n"
        "NoDisplay=true\n"
        "Terminal=false\n"
    )


def applications_dir() -> Path:
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "applications"


def _register_xdg() -> str:
    folder = applications_dir()
    target = folder / DESKTOP_FILE
    if not write_if_changed(target, desktop_entry()):
        return f"already registered by {target}"
    ran = [name for name, args in (("xdg-mime", ["default", DESKTOP_FILE, MIME]),
                                   ("update-desktop-database", [str(folder)])) if _run(name, args)]
    return f"registered by {target}" + (f" ({', '.join(ran)} done)" if ran else "")


def _run(name: str, args: list[str]) -> bool:
    exe = shutil.which(name)
    if not exe:
        return False
    try:
        done = subprocess.run([exe, *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as e:
        log.warning("%s failed: %s", name, e)
        return False
    if done.returncode:
        log.warning("%s exited %s: %s", name, done.returncode, (done.stderr or done.stdout).strip())
    return done.returncode == 0


# -- Windows ----------------------------------------------------------------------------------------


def _register_windows() -> str:
    if sys.platform != "win32":  # called only there; the check also tells type checkers that winreg exists
        raise RuntimeError("the Windows registry exists only on Windows")
    import winreg

    key_path = rf"Software\Classes\{SCHEME}"
    run = subprocess.list2cmdline(command()) + ' "%1"'
    wanted = {key_path: [("", "URL:Zishu link"), ("URL Protocol", "")],
              key_path + r"\shell\open\command": [("", run)]}
    changed = False
    for path, values in wanted.items():
        with winreg.CreateKeyEx(winreg.HKEY_CURRENT_USER, path, 0, winreg.KEY_READ | winreg.KEY_WRITE) as key:
            for name, value in values:
                try:
                    if winreg.QueryValueEx(key, name)[0] == value:
                        continue
                except OSError:
                    pass
                winreg.SetValueEx(key, name, 0, winreg.REG_SZ, value)
                changed = True
    where = rf"HKEY_CURRENT_USER\{key_path}"
    return f"registered in {where}" if changed else f"already registered in {where}"
