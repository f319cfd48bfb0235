"""What the cluster asks of each model, counted in Redis beside the queue: jobs served (a sorted
set of finish times per model, trimmed to a day), jobs unserved because no node had the model
(likewise), run time (a hash of two numbers, for the ETA), and the jobs waiting for a node that has
their model (``zishu:waiting``, one JSON value per job). Nothing here is pickled.

``ranking`` turns that into the "wanted models" list (``GET /api/model-usage/ranking``), in the
manner of AI Horde's ``/v2/status/models``: per model the jobs queued now, served in the last hour
and day, unserved in the last day, the nodes that hold it and an ETA. The order is demand: jobs
queued plus unserved first (what people want and cannot get), then served in the last day, then
the id.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

from .routing import holds, model_id, model_route

HOUR = 3600
DAY = 24 * HOUR
MODELS = "zishu:usage:models"
WAITING = "zishu:waiting"


def _key(what: str, model: str) -> str:
    return f"zishu:usage:{what}:{model_id(model)}"


def _stamp(conn: Any, what: str, model: str, now: float) -> None:
    key = _key(what, model)
    pipe = conn.pipeline()
    pipe.sadd(MODELS, model_id(model))
    pipe.zadd(key, {f"{now:.6f}:{secrets.token_hex(4)}": now})
    pipe.zremrangebyscore(key, "-inf", now - DAY)
    pipe.expire(key, DAY)
    pipe.execute()


def served(conn: Any, model: str, seconds: float | None, now: float | None = None) -> None:
    """A job for ``model`` finished; ``seconds``: how long it ran (None when unknown)."""
    now = time.time() if now is None else now
    _stamp(conn, "served", model, now)
    if seconds is not None and seconds >= 0:
        runs = _key("runs", model)
        pipe = conn.pipeline()
        pipe.hincrby(runs, "count", 1)
        pipe.hincrbyfloat(runs, "seconds", float(seconds))
        pipe.execute()


def unserved(conn: Any, model: str, now: float | None = None) -> None:
    """A job for ``model`` found no node that has it."""
    _stamp(conn, "unserved", model, time.time() if now is None else now)


def wait_for_node(conn: Any, origin: str, job_id: int, model: str, kind: str) -> None:
    """Keep a job waiting until a node that has ``model`` shows up (``waiting`` lists it)."""
    conn.hset(WAITING, f"{origin}:{job_id}", json.dumps({"origin": origin, "job": job_id, "model": model,
                                                         "kind": kind, "since": time.time()}))


def stop_waiting(conn: Any, origin: str, job_id: int) -> None:
    conn.hdel(WAITING, f"{origin}:{job_id}")


def waiting(conn: Any, origin: str | None = None) -> list[dict]:
    """The jobs waiting for a node (of one app, ``origin``, or all)."""
    found = []
    for raw in conn.hvals(WAITING):
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if isinstance(entry, dict) and (origin is None or entry.get("origin") == origin):
            found.append(entry)
    return found


def ranking(conn: Any, listing: list[dict], queued_in: Callable[[str], int],
            installed_here: Callable[[str], bool], now: float | None = None) -> list[dict]:
    """Every model asked for in the last day, waiting, or held by a node, by demand (see the module).
    ``queued_in(route)``: the tasks waiting in a named queue; ``installed_here(id)``: whether this
    app's ZISHU_HOME has the model."""
    now = time.time() if now is None else now
    parked: dict[str, int] = {}
    for entry in waiting(conn):
        if isinstance(entry.get("model"), str):
            parked[model_id(entry["model"])] = parked.get(model_id(entry["model"]), 0) + 1
    names = {_text(m) for m in conn.smembers(MODELS)} | set(parked)
    names |= {model_id(m) for n in listing for m in n.get("models") or []}
    rows = []
    for model in sorted(names):
        pipe = conn.pipeline()
        pipe.zcount(_key("served", model), now - HOUR, "+inf")
        pipe.zcount(_key("served", model), now - DAY, "+inf")
        pipe.zcount(_key("unserved", model), now - DAY, "+inf")
        pipe.hmget(_key("runs", model), "count", "seconds")
        hour, day, missed, (count, seconds) = pipe.execute()
        holders = sorted({n.get("node") or n.get("worker", "") for n in listing if holds(n.get("models") or [], model)})
        queued = queued_in(model_route(model)) + parked.get(model, 0)
        rows.append({"model": model, "queued": queued, "served_hour": hour, "served_day": day, "unserved": missed,
                     "nodes": holders, "eta_seconds": eta(queued, len(holders), count, seconds),
                     "installed_here": bool(installed_here(model))})
    rows.sort(key=lambda r: (-(r["queued"] + r["unserved"]), -r["served_day"], r["model"]))
    return rows


def eta(queued: int, holders: int, count: Any, seconds: Any) -> float | None:
    """Seconds until a job sent now would be done: the jobs ahead of it shared among the nodes that
    hold the model, plus its own run, at the mean run time seen. None when no node holds the model
    or no run was timed yet."""
    if not holders or not count or int(count) <= 0 or seconds is None:
        return None
    mean = float(seconds) / int(count)
    return round((queued / holders + 1) * mean, 3)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def models_of(listing: Iterable[dict]) -> set[str]:
    """The catalog ids the live nodes advertise."""
    return {model_id(m) for n in listing for m in n.get("models") or []}
