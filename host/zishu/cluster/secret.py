"""The per-cluster secret: ``zishu cluster init`` writes it 0600 as ``ZISHU_HOME/cluster.secret``;
a worker on another machine is given a copy with ``--secret-file``. Every task on a Redis queue is
signed with it (Huey's ``SignedSerializer``), so a peer without it cannot make a worker unpickle
anything."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from zishu.errors import UsageError
from zishu.files import write_atomic

FILE_NAME = "cluster.secret"
SECRET_FILE_ENV = "ZISHU_CLUSTER_SECRET_FILE"  # set by ``zishu worker --secret-file``
MIN_LENGTH = 32


def default_path(home: Path) -> Path:
    return Path(home) / FILE_NAME


def init(home: Path, *, force: bool = False) -> Path:
    """Write a new random secret to ``home/cluster.secret`` (0600); keep an existing one unless ``force``."""
    path = default_path(home)
    if force:
        write_atomic(path, secrets.token_urlsafe(48) + "\n", permissions=0o600)
        return path
    if path.exists():
        return path
    # link(2) refuses to replace: two processes starting at once (the app and a worker beside it)
    # end up with the one secret the first wrote
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write_atomic(tmp, secrets.token_urlsafe(48) + "\n", permissions=0o600)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path


def read(path: Path) -> str:
    """The secret in ``path``; refused when others may read the file or it is too short to sign with."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise UsageError(f"cluster secret file {path}: {e.strerror or e}") from e
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UsageError(f"cluster secret file {path}: others may read it (mode {stat.S_IMODE(mode):o}); "
                         f"run chmod 600 {path}")
    if len(text) < MIN_LENGTH:
        raise UsageError(f"cluster secret file {path}: the secret is {len(text)} characters, "
                         f"at least {MIN_LENGTH} are needed (make one with `zishu cluster init`)")
    return text


def find(home: Path) -> Path | None:
    """The secret file this process uses: ``ZISHU_CLUSTER_SECRET_FILE``, else ``home/cluster.secret`` if it exists."""
    named = os.environ.get(SECRET_FILE_ENV)
    if named:
        return Path(named)
    path = default_path(home)
    return path if path.exists() else None
