"""``zishu pack --app``: a launcher beside the package, for people who get the file and just want
to open the character.

It is a small text file that runs ``python -m zishu.cli open --install PACKAGE`` with the Python
that wrote it: the package is installed if needed (nothing is installed twice, nothing is
overwritten) and Zishu opens on the character. It is NOT a frozen application: Zishu must be
installed (``pip install zishu``), and a launcher written on one machine names that machine's Python
and the package's absolute path; a launcher for another system is made with ``--app-for``.

- Linux: ``<name>.desktop`` (a Desktop Entry of type Application; mode 0755);
- Windows: ``<name>.cmd`` (runs ``pythonw``, or ``python`` when there is none);
- macOS: ``<name>.command`` (a shell script Finder opens in Terminal; mode 0755).
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from zishu.files import write_atomic
from zishu.urlscheme import _exec_arg

SYSTEMS = {"linux": ".desktop", "windows": ".cmd", "macos": ".command"}
EXECUTABLE = 0o755


def this_system() -> str:
    return "windows" if sys.platform == "win32" else "macos" if sys.platform == "darwin" else "linux"


def launcher_command(package: Path, python: str | None = None) -> list[str]:
    return [python or sys.executable, "-m", "zishu.cli", "open", "--install", str(package.resolve())]


def desktop_text(package: Path, name: str, python: str | None = None) -> str:
    exec_line = " ".join(_exec_arg(a) for a in launcher_command(package, python)).replace("\\", "\\\\")
    return ("[Desktop Entry]\n"
            "Type=Application\n"
            f"Name={name}\n"
            f"Comment=Open {name} in Zishu (installs {package.name} if needed)\n"
            f"Exec={exec_line}\n"
            "Terminal=false\n"
            "Categories=Game;Chat;\n")


def cmd_text(package: Path, python: str | None = None) -> str:
    command = launcher_command(package, python)
    exe = Path(command[0])
    if python is None and (exe.parent / "pythonw.exe").exists():
        command[0] = str(exe.parent / "pythonw.exe")
    return "@echo off\r\nrem Opens the character in Zishu, installing the package if needed.\r\n" \
           f"{subprocess.list2cmdline(command)}\r\n"


def command_text(package: Path, python: str | None = None) -> str:
    return ("#!/bin/sh\n"
            "# Opens the character in Zishu, installing the package if needed.\n"
            f"exec {shlex.join(launcher_command(package, python))}\n")


def write_launcher(package: Path, name: str, system: str | None = None, python: str | None = None) -> Path:
    """Write the launcher for ``system`` (default: this one) beside ``package``; returns its path."""
    system = system or this_system()
    suffix = SYSTEMS[system]
    out = package.with_suffix(suffix)
    text = {"linux": lambda: desktop_text(package, name, python), "windows": lambda: cmd_text(package, python),
            "macos": lambda: command_text(package, python)}[system]()
    write_atomic(out, text, EXECUTABLE if system != "windows" else 0o644)
    return out
