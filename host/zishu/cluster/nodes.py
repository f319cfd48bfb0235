"""Nodes advertise themselves: each ``zishu worker`` on a Redis queue writes what it offers to
``zishu:node:<worker>`` every ``HEARTBEAT_EVERY`` seconds with a time to live of ``EXPIRES_AFTER``,
so a node that stops (kill -9, a pulled cable) vanishes from the list by itself. Like the rest of
``zishu:``, plain JSON: nothing a peer writes here is ever unpickled."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from typing import Any

import psutil

HEARTBEAT_EVERY = float(os.environ.get("ZISHU_CLUSTER_HEARTBEAT", "2"))  # seconds (tests may slow it)
EXPIRES_AFTER = 3 * HEARTBEAT_EVERY


GPU_READ_EVERY = 15.0  # seconds between two runs of nvidia-smi (a heartbeat comes every 2 s)
_gpu_read: list[Any] = [float("-inf"), None]  # when, what


def _gpu() -> dict[str, Any] | None:
    """The first NVIDIA GPU's name and free VRAM (bytes), from ``nvidia-smi`` at most every
    ``GPU_READ_EVERY`` seconds (it takes a good part of a second); None without one."""
    now = time.monotonic()
    if now - _gpu_read[0] >= GPU_READ_EVERY:
        _gpu_read[:] = [now, _read_gpu()]
    return _gpu_read[1]


def _read_gpu() -> dict[str, Any] | None:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run([smi, "--query-gpu=name,memory.free,memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=5).stdout
        name, free, total = (part.strip() for part in out.splitlines()[0].split(","))
        return {"name": name, "vram_free": int(free) * 2**20, "vram_total": int(total) * 2**20}
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None


def describe(worker: str, node: str, accepts: list[str], running: list[dict], offers: dict | None = None) -> dict:
    """What a worker advertises: who it is, the remote job types it takes, what it runs now
    (``{"job", "kind", "model", ...}`` each), free RAM, the GPU, load, and what the runtime offers
    (``models`` as id@version, ``engines``)."""
    return {
        "worker": worker, "node": node, "host": worker.partition(":")[0], "accepts": accepts, "running": running,
        "ram_free": psutil.virtual_memory().available, "gpu": _gpu(),
        "load": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "heartbeat": time.time(), **(offers or {}),
    }


def beat(conn: Any, info: dict) -> None:
    conn.set(f"zishu:node:{info['worker']}", json.dumps(info), ex=int(EXPIRES_AFTER))


def gone(conn: Any, worker: str) -> None:
    conn.delete(f"zishu:node:{worker}")


def listing(conn: Any) -> list[dict]:
    """Every node whose heartbeat has not expired, by host then worker."""
    found = []
    for key in conn.scan_iter(match="zishu:node:*", count=200):
        raw = conn.get(key)
        if raw:
            try:
                found.append(json.loads(raw))
            except ValueError:
                continue
    return sorted(found, key=lambda n: (n.get("host", ""), n.get("worker", "")))


def public(node: dict, now: float | None = None) -> dict:
    """One node as ``GET /api/cluster/nodes`` shows it."""
    import datetime as dt

    now = time.time() if now is None else now
    beat_at = float(node.get("heartbeat") or 0.0)
    gpu = node.get("gpu") if isinstance(node.get("gpu"), dict) else None
    running = [{"job": r.get("job"), "kind": r.get("kind"), "model": r.get("model")}
               for r in node.get("running") or [] if isinstance(r, dict)]
    return {"id": node.get("worker"), "name": node.get("host") or node.get("worker"), "node": node.get("node"),
            "models": list(node.get("models") or []), "engines": list(node.get("engines") or []),
            "accepts": list(node.get("accepts") or []), "ram_free": node.get("ram_free"),
            "vram_free": gpu.get("vram_free") if gpu else None, "gpu": gpu.get("name") if gpu else None,
            "load": node.get("load"), "running": running,
            "last_heartbeat": dt.datetime.fromtimestamp(beat_at, dt.timezone.utc).isoformat(timespec="seconds"),
            "age_seconds": round(max(0.0, now - beat_at), 3)}


def status(url: str) -> list[dict]:
    """The live nodes on the Redis at ``url`` (a password and rediss:// as for the queue)."""
    import redis

    from zishu.errors import RemoteError

    try:
        return listing(redis.Redis.from_url(url, socket_timeout=5))
    except redis.exceptions.RedisError as e:
        raise RemoteError(f"the cluster's Redis {_shown(url)}: {e}") from e


def _shown(url: str) -> str:
    from .redisqueue import redacted

    return redacted(url)
