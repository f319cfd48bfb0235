"""What the app shows of the cluster its queue is on: the live nodes and the wanted-models ranking
(``GET /api/cluster/nodes``, ``GET /api/model-usage/ranking``). On a queue without Redis there is
no cluster: no nodes, and a ranking with no models, never an error."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from zishu.cluster import nodes, redisqueue, usage

from .queue import JobQueue


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def cluster_nodes(queue: JobQueue) -> dict:
    """``{"nodes": [...], "queue": the Redis URL without its password, or None}``."""
    if not queue.cluster or queue.relay is None or not queue.url:
        return {"nodes": [], "queue": None}
    now = time.time()
    return {"nodes": [nodes.public(n, now) for n in nodes.listing(queue.relay.conn)],
            "queue": redisqueue.redacted(queue.url)}


def model_ranking(queue: JobQueue, installed: dict[str, Any]) -> dict:
    """``{"models": [...], "updated": ISO time}`` (``usage.ranking``); ``installed``: this home's
    version store listing (id → versions), for ``installed_here``."""
    if not queue.cluster or queue.relay is None:
        return {"models": [], "updated": _now_iso()}
    conn = queue.relay.conn
    storage = queue.huey.storage
    assert isinstance(storage, redisqueue.RoutedRedisStorage)
    rows = usage.ranking(conn, nodes.listing(conn), lambda route: int(conn.zcard(storage.route_key(route))),
                         lambda model: model in installed)
    return {"models": rows, "updated": _now_iso()}
