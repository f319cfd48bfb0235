"""What Huey lacks for work done on another machine, kept in the same Redis: the events of a
running job back to the app that asked (a Redis stream per app), the user's cancel, the claim that
keeps a task from running twice, and the files a job made (small ones travel through Redis, checked
by sha256 when they arrive). Keys all start ``zishu:``; nothing here is pickled: JSON only, so a
peer without the secret can at worst send the app a wrong event, never run code."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path, PurePosixPath
from typing import Any

from zishu.errors import ChecksumMismatch, UsageError
from zishu.files import write_atomic

MAX_FILE = 64 * 1024 * 1024  # larger files come back by a pull from the worker (``pull``)
MAX_FILE_ENV = "ZISHU_CLUSTER_MAX_FILE"  # a lower limit (bytes), for tests
FILE_TTL = 3600  # seconds a shipped file waits in Redis for the app
CLAIM_TTL = int(os.environ.get("ZISHU_CLUSTER_CLAIM_TTL", "15"))  # seconds a claim lives without a heartbeat
DONE = "done"  # a finished task's claim: kept a day, so a copy of the task never runs again
DONE_TTL = 24 * 3600
CANCEL_TTL = 24 * 3600
STREAM_MAX = 100_000


class Relay:
    """One Redis connection's view of the ``zishu:`` keys (``conn``: a redis-py client)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    # -- events: worker -> app ------------------------------------------------------------------

    def publish(self, origin: str, event: dict) -> None:
        self.conn.xadd(f"zishu:events:{origin}", {"e": json.dumps(event)}, maxlen=STREAM_MAX, approximate=True)

    def read(self, origin: str, after: str = "0", block_ms: int = 500) -> list[tuple[str, dict]]:
        """Events for ``origin`` after the stream id ``after``, waiting up to ``block_ms`` for one."""
        got = self.conn.xread({f"zishu:events:{origin}": after}, block=block_ms, count=100)
        out = []
        for _key, entries in got or []:
            for entry_id, fields in entries:
                eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                raw = fields.get(b"e", fields.get("e"))
                out.append((eid, json.loads(raw)))
        return out

    def forget(self, origin: str, ids: list[str]) -> None:
        if ids:
            self.conn.xdel(f"zishu:events:{origin}", *ids)

    # -- cancel: app -> worker --------------------------------------------------------------------

    def request_cancel(self, task_id: str) -> None:
        self.conn.set(f"zishu:cancel:{task_id}", 1, ex=CANCEL_TTL)

    def cancel_requested(self, task_id: str) -> bool:
        return bool(self.conn.exists(f"zishu:cancel:{task_id}"))

    # -- claims: at most one worker per task --------------------------------------------------------

    def claim(self, task_id: str, worker: str) -> bool:
        return bool(self.conn.set(f"zishu:claim:{task_id}", worker, nx=True, ex=CLAIM_TTL))

    def refresh(self, task_ids: list[str]) -> None:
        pipe = self.conn.pipeline()
        for task_id in task_ids:
            pipe.expire(f"zishu:claim:{task_id}", CLAIM_TTL)
        pipe.execute()

    def finish(self, task_id: str) -> None:
        self.conn.set(f"zishu:claim:{task_id}", DONE, ex=DONE_TTL)

    def holder(self, task_id: str) -> str | None:
        found = self.conn.get(f"zishu:claim:{task_id}")
        return found.decode() if isinstance(found, bytes) else found

    # -- files: worker -> app ---------------------------------------------------------------------

    def ship(self, home: Path, relative: str) -> dict:
        """Put the file ``home/relative`` into Redis; returns what the app needs to fetch it."""
        path = Path(home) / safe_relative(relative)
        size = path.stat().st_size
        if size > max_file():
            raise UsageError(f"result file {relative}: {size} bytes, more than the {max_file()} that travel "
                             "through Redis")
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        key = f"zishu:file:{digest}:{secrets.token_hex(8)}"  # one key per shipment: equal files stay apart
        self.conn.set(key, data, ex=FILE_TTL)
        return {"path": relative, "sha256": digest, "size": len(data), "key": key}

    def receive(self, home: Path, shipped: dict) -> Path:
        """Write a shipped file under ``home`` at its relative path, after checking its sha256."""
        relative, digest = shipped["path"], shipped["sha256"]
        target = Path(home) / safe_relative(relative)
        key = str(shipped.get("key") or f"zishu:file:{digest}")
        if not key.startswith("zishu:file:"):
            raise UsageError(f"result file {relative}: {key!r} is not a result file's key")
        data = self.conn.get(key)
        if data is None:
            raise ChecksumMismatch(f"result file {relative}: no longer in Redis (kept {FILE_TTL} s)")
        got = hashlib.sha256(data).hexdigest()
        if got != digest:
            raise ChecksumMismatch(f"result file {relative}: sha256 {got}, expected {digest}")
        write_atomic(target, data)
        self.conn.delete(key)
        return target


def max_file() -> int:
    """The largest result file that travels through Redis (``ZISHU_CLUSTER_MAX_FILE`` may lower it)."""
    try:
        return min(MAX_FILE, int(os.environ.get(MAX_FILE_ENV, MAX_FILE)))
    except ValueError:
        return MAX_FILE


def safe_relative(relative: str) -> PurePosixPath:
    """A result file's path, refused when it would leave ZISHU_HOME."""
    path = PurePosixPath(relative)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise UsageError(f"result file {relative!r}: must be a path inside ZISHU_HOME")
    return path
