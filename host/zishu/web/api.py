"""The JSON API under ``/api``: catalog, installs, library, jobs (with a live stream), plugins,
settings and the machine. The UI's JavaScript and outside tools use the same routes.

Resource ids from a URL are checked against the id pattern and looked up in the registry before
any path is built from them; no path from a request reaches the filesystem otherwise.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator

import click
from flask import Blueprint, current_app, jsonify, request, send_file

from zishu import config, plugins, system
from zishu import settings as user_settings
from zishu.catalog.search import MAX_RESULTS, CatalogQuery, facets
from zishu.companion import characters as user_characters
from zishu.errors import NotFound, UsageError
from zishu.ids import VERSION_PATTERN, parse_id, parse_request
from zishu.jobs import changes_since, records
from zishu.jobs.events import changes
from zishu.jobs.records import MAX_JOB_ID, JobRef
from zishu.resources.library import Library
from zishu.resources.overview import install_overview

from .app import runtime
from .streams import KEEP_ALIVE, open_stream

api = Blueprint("api", __name__, url_prefix="/api")

VERSION = re.compile(VERSION_PATTERN)
STREAM_POLL = 0.5  # seconds: how often the job stream looks at the table for other processes' changes
PRIORITY_RANGE = 1_000_000


def _id(owner: str, name: str) -> str:
    """The id in a route (case folded), by the one id rule: dotted names such as qwen2.5 too."""
    return parse_id(f"{owner}/{name}".lower())


def _body() -> dict:
    """The request's JSON object ({} without a body). 413 past the body limit (a chunked body
    too: ``app.py`` counts what is read); 400 for anything that is not one JSON object."""
    raw = request.get_data(cache=True)
    if not raw:
        return {}
    if not request.is_json:
        raise UsageError("the request body is not JSON (send it with Content-Type: application/json)")
    try:
        data = current_app.json.loads(raw)
    except json.JSONDecodeError:
        raise UsageError("the request body is not JSON") from None
    except ValueError as e:  # bad UTF-8, NaN, a number too large, too deep, a lone surrogate (see app.py)
        raise UsageError(f"the request body is not JSON: {e}") from None
    if not isinstance(data, dict):
        raise UsageError("the request body must be a JSON object")
    return data


def _shown(value: str, most: int = 40) -> str:
    """``value`` quoted for an error message, cut to ``most`` characters."""
    return repr(value if len(value) <= most else value[:most] + "…")


def whole_number(value: str, what: str, *, low: int, high: int) -> int:
    """A whole number from a URL or query: ASCII digits only (``str.isdigit`` also takes "²"),
    from ``low`` to ``high``; else UsageError (400)."""
    if not (value.isascii() and value.isdigit()) or len(value) > len(str(high)) or not low <= int(value) <= high:
        raise UsageError(f"{what}={_shown(value)}: expected a whole number from {low} to {high}")
    return int(value)


def priority_of(body: dict, default: int | None = 0) -> int:
    """The ``priority`` of a JSON body: a whole number within ±PRIORITY_RANGE (higher runs first)."""
    value = body.get("priority", default)
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > PRIORITY_RANGE:
        raise UsageError(f'expected {{"priority": N}} with a whole number from {-PRIORITY_RANGE} to '
                         f"{PRIORITY_RANGE} (higher runs first)")
    return value


def _library() -> Library:
    return Library(runtime().registry)


# -- catalog ------------------------------------------------------------------------------------


@api.get("/catalog/search")
def catalog_search():
    args = request.args
    asked = CatalogQuery.parse({
        "query": args.get("q", ""), "kind": args.get("kind") or None, "tag": args.get("tag") or None,
        "license": args.get("license") or None, "base_model": args.get("base_model") or None,
        "sort": args.get("sort") or "popular",
        "limit": whole_number(args.get("limit", "60"), "limit", low=0, high=MAX_RESULTS)})
    client = runtime().catalog()
    found = client.search(asked.query, kind=asked.kind, tag=asked.tag, license=asked.license,
                          base_model=asked.base_model, sort=asked.sort)
    results = _library().mark_installed(found[:asked.limit])
    return jsonify(results=results, total=len(found), source=client.source_used, warning=client.warning)


@api.get("/catalog/facets")
def catalog_facets():
    return jsonify(facets(runtime().catalog().index()))


@api.get("/catalog/resources/<owner>/<name>")
def catalog_resource(owner: str, name: str):
    return jsonify(resource_detail(_id(owner, name)))


def resource_detail(rid: str) -> dict:
    """The catalog's detail document, with the versions installed here."""
    return {**runtime().catalog().detail(rid), "installed": _library().installed().get(rid, [])}


@api.get("/catalog/plan")
def catalog_plan():
    """What installing ``?request=owner/name[@version]`` pulls and needs (the Install dialog)."""
    wanted = request.args.get("request", "")
    parse_request(wanted, exact=False)
    rt = runtime()
    return jsonify(install_overview(rt.catalog(), wanted.strip().lower(), rt.registry, rt.home,
                                    system.summary(rt.home)))


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
    params: dict = {"request": wanted.strip().lower()}
    approved = body.get("approve_plugins", [])
    if not isinstance(approved, list) or not all(isinstance(a, str) for a in approved):
        raise UsageError('"approve_plugins" is a list of plugin ids the user approved')
    if approved:
        params["approve_plugins"] = [parse_id(a.lower()) for a in approved]
    job = runtime().jobs.submit("install", params, priority=priority_of(body))
    return jsonify(job=job.as_dict()), 202


@api.get("/library")
def library():
    return jsonify(library_listing())


def library_listing() -> dict:
    """What is installed, with names from the installed manifests and sizes (the Library panel)."""
    return _library().listing()


def _version_arg() -> str | None:
    version = request.args.get("version") or None
    if version is not None and not VERSION.match(version):
        raise UsageError(f"version={version!r} is not a version")
    return version


@api.delete("/library/<owner>/<name>")
def uninstall(owner: str, name: str):
    """A catalog resource's version is deleted; the user's own character goes, every version, to
    the Characters trash (``trashed``: true; POST /api/characters/<id>/restore brings it back)."""
    rid, version = _id(owner, name), _version_arg()
    if user_characters.is_own_character(runtime(), rid):
        deleted = user_characters.delete_character(runtime(), rid)
        return jsonify(id=rid, removed=deleted["versions"], trashed=True)
    return jsonify(id=rid, removed=_library().uninstall(rid, version), trashed=False)


@api.post("/library/<owner>/<name>/open")
def open_folder(owner: str, name: str):
    rid, version = _id(owner, name), _version_arg()
    path = _library().folder(rid, version)  # MODEL_NOT_AVAILABLE (404) unless installed
    opened = click.launch(str(path)) == 0
    return jsonify(path=str(path), opened=opened)


# -- jobs ------------------------------------------------------------------------------------------


def _job_id(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or len(value) > 19 or int(value) > MAX_JOB_ID:
        raise UsageError(f"{_shown(value)} is not a job id (a whole number)")
    return JobRef.parse({"job_id": int(value)}).job_id


@api.get("/jobs")
def jobs():
    return jsonify(jobs=[j.as_dict() for j in records.recent()], queue=runtime().jobs.description)


@api.post("/jobs")
def submit():
    """Submit a job of any registered type: ``{"kind": ..., "params": {...}, "priority": 0}``."""
    body = _body()
    kind, params = body.get("kind"), body.get("params", {})
    if not isinstance(kind, str) or not isinstance(params, dict):
        raise UsageError('expected {"kind": "name", "params": {...}, "priority": 0}')
    return jsonify(job=runtime().jobs.submit(kind, params, priority=priority_of(body)).as_dict()), 202


@api.get("/jobs/<job>")
def job(job: str):
    return jsonify(job=runtime().jobs.get(_job_id(job)).as_dict())


@api.get("/jobs/<job>/files/<index>")
def job_file(job: str, index: str):
    """The ``index``-th file (from 0) a finished job made, as its result's ``files`` lists them."""
    path = runtime().jobs.result_file(_job_id(job), whole_number(index, "index", low=0, high=9_999))
    return send_file(path, max_age=0)


@api.post("/jobs/<job>/cancel")
def cancel(job: str):
    return jsonify(job=runtime().jobs.cancel(_job_id(job)).as_dict())


@api.post("/jobs/<job>/retry")
def retry(job: str):
    return jsonify(job=runtime().jobs.retry(_job_id(job)).as_dict())


@api.post("/jobs/<job>/priority")
def priority(job: str):
    value = priority_of(_body(), default=None)
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
        last = math.nan
    if not math.isfinite(last) or not 0 <= last <= time.time() + 86_400:  # nan, inf, 1e999 never compare
        raise UsageError(f"since={_shown(since)}: expected a timestamp (seconds since 1970)")

    stopping = runtime().stopping

    def events() -> Iterator[str]:
        nonlocal last
        seen, quiet = changes.serial, 0.0
        yield "retry: 1000\n\n"
        while not stopping.is_set():
            rows = changes_since(last)
            for row in rows:
                last = max(last, row.updated_at)
                yield f"id: {row.updated_at!r}\nevent: job\ndata: {json.dumps(row.as_dict(), ensure_ascii=False)}\n\n"
            if rows:
                quiet = 0.0
            elif quiet >= KEEP_ALIVE:
                quiet = 0.0
                yield ": still here\n\n"
            before = time.monotonic()
            seen = changes.wait(seen, STREAM_POLL)
            quiet += time.monotonic() - before

    return open_stream(events())


# -- plugins, settings, the machine -----------------------------------------------------------------


@api.get("/plugins")
def plugin_list():
    return jsonify(plugins=plugins.describe(), disabled=user_settings.load().plugins_disabled,
                   allow_list=sorted(plugins.allow_list() or []) or None)


@api.post("/plugins/<name>/<action>")
def plugin_toggle(name: str, action: str):
    if action not in ("enable", "disable"):
        raise NotFound(f"no action {action!r}: use enable or disable")
    disabled = user_settings.set_plugin_disabled(name, action == "disable")
    return jsonify(name=name, disabled=name in disabled, restart_needed=True)


@api.get("/settings")
def settings():
    return jsonify(current_settings())


def current_settings() -> dict:
    """The settings the user chose, with where the catalog and the data really come from."""
    rt = runtime()
    chosen = user_settings.load()
    return {"catalog_url": chosen.catalog_url, "catalog_env": config.catalog_source(),
            "catalog_used": rt.catalog().source, "home": str(rt.home), "queue": rt.jobs.description,
            "companion_models": chosen.companion_models, "companion_devices": chosen.companion_devices,
            "companion_voice": chosen.companion_voice, "companion_turn_seconds": chosen.companion_turn_seconds,
            "studio_safe_mode": chosen.studio_safe_mode, "studio_image_check": chosen.studio_image_check,
            "local_api_enabled": chosen.local_api_enabled, "local_api_port": chosen.local_api_port,
            "local_api_origins": chosen.local_api_origins,
            "storyboard_picture_side": chosen.storyboard_picture_side}


# what PUT /api/settings changes (plugins have their own route)
EDITABLE = ("catalog_url", "companion_models", "companion_devices", "companion_voice", "companion_turn_seconds",
            "studio_safe_mode", "studio_image_check", "local_api_enabled", "local_api_port", "local_api_origins",
            "storyboard_picture_side")


@api.put("/settings")
def change_settings():
    chosen = user_settings.change(_body(), allowed=EDITABLE)
    current_app.config["ZISHU_API"].origins = set(chosen.local_api_origins)  # origins apply at once
    return settings()


# -- the local API for other tools (Settings, "Local API") ------------------------------------------


@api.get("/local-api")
def local_api():
    """The local API's state for Settings: its key (to see and copy), where the key is kept, the
    port and origins chosen, where it listens now, and whether a restart is needed to apply them."""
    from zishu import api_key

    chosen = user_settings.load()
    listening = current_app.config.get("ZISHU_API_URL")
    wanted = f"http://127.0.0.1:{chosen.local_api_port}" if chosen.local_api_enabled else None
    return jsonify(enabled=chosen.local_api_enabled, port=chosen.local_api_port, origins=chosen.local_api_origins,
                   key=api_key.api_key(runtime().home), key_kept_in=api_key.where(runtime().home),
                   listening=listening, error=current_app.config.get("ZISHU_API_ERROR"),
                   restart_needed=listening != wanted)


@api.post("/local-api/key")
def rotate_local_api_key():
    """A new API key; the old one is refused from this moment on."""
    from zishu import api_key

    current_app.config["ZISHU_API"].key = api_key.rotate(runtime().home)
    return local_api()


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
