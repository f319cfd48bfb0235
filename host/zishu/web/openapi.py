"""``GET /api/openapi.json``: the app's API as an OpenAPI 3.1 document, generated from its routes and
the pydantic models they validate with (``api_doc.build_document``), on the window's port and on
the local API port (for tools)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from .api_doc import build_document

openapi = Blueprint("openapi", __name__)


@openapi.get("/api/openapi.json")
def document():
    """This app's API as an OpenAPI 3.1 document (every route, the request models' schemas)."""
    return jsonify(build_document(current_app))
