"""Routing by model: which named queue a job goes to, which queues a node listens to, and which
node a refused job goes to next.

A remote job type may say which model a job needs (``model(params)``: a catalog id, optionally
``@version``). Such a job goes to the queue ``model:<owner/name>``: the catalog id *without* its
version, so that one queue serves every version of a model. Each node listens to ``model:<id>``
for each model it has installed (refreshed with its heartbeat, and at once after a refusal), so
only a node that has the model takes the job. The version, when the job names one, is checked by
the node that took it (``holds``), and a node is chosen for a reroute only when it advertises that
very version.

A node handed a job for a model it lacks (its advertisement was stale, or the model was removed a
moment ago) answers MODEL_NOT_AVAILABLE at once over the relay, downloading nothing; the app then
sends the job to one node that advertises the model (``pick``), by the queue ``worker:<worker id>``
that each worker also listens to, or, when no node has it, keeps the job waiting ("no node has M",
counted as unserved in ``usage``) until one shows up. A job whose model is not a catalog id (a
path on the app's machine) never leaves the app's node.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from zishu.ids import is_id, is_version, split_request

MODEL_PREFIX = "model:"
WORKER_PREFIX = "worker:"
KIND_PREFIX = "kind:"
HOME_PREFIX = "home:"


def catalog_model(name: object) -> str | None:
    """``name`` as ``owner/name[@version]`` when it is a catalog id, else None (a path, nothing)."""
    if not isinstance(name, str) or not name or os.path.exists(os.path.expanduser(name)):
        return None  # a model file or folder here (resolution takes a path first, so does routing)
    rid, version = split_request(name)
    if not is_id(rid) or ("@" in name and not is_version(version)):
        return None
    return f"{rid}@{version}" if version else rid


def model_id(model: str) -> str:
    """The catalog id of ``owner/name[@version]`` (what names its queue)."""
    return split_request(model)[0]


def model_route(model: str) -> str:
    return f"{MODEL_PREFIX}{model_id(model)}"


def worker_route(worker: str) -> str:
    return f"{WORKER_PREFIX}{worker}"


def holds(models: Iterable[str], wanted: str) -> bool:
    """Whether a node with ``models`` (``id@version`` each) has ``wanted`` (an id: any version;
    ``id@version``: that version)."""
    rid, version = split_request(wanted)
    for have in models:
        have_id, have_version = split_request(have)
        if have_id == rid and (not version or have_version == version):
            return True
    return False


def listen_routes(node: str, worker: str, kinds: Iterable[str], models: Iterable[str],
                  by_model: bool) -> list[str]:
    """The queues one worker process pops from: its node's own (installs), its own (reroutes), the
    job types it accepts, and, when it accepts a job type routed by model, each model it has."""
    routes = [f"{HOME_PREFIX}{node}", worker_route(worker), *(f"{KIND_PREFIX}{k}" for k in kinds)]
    if by_model:
        routes += sorted({model_route(m) for m in models})
    return routes


def pick(listing: Iterable[dict], model: str, kind: str, refused: Iterable[str] = ()) -> dict | None:
    """The node to send a refused job to: one that advertises ``model``, accepts ``kind`` and has
    not refused this job, the least busy first (running jobs, then load); None when there is none."""
    skip = set(refused)
    fits = [n for n in listing if n.get("worker") not in skip and kind in (n.get("accepts") or [])
            and holds(n.get("models") or [], model)]
    if not fits:
        return None
    return min(fits, key=lambda n: (len(n.get("running") or []), n.get("load") or 0.0, n.get("worker", "")))


def nodes_with(listing: Iterable[dict], model: str) -> list[dict]:
    """The nodes that advertise ``model`` (any job type)."""
    return [n for n in listing if holds(n.get("models") or [], model)]
