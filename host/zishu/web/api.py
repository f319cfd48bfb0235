"""The JSON API under ``/api``: catalog, installs, library, jobs (with a live stream), plugins,
settings and the machine. The UI's JavaScript and outside tools use the same routes.

Resource ids from a URL are checked against the id pattern and looked up in the registry before
any path is built from them; no path from a request reaches the filesystem otherwise.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter

import click
from flask import Blueprint, Response, jsonify, request, stream_with_context

from zishu import config, plugins
from zishu.catalog.ids import VERSION_PATTERN, parse_id, parse_request
from zishu.db import get_setting, set_setting
from zishu.errors import NotFound, UsageError
from zishu.jobs import Job, records
from zishu.jobs.events import changes

from zishu import system
from .app import runtime

api = Blueprint("api", __name__, url_prefix="/api")

VERSION = re.compile(VERSION_PATTERN)
STREAM_POLL = 0.5  # seconds: how often the job stream looks at the table for other processes' changes
HEARTBEAT = 15.0


def _id(owner: str, name: str) -> str:
    """The id in a route (case folded), by the one id rule: dotted names such as qwen2.5 too."""
    return parse_id(f"{owner}/{name}".lower())


def _body() -> dict:
    data = request.get_json(silent=True)
    if data is None and request.content_length:
        raise UsageError("the request body is not JSON")
    if data is not None and not isinstance(data, dict):
        raise UsageError("the request body must be a JSON object")
    return data or {}


def _installed() -> dict[str, dict[str, dict]]:
    return runtime().registry.load()


# -- catalog ------------------------------------------------------------------------------------


@api.get("/catalog/search")
def catalog_search():
    args = request.args
    client = runtime().catalog()
    limit = args.get("limit", "60")
    if not limit.isdigit():
        raise UsageError(f"limit={limit!r}: expected a whole number")
    found = client.search(args.get("q", ""), kind=args.get("kind") or None, tag=args.get("tag") or None,
                          license=args.get("license") or None, base_model=args.get("base_model") or None,
                          sort=args.get("sort") or "popular")
    installed = _installed()
    results = [{**e, "installed": sorted(installed.get(e["id"], {}))} for e in found[: int(limit)]]
    return jsonify(results=results, total=len(found), source=client.source_used, warning=client.warning)


@api.get("/catalog/facets")
def catalog_facets():
    entries = runtime().catalog().index()
    tags = Counter(t for e in entries for t in e.get("tags", []))
    return jsonify(
        kinds=sorted({e["kind"] for e in entries}),
        tags=[t for t, _ in tags.most_common(60)],
        licenses=sorted({e.get("license", "") for e in entries} - {""}),
        base_models=sorted({e.get("base_model") or "" for e in entries} - {""}),
    )


@api.get("/catalog/resources/<owner>/<name>")
def catalog_resource(owner: str, name: str):
    return jsonify(resource_detail(_id(owner, name)))


def resource_detail(rid: str) -> dict:
    """The catalog's detail document, with the versions installed here."""
    return {**runtime().catalog().detail(rid), "installed": sorted(_installed().get(rid, {}))}


@api.post("/catalog/update")
def catalog_update():
    client = runtime().catalog()
    changed = client.update()
    return jsonify(changed=changed, offline=client.offline, warning=client.warning, source=client.source_used)


# -- installs and the library --------------------------------------------------------------------


@api.post("/installs")
def install():
    body = _body()
    wanted = body.get("request") or body.get("id")
    if not isinstance(wanted, str) or not wanted.strip():
        raise UsageError('expected {"request": "owner/name[@version]"}')
    parse_request(wanted, exact=False)  # a version range after @ is the install plan's to read
    priority = body.get("priority", 0)
    if not isinstance(priority, int):
        raise UsageError("priority must be a whole number")
    job = runtime().jobs.submit("install", {"request": wanted.strip().lower()}, priority=priority)
    return jsonify(job=job.as_dict()), 202


@api.get("/library")
def library():
    return jsonify(library_listing())


def library_listing() -> dict:
    """What is installed, with names from the installed manifests and sizes (the Library panel)."""
    from zishu.resources.install import manifest_of

    rt = runtime()
    items, total = [], 0
    for rid, versions in sorted(_installed().items()):
        entry = {"id": rid, "name": rid, "summary": "", "kind": None, "versions": []}
        for version, rec in sorted(versions.items()):
            folder = rt.registry.version_dir(rid, version)
            try:
                manifest = manifest_of(folder)
                entry.update(name=manifest.name, summary=manifest.summary, kind=manifest.kind)
            except (OSError, ValueError):
                entry["kind"] = rec.get("kind")
            entry["versions"].append({"version": version, "size_bytes": rec.get("size_bytes", 0),
                                      "installed_at": rec.get("installed_at"), "path": str(folder)})
            total += rec.get("size_bytes", 0)
        entry["size_bytes"] = sum(v["size_bytes"] for v in entry["versions"])
        items.append(entry)
    return {"resources": items, "size_bytes": total, "home": str(rt.home)}


def _version_arg() -> str | None:
    version = request.args.get("version") or None
    if version is not None and not VERSION.match(version):
        raise UsageError(f"version={version!r} is not a version")
    return version


@api.delete("/library/<owner>/<name>")
def uninstall(owner: str, name: str):
    from zishu.resources.install import Installer

    rid, version = _id(owner, name), _version_arg()
    if rid not in _installed():
        raise NotFound(f"{rid} is not installed")
    removed = Installer(runtime().registry, fetcher=None).uninstall(rid, version)  # type: ignore[arg-type]
    return jsonify(id=rid, removed=removed)


@api.post("/library/<owner>/<name>/open")
def open_folder(owner: str, name: str):
    rid, version = _id(owner, name), _version_arg()
    path = runtime().registry.path(rid, version)  # MODEL_NOT_AVAILABLE (404) unless installed
    opened = click.launch(str(path)) == 0
    return jsonify(path=str(path), opened=opened)


# -- jobs ------------------------------------------------------------------------------------------


def _job_id(value: str) -> int:
    if not value.isdigit():
        raise UsageError(f"{value!r} is not a job id")
    return int(value)


@api.get("/jobs")
def jobs():
    return jsonify(jobs=[j.as_dict() for j in records.recent()], queue=runtime().jobs.description)


@api.post("/jobs")
def submit():
    """Submit a job of any registered type: ``{"kind": ..., "params": {...}, "priority": 0}``."""
    body = _body()
    kind, params, priority = body.get("kind"), body.get("params", {}), body.get("priority", 0)
    if not isinstance(kind, str) or not isinstance(params, dict) or not isinstance(priority, int):
        raise UsageError('expected {"kind": "name", "params": {...}, "priority": 0}')
    return jsonify(job=runtime().jobs.submit(kind, params, priority=priority).as_dict()), 202


@api.get("/jobs/<job>")
def job(job: str):
    return jsonify(job=runtime().jobs.get(_job_id(job)).as_dict())


@api.post("/jobs/<job>/cancel")
def cancel(job: str):
    return jsonify(job=runtime().jobs.cancel(_job_id(job)).as_dict())


@api.post("/jobs/<job>/retry")
def retry(job: str):
    return jsonify(job=runtime().jobs.retry(_job_id(job)).as_dict())


@api.post("/jobs/<job>/priority")
def priority(job: str):
    value = _body().get("priority")
    if not isinstance(value, int):
        raise UsageError('expected {"priority": N} with a whole number (higher runs first)')
    return jsonify(job=runtime().jobs.prioritise(_job_id(job), value).as_dict())


@api.delete("/jobs/finished")
def clear_finished():
    return jsonify(removed=runtime().jobs.clear_finished())


@api.get("/jobs/stream")
def job_stream():
    """Server-sent events: ``job`` events with the job as JSON whenever one changes."""
    since = request.args.get("since", "")
    try:
        last = float(since) if since else time.time()
    except ValueError:
        raise UsageError(f"since={since!r}: expected a timestamp") from None

    stopping = runtime().stopping

    @stream_with_context
    def events():
        nonlocal last
        seen, quiet = changes.serial, 0.0
        yield "retry: 1000\n\n"
        while not stopping.is_set():
            rows = list(Job.select().where(Job.updated_at > last).order_by(Job.updated_at))
            for row in rows:
                last = max(last, row.updated_at)
                yield f"id: {row.updated_at!r}\nevent: job\ndata: {json.dumps(row.as_dict(), ensure_ascii=False)}\n\n"
            if rows:
                quiet = 0.0
            elif quiet >= HEARTBEAT:
                quiet = 0.0
                yield ": still here\n\n"
            before = time.monotonic()
            seen = changes.wait(seen, STREAM_POLL)
            quiet += time.monotonic() - before

    return Response(events(), mimetype="text/event-stream", headers={"X-Accel-Buffering": "no"})


# -- plugins, settings, the machine -----------------------------------------------------------------


@api.get("/plugins")
def plugin_list():
    return jsonify(plugins=plugins.describe(), disabled=get_setting("plugins.disabled", []),
                   allow_list=sorted(plugins.allow_list() or []) or None)


@api.post("/plugins/<name>/<action>")
def plugin_toggle(name: str, action: str):
    if action not in ("enable", "disable"):
        raise NotFound(f"no action {action!r}: use enable or disable")
    known = {p["name"]: p for p in plugins.describe()}
    if name not in known:
        raise NotFound(f"no plugin {name!r}")
    if known[name]["internal"]:
        raise UsageError(f"{name} is part of Zishu and cannot be disabled")
    disabled = set(get_setting("plugins.disabled", []))
    disabled = disabled | {name} if action == "disable" else disabled - {name}
    set_setting("plugins.disabled", sorted(disabled))
    return jsonify(name=name, disabled=name in disabled, restart_needed=True)


@api.get("/settings")
def settings():
    return jsonify(current_settings())


def current_settings() -> dict:
    rt = runtime()
    from zishu.companion.session import SETTING as COMPANION_MODELS

    return {"catalog_url": get_setting("catalog_url", ""), "catalog_env": config.catalog_source(),
            "catalog_used": rt.catalog().source, "home": str(rt.home), "queue": rt.jobs.description,
            "companion_models": get_setting(COMPANION_MODELS, {})}


@api.put("/settings")
def change_settings():
    from zishu.companion.session import ROLES, SETTING as COMPANION_MODELS

    body = _body()
    unknown = set(body) - {"catalog_url", "companion_models"}
    if unknown:
        raise UsageError(f"unknown settings: {', '.join(sorted(unknown))} (known: catalog_url, companion_models)")
    if "companion_models" in body:
        chosen = body["companion_models"]
        if not isinstance(chosen, dict) or set(chosen) - set(ROLES) or not all(isinstance(v, str) for v in chosen.values()):
            raise UsageError(f"companion_models must map roles ({', '.join(ROLES)}) to model ids, e.g. "
                             '{"embedding": "owner/model"}')
        set_setting(COMPANION_MODELS, {role: rid.strip() for role, rid in chosen.items() if rid.strip()})
    if "catalog_url" in body:
        url = body["catalog_url"]
        if not isinstance(url, str) or (url and not re.match(r"^(https?|file)://\S+$", url.strip())):
            raise UsageError("catalog_url must be an http(s):// or file:// URL, or empty for the bundled catalog")
        set_setting("catalog_url", url.strip())
    return settings()


@api.get("/system")
def system_info():
    return jsonify(system.summary(runtime().home))


@api.get("/health")
def health():
    from zishu import __version__

    return jsonify(ok=True, version=__version__)


@api.post("/open")
def open_link():
    """Where a ``zishu://`` link leads in the app: ``{"url": "zishu://resource/owner/name"}``."""
    from zishu.links import location

    url = _body().get("url")
    if not isinstance(url, str):
        raise UsageError('expected {"url": "zishu://..."}')
    return jsonify(location=location(url))
