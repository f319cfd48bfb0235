"""What the app shows of the cluster its queue is on: the live nodes and the wanted-models ranking
(``GET /api/cluster/nodes``, ``GET /api/model-usage/ranking``). On a queue without Redis there is
no cluster: no nodes, and a ranking with no models, never an error. A Redis that does not answer is
a RemoteError (REMOTE_FAILED, its URL without the password), never a bare 500."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from redis.exceptions import RedisError

from zishu.cluster import nodes, redisqueue, usage
from zishu.errors import RemoteError

from .queue import JobQueue


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@contextmanager
def _redis(queue: JobQueue) -> Iterator[None]:
    try:
        yield
    except RedisError as e:
        raise RemoteError(f"the cluster's Redis {redisqueue.redacted(queue.url or '')}: {e}") from e


def cluster_nodes(queue: JobQueue) -> dict:
    """``{"nodes": [...], "queue": the Redis URL without its password, or None}``."""
    if not queue.cluster or queue.relay is None or not queue.url:
        return {"nodes": [], "queue": None}
    now = time.time()
    with _redis(queue):
        listed = nodes.listing(queue.relay.conn)
    return {"nodes": [nodes.public(n, now) for n in listed], "queue": redisqueue.redacted(queue.url)}


def model_ranking(queue: JobQueue, installed: dict[str, Any]) -> dict:
    """``{"models": [...], "updated": ISO time}`` (``usage.ranking``); ``installed``: this home's
    version store listing (id → versions), for ``installed_here``."""
    if not queue.cluster or queue.relay is None:
        return {"models": [], "updated": _now_iso()}
    conn = queue.relay.conn
    storage = queue.huey.storage
    assert isinstance(storage, redisqueue.RoutedRedisStorage)
    queued: Callable[[str], int] = lambda route: int(conn.zcard(storage.route_key(route)))  # noqa: E731
    with _redis(queue):
        rows = usage.ranking(conn, nodes.listing(conn), queued, lambda model: model in installed)
    return {"models": rows, "updated": _now_iso()}
