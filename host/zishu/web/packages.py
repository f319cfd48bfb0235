"""Packing and opening packages from the app (the work is ``zishu.packaging``'s)::

    GET  /api/packages/formats                    {"formats": [{name, suffixes, modes, title, opens}]}
    POST /api/characters/<owner>/<name>/pack      {"mode", "format"?, "out"?} → 202 {"job"} (kind "pack";
                                                  its result: {"path", "size", "mode", "format"}; default
                                                  out: ZISHU_HOME/packages/<name>-<version>.zpkg)
    POST /api/packages                            {"path": "/abs/file.zpkg"}, or the file itself as the body
                                                  (application/octet-stream, ?name=file.zpkg) → {"path",
                                                  "plan"}: verified, nothing installed yet
    POST /api/packages/install                    {"path"} (from the answer above) → 202 {"job"}
                                                  (kind "install-package")
    POST /api/packages/undo                       {"id", "version"} → the version a package installed removed
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from flask import Blueprint, jsonify, request

from zishu.errors import UsageError
from zishu.files import adjacent_tmp_file
from zishu.ids import parse_id
from zishu.packaging.format import package_file_name
from zishu.packaging.formats import format_named, formats
from zishu.packaging.install import undo_package_install
from zishu.packaging.packages import is_package, read_package

from .api import _body, priority_of
from .app import runtime
from .characters import _id

packages = Blueprint("packages", __name__)

MAX_UPLOAD = 64 * 1024**3  # a package sent as the request body
CHUNK = 1024 * 1024


def _folder() -> Path:
    return runtime().home / "packages"


@packages.get("/api/packages/formats")
def list_formats():
    return jsonify(formats=[f.as_dict() for f in formats().values()])


@packages.post("/api/characters/<owner>/<name>/pack")
def pack(owner: str, name: str):
    rid = _id(owner, name)
    body = _body()
    mode, fmt_name = body.get("mode", "standalone"), body.get("format", "zpkg")
    if not isinstance(mode, str) or not isinstance(fmt_name, str):
        raise UsageError('expected {"mode": "standalone" | "reference" | "hybrid", "format": "zpkg"}')
    fmt = format_named(fmt_name)
    if mode not in fmt.modes:
        raise UsageError(f"mode: the {fmt.name} format packs in {', '.join(fmt.modes)} mode only")
    out = body.get("out")
    if out is None:
        version = (runtime().registry.versions(rid) or ["0.0.0"])[0]
        out = str(_folder() / Path(package_file_name(rid, version)).with_suffix(fmt.suffixes[0]))
    elif not isinstance(out, str) or not Path(out).is_absolute():
        raise UsageError("out: must be an absolute path")
    params = {"character": rid, "mode": mode, "format": fmt.name, "out": out}
    return jsonify(job=runtime().jobs.submit("pack", params, priority=priority_of(body)).as_dict()), 202


@packages.post("/api/packages")
def open_package():
    if request.mimetype == "application/json":
        path = _body().get("path")
        if not isinstance(path, str) or not Path(path).is_absolute():
            raise UsageError('expected {"path": "/absolute/path/to/file.zpkg"} or the file as the body')
        file = Path(path)
    else:
        file = _receive()
    if not is_package(file):
        raise UsageError(f"{file.name}: not a package Zishu opens ({_suffixes()})")
    return jsonify(path=str(file), plan=read_package(runtime().home, file))


def _suffixes() -> str:
    return ", ".join(sorted({s for f in formats().values() if f.open for s in f.suffixes}))


def _receive() -> Path:
    """The request body streamed to ZISHU_HOME/packages/received/<random>/<name> (never held in memory)."""
    raw = request.args.get("name") or "package.zpkg"
    shown = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(raw.replace("\\", "/")).name)[:100] or "package.zpkg"
    request.max_content_length = MAX_UPLOAD
    out = _folder() / "received" / uuid.uuid4().hex[:12] / shown
    if not is_package(out):
        raise UsageError(f"{shown}: not a package Zishu opens ({_suffixes()})")
    with adjacent_tmp_file(out, "wb") as f:
        while block := request.stream.read(CHUNK):
            f.write(block)
    return out


@packages.post("/api/packages/install")
def install():
    body = _body()
    path = body.get("path")
    if not isinstance(path, str) or not Path(path).is_file():
        raise UsageError('expected {"path"} of a package file (POST /api/packages answers it)')
    job = runtime().jobs.submit("install-package", {"path": path}, priority=priority_of(body))
    return jsonify(job=job.as_dict()), 202


@packages.post("/api/packages/undo")
def undo():
    body = _body()
    rid, version = body.get("id"), body.get("version")
    if not isinstance(rid, str) or not isinstance(version, str):
        raise UsageError('expected {"id", "version"}')
    return jsonify(undone=undo_package_install(runtime().registry, parse_id(rid, what="character id"), version))
