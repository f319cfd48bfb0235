"""The Engines panel and its API: engines from plugins, the models loaded now, memory, unload."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template

from zishu.errors import UsageError
from zishu.resources.engine_models import describe_engines

from .api import _body
from .app import runtime

engines = Blueprint("engines", __name__)


def engines_state() -> dict:
    rt = runtime()
    used = rt.models.used
    return {"engines": describe_engines(rt.engines, rt.registry), "loaded": rt.models.loaded(),
            "ram_budget": rt.models.ram_budget, "vram_budget": rt.models.vram_budget,
            "ram_used": used.ram, "vram_used": used.vram}


@engines.get("/engines")
def panel():
    return render_template("engines.html", title="Engines", active="/engines", state=engines_state())


@engines.get("/api/engines")
def state():
    return jsonify(engines_state())


@engines.post("/api/engines/unload")
def unload():
    """``{"engine": name, "model": key}``; either may be left out (both: unload everything)."""
    body = _body()
    engine, model = body.get("engine"), body.get("model")
    if not all(v is None or isinstance(v, str) for v in (engine, model)):
        raise UsageError('expected {"engine": "name", "model": "key"} (both optional)')
    return jsonify(unloaded=runtime().models.unload(engine, model), **engines_state())
