"""The local API's key: the secret other tools (SillyTavern, an OpenAI client, an MCP client) send as
``Authorization: Bearer <key>`` to the fixed-port API listener.

Unlike the window's per-launch secret it stays the same across restarts, until the user rotates it.
It lives in the OS keyring through ``keyring`` (service ``zishu``, user ``local-api:<ZISHU_HOME>``, so
two homes have two keys) when the machine has a keyring back end, else in ``ZISHU_HOME/api_key``,
readable by the user only (0600). It is never written to ``settings.json`` or ``zishu.db``.
"""

from __future__ import annotations

import logging
import secrets
import threading
from pathlib import Path

from zishu.files import write_atomic

log = logging.getLogger(__name__)

KEYRING_SERVICE = "zishu"
KEY_FILE = "api_key"
PREFIX = "zk-"  # so a key pasted somewhere is recognisable as Zishu's
_making = threading.Lock()  # two first requests at once make one key, not two


def _keyring_user(home: Path) -> str:
    return f"local-api:{Path(home).resolve()}"


def _keyring():
    """The keyring module when it has a usable back end (its "fail" one has priority 0), else None."""
    try:
        import keyring
        from keyring.backends import fail

        backend = keyring.get_keyring()
        if isinstance(backend, fail.Keyring) or getattr(backend, "priority", 1) <= 0:
            return None
        return keyring
    except Exception:  # noqa: BLE001  no keyring library or a broken back end: the file is the fallback
        return None


def where(home: Path) -> str:
    """Where the key is kept: "the OS keyring" or the key file's path."""
    return "the OS keyring" if _keyring() else str(Path(home) / KEY_FILE)


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def api_key(home: Path) -> str:
    """This home's key, made and stored on first use."""
    with _making:
        found = _read(home)
        if found:
            return found
        key = new_key()
        _write(home, key)
        return key


def rotate(home: Path) -> str:
    """A new key in place of the old one (which is refused from now on); returns it."""
    with _making:
        key = new_key()
        _write(home, key)
        return key


def _read(home: Path) -> str | None:
    ring = _keyring()
    if ring is not None:
        try:
            return (ring.get_password(KEYRING_SERVICE, _keyring_user(home)) or "").strip() or None
        except Exception as e:  # noqa: BLE001  a locked or broken keyring: fall back to the file
            log.warning("the OS keyring could not be read (%s); using the key file", e)
    try:
        return (Path(home) / KEY_FILE).read_text().strip() or None
    except OSError:
        return None


def _write(home: Path, key: str) -> None:
    ring = _keyring()
    if ring is not None:
        try:
            ring.set_password(KEYRING_SERVICE, _keyring_user(home), key)
            (Path(home) / KEY_FILE).unlink(missing_ok=True)  # no stale copy beside it
            return
        except Exception as e:  # noqa: BLE001  keyring back ends raise what they like
            log.warning("the OS keyring could not be written (%s); using the key file", e)
    write_atomic(Path(home) / KEY_FILE, key + "\n", permissions=0o600)
