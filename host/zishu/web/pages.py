"""The app's pages: Discover, a resource's page, Library, Jobs, Nodes, Plugins, Settings, Studio.

Jinja renders what the server already knows (the shell, the library, plugins, settings, a
resource's manifest); the static ES modules fill the live parts (search, install progress, jobs)
through the JSON API in ``api.py``.
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, redirect, render_template, request
from markupsafe import Markup

from zishu import plugins
from zishu import settings as user_settings
from zishu.catalog.markup import description_html
from zishu.sizes import SIZE_UNKNOWN, byte_size, download_size

from .api import VERSION, _id, current_settings, library_listing, resource_detail
from .app import runtime

pages = Blueprint("pages", __name__)


@pages.app_template_filter("size")
def size(n: int | None) -> str:
    """Bytes for people: 1023 B, 9.8 KiB, 8.0 MiB (``zishu.sizes``, mirrored by the UI's JavaScript)."""
    return byte_size(n)


@pages.app_template_filter("file_size")
def file_size(n: int | None) -> str:
    """A catalog file's size; "size unknown" for a hub file the catalog gives none for."""
    return SIZE_UNKNOWN if n is None else byte_size(n)


@pages.app_template_filter("version_size")
def version_size(version: dict) -> str:
    """A version's download: "at least …" or "size unknown" when some file's size is unknown."""
    sizes = [f.get("size") for f in version.get("files") or []]
    return download_size(sum(s or 0 for s in sizes), exact=None not in sizes)


def install_size(rid: str) -> str | None:
    """What installing ``rid`` downloads with what it requires, from its index entry (None when
    the index does not say)."""
    entry = next((e for e in runtime().catalog().index() if e.get("id") == rid), None)
    if entry is None or "install_size" not in entry:
        return None
    return download_size(entry["install_size"], exact=bool(entry.get("install_size_exact")))


@pages.app_template_filter("when")
def when(stamp: str | None) -> str:
    """An ISO time stamp as a local date and minute."""
    try:
        return dt.datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M")  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return stamp or ""


@pages.get("/")
def home():
    return redirect("/discover")


@pages.get("/discover")
def discover():
    return render_template("discover.html", title="Discover", active="/discover")


@pages.get("/resources/<owner>/<name>")
def resource(owner: str, name: str):
    """A resource's page; ``?install=owner/name[@version]`` (a zishu://install link) highlights Install."""
    rid = _id(owner, name)
    detail = resource_detail(rid)
    wanted, _, version = request.args.get("install", "").lower().partition("@")
    install = wanted == rid and (not version or bool(VERSION.match(version)))
    versions = detail.get("versions") or [{}]
    latest = next((v for v in versions if v.get("version") == detail.get("latest")), versions[-1])
    return render_template("resource.html", title=detail.get("name") or rid, active="/discover", r=detail,
                           description=Markup(description_html(detail.get("description"))),
                           latest=latest, install_link=install, install_version=version if install else "",
                           install_size=install_size(rid))


@pages.get("/library")
def library():
    return render_template("library.html", title="Library", active="/library", library=library_listing())


@pages.get("/jobs")
def jobs():
    return render_template("jobs.html", title="Jobs", active="/jobs")


@pages.get("/nodes")
def nodes_panel():
    """The cluster's nodes; ``nodes.js`` reads them from ``/api/cluster/nodes`` every few seconds and
    marks a heartbeat older than the time a node's entry lives in Redis as stale."""
    from zishu.cluster.nodes import EXPIRES_AFTER

    return render_template("nodes.html", title="Nodes", active="/nodes", stale_after=EXPIRES_AFTER)


@pages.get("/studio")
def studio():
    """The Studio panel (``static/studio.js``): it draws through ``/api/studio`` and the job stream."""
    return render_template("studio.html", title="Studio", active="/studio")


@pages.get("/plugins")
def plugin_list():
    return render_template(
        "plugins.html", title="Plugins", active="/plugins", plugins=plugins.describe(),
        disabled=user_settings.load().plugins_disabled, allow_list=sorted(plugins.allow_list() or []),
    )


@pages.get("/settings")
def settings():
    return render_template("settings.html", title="Settings", active="/settings", settings=current_settings())
