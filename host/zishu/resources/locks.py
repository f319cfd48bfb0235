"""Who may work on a partial download: one transfer per file, across threads and processes.

Everything about one file's transfer lives in the partials folder under its key (the file's
sha256, or for a hub file without one a hash of its URL): ``<key>.part`` (the bytes so far),
``<key>.json`` (the sidecar the downloader keeps beside it) and ``<key>.lock``.

Two layers keep transfers of the same key from overlapping:

* in this process, a table of futures: the first thread to ask for a key does the work, the
  others wait for it and get its result (or its exception), so there is no second transfer;
* across processes, an OS lock on ``<key>.lock`` (``filelock``). The OS drops it when its holder
  exits in any way, kill -9 included, so nothing a dead process leaves can block the next run:
  the ``.lock`` file is only the handle the lock is taken on, inert while nobody holds it. It is
  never deleted (deleting a lock file someone may be opening lets two holders in at once).

``reconcile(partials)`` removes, at startup, the leftovers that no transfer can use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock, Timeout

PART, SIDECAR, LOCK = ".part", ".json", ".lock"

T = TypeVar("T")

_running: dict[tuple[str, str], Future[Any]] = {}  # one table for every work; each key's future holds its T
_running_guard = threading.Lock()


def lock_path(partials: Path, key: str) -> Path:
    return partials / f"{key}{LOCK}"


def one_transfer(partials: Path, key: str, work: Callable[[], T]) -> tuple[T, bool]:
    """Run ``work`` as the only transfer of ``key``: returns ``(its result, True)``.

    When another thread of this process is already on ``key``, wait for it and return
    ``(that thread's result, False)``, or raise its exception. Another process working on ``key``
    holds the OS lock: wait for it to finish (or die), then run ``work``, which finds its result.
    """
    ident = (str(partials.resolve()), key)
    with _running_guard:
        existing = _running.get(ident)
        if existing is None:
            running: Future[Any] = Future()
            _running[ident] = running
    if existing is not None:
        return existing.result(), False
    try:
        partials.mkdir(parents=True, exist_ok=True)
        with FileLock(str(lock_path(partials, key))):
            result = work()
    except BaseException as error:
        running.set_exception(error)
        raise
    else:
        running.set_result(result)
        return result, True
    finally:
        with _running_guard:
            del _running[ident]


def key_of(path: Path) -> str | None:
    """The key a file in the partials folder belongs to: what its name has before the first dot."""
    key, dot, _ = path.name.partition(".")
    return key if dot and key else None


def reconcile(partials: Path) -> list[Path]:
    """Remove what interrupted downloads leave that no transfer can use; returns what was removed.

    That is: sidecars whose ``.part`` is gone and temp files of a sidecar write cut short. Parts
    stay (the next fetch resumes them); so do lock files (see above). Keys another process is
    transferring right now are left alone.
    """
    removed: list[Path] = []
    if not partials.is_dir():
        return removed
    for path in sorted(partials.iterdir()):
        key = key_of(path)
        orphan = path.name.endswith(".tmp") or (
            path.suffix == SIDECAR and not (partials / f"{key}{PART}").exists()
        )
        if key is None or not orphan:
            continue
        try:
            with FileLock(str(lock_path(partials, key)), timeout=0):
                path.unlink(missing_ok=True)
                removed.append(path)
        except Timeout:
            continue
    return removed
