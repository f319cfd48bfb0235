"""The Huey on Redis that several machines share: tasks signed with the cluster secret, and named
queues so that each worker takes only the tasks it may run.

Huey serves as it is for the queue itself (``PriorityRedisStorage``: a sorted set per queue, popped
atomically, so one task goes to one worker), for signing (``SignedSerializer``: HMAC checked before
anything is unpickled) and for revoking a waiting task (``revoke_by_id`` with ``revoke_once``:
the revoke lives in Redis until the worker that pops the task drops it). What is added here is
small:

- ``route``: a task names the queue it goes to (``home:<node>`` for work that must stay on the
  machine that asked, like installs; ``kind:<job type>`` for work any enabled node may take), and a
  worker pops from the queues it ``listen``s to at once (``BZPOPMIN`` takes several keys).
- a task whose signature does not match is dropped and logged as refused, never unpickled.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

from huey import PriorityRedisHuey
from huey.serializer import SignedSerializer
from huey.storage import PriorityRedisStorage
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from zishu.errors import UsageError

log = logging.getLogger(__name__)

SALT = "zishu-cluster-v1"


class RoutedRedisStorage(PriorityRedisStorage):
    """Huey's priority queue on Redis, one sorted set per route (``<queue key>.<route>``)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.listen: list[str] = []

    def route_key(self, route: str | None) -> str:
        return f"{self.queue_key}.{route}" if route else self.queue_key

    def enqueue_to(self, route: str | None, data: bytes, priority: int | None = None) -> None:
        score = 0 if priority is None else -priority
        prefix = struct.pack(">Q", int(time.time() * 1e6))  # as Huey does: FIFO within one priority
        self.conn.zadd(self.route_key(route), {prefix + data: score})

    def _keys(self) -> list[str]:
        return [self.route_key(r) for r in self.listen] or [self.queue_key]

    def dequeue(self):
        try:
            popped = self.conn.bzpopmin(self._keys(), timeout=self.read_timeout)
        except (RedisConnectionError, RedisTimeoutError, TypeError, IndexError):
            return None
        return popped[1][8:] if popped else None

    def queue_size(self) -> int:
        return sum(self.conn.zcard(k) for k in self._keys())

    def enqueued_items(self, limit=None):
        return [item[8:] for k in self._keys() for item in self.conn.zrange(k, 0, limit or -1)]

    def flush_queue(self) -> None:
        for k in self._keys():
            self.conn.delete(k)


class ClusterHuey(PriorityRedisHuey):
    """``PriorityRedisHuey`` with signed tasks and routes."""

    storage_class = RoutedRedisStorage
    storage: RoutedRedisStorage

    def enqueue_routed(self, task, route: str | None) -> None:
        self.storage.enqueue_to(route, self.serialize_task(task), task.priority)

    def pending_in(self, routes: Iterable[str]) -> list:
        """The tasks waiting in these routes' queues (those with a bad signature left out); a route
        ending in ``*`` names every queue it matches."""
        found = []
        keys: list = []
        for route in routes:  # a route may end in * (all ``worker:*`` queues)
            key = self.storage.route_key(route)
            keys += self.storage.conn.scan_iter(match=key, count=500) if "*" in route else [key]
        for key in keys:
            for item in self.storage.conn.zrange(key, 0, -1):
                task = self.deserialize_task(item[8:])
                if task is not None:
                    found.append(task)
        return found

    def listen(self, routes: Iterable[str]) -> None:
        self.storage.listen = list(dict.fromkeys(routes))

    def deserialize_task(self, data):
        try:
            message = self.serializer.deserialize(data)
        except ValueError as e:  # SignedSerializer: no separator, or the HMAC does not match
            log.warning("refused a task whose signature does not match this cluster's secret "
                        "(%s); it was dropped unread", e)
            return None
        return self._registry.create_task(message)


def redacted(url: str) -> str:
    """``url`` with its password replaced by ``***`` (what pages and logs show)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def make(name: str, url: str, secret: str) -> ClusterHuey:
    """The cluster's Huey on ``url`` (redis://, rediss:// for TLS, unix://; a password goes in the
    URL as ``redis://:PASSWORD@host:port/0``), signing with ``secret``."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise UsageError(f"ZISHU_QUEUE={url!r}: expected a Redis URL like redis://localhost:6379/0")
    if not secret:
        raise UsageError("a Redis queue needs the cluster secret: run `zishu cluster init` where the app runs "
                         "and give workers a copy with --secret-file")
    return ClusterHuey(name, url=url, results=False, serializer=SignedSerializer(secret=secret, salt=SALT))
