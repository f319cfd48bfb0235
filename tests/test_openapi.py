"""One description of the API (issue 19, item 4): ``/api/openapi.json`` is OpenAPI 3.1 generated from
the app's routes and the pydantic models they validate with, served on the window's port and on the
local API port, and docs/api.md lists every endpoint. Each test walks the real ``app.url_map``, so a
route added anywhere (a plugin's too) is missing from neither, and a route with no summary fails,
named."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import jsonschema
import pytest
import requests
from flask import Blueprint
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def app(runtime):
    from zishu.web.app import create_app

    return create_app(runtime, "s3cret")


def _rules(app):
    """Every (rule, method) the app serves. Static files are exempt: Flask's ``static`` endpoints
    serve the front end's own files (scripts, styles, vendored libraries), not an API."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield rule, method


def test_every_route_of_the_app_is_in_the_document_with_a_summary(app):
    from zishu.web.api_doc import openapi_path

    document = app.test_client().get("/api/openapi.json", headers={"X-Zishu-Token": "s3cret"}).json
    missing, unsummarised = [], []
    for rule, method in _rules(app):
        operation = document["paths"].get(openapi_path(rule), {}).get(method.lower())
        if operation is None:
            missing.append(f"{method} {rule.rule} ({rule.endpoint})")
        elif not operation["summary"].strip():
            unsummarised.append(f"{method} {rule.rule} ({rule.endpoint})")
    assert not missing, f"routes missing from /api/openapi.json: {missing}"
    assert not unsummarised, ("routes with no summary: give each view a docstring (its first line is the "
                              f"summary) or a line in its module's docstring table: {unsummarised}")
    served = sum(len(ops) for ops in document["paths"].values())
    assert served == len(list(_rules(app)))  # nothing in the document that the app does not serve


def test_the_document_is_openapi_3_1_with_the_routes_own_request_models(app):
    from zishu.companion.openai_compat import ChatCompletionRequest
    from zishu.companion.openai_media import TranscriptionRequest
    from zishu.studio.requests import ImageRequest

    document = app.test_client().get("/api/openapi.json", headers={"X-Zishu-Token": "s3cret"}).json
    assert document["openapi"] == "3.1.0" and document["info"]["title"] == "Zishu"
    schemas = document["components"]["schemas"]
    for schema in schemas.values():
        jsonschema.Draft202012Validator.check_schema(schema)  # OpenAPI 3.1 schemas are JSON Schema 2020-12

    def body(path, method="post", media="application/json"):
        return document["paths"][path][method]["requestBody"]["content"][media]["schema"]

    assert body("/v1/chat/completions") == {"$ref": "#/components/schemas/ChatCompletionRequest"}
    assert body("/api/studio/images") == {"$ref": "#/components/schemas/ImageRequest"}
    assert schemas["ImageRequest"]["properties"].keys() == ImageRequest.model_fields.keys()
    assert schemas["ChatCompletionRequest"]["required"] == ChatCompletionRequest.model_json_schema()["required"]
    form = body("/v1/audio/transcriptions", media="multipart/form-data")
    assert form["allOf"][0] == {"$ref": "#/components/schemas/TranscriptionRequest"}
    assert set(schemas["TranscriptionRequest"]["properties"]) == set(TranscriptionRequest.model_fields)
    assert "file" in form["allOf"][1]["required"]

    # every $ref resolves, and a request validates against its schema as the route would take it
    def refs(node):
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for ref in set(refs(document)):
        kind, _, name = ref.removeprefix("#/components/").partition("/")
        assert name in document["components"][kind], ref
    image = {"$ref": "#/components/schemas/ImageRequest", "components": document["components"]}
    validator = jsonschema.Draft202012Validator(image)
    assert not list(validator.iter_errors({"prompt": "a cat", "width": 512, "loras": [{"id": "a/b"}]}))
    assert list(validator.iter_errors({"prompt": "a cat", "sampler": "x"}))  # extra fields are refused

    jobs = document["paths"]["/api/jobs/{job}"]["get"]
    assert jobs["parameters"] == [{"name": "job", "in": "path", "required": True, "schema": {"type": "string"}}]
    chats = document["paths"]["/api/companion/chats/{cid}"]["get"]
    assert chats["parameters"][0]["schema"] == {"type": "integer"}
    assert "202" in document["paths"]["/api/studio/images"]["post"]["responses"]


def test_a_new_route_is_in_the_document_and_one_without_a_summary_is_named(runtime):
    from zishu.web.api_doc import build_document, described, undescribed
    from zishu.web.app import create_app

    class Wish(BaseModel):
        text: str

    extra = Blueprint("extra", __name__)

    @extra.post("/api/wishes")
    @described(body=Wish, status=201)
    def make_wish():
        """Make a wish."""

    @extra.get("/api/wishes/<int:wid>")
    def wish(wid: int):
        return ""

    app = create_app(runtime, "s3cret")
    app.register_blueprint(extra)
    document = build_document(app)
    made = document["paths"]["/api/wishes"]["post"]
    assert made["summary"] == "Make a wish." and "201" in made["responses"]
    assert made["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Wish"}
    assert "/api/wishes/{wid}" in document["paths"]
    assert undescribed(app) == ["GET /api/wishes/<int:wid> (extra.wish)"]


def test_docs_api_md_lists_every_endpoint_as_the_routes_say(app):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from api_docs import generated
    finally:
        sys.path.pop(0)
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert text == generated(), "docs/api.md differs from the routes: run python scripts/api_docs.py"
    for rule, method in _rules(app):
        from zishu.web.api_doc import openapi_path

        assert f"| {method} | `{openapi_path(rule)}` |" in text, (method, rule.rule)


def test_the_document_is_served_on_the_local_api_port_with_the_key(runtime):
    from zishu.web.security import ApiAccess
    from zishu.web.server import AppServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = AppServer(runtime, api=ApiAccess(key="zk-doc"), api_port=port).start()
    try:
        url = f"{server.api_url}/api/openapi.json"
        assert requests.get(url, timeout=30).status_code == 401
        answer = requests.get(url, headers={"Authorization": "Bearer zk-doc"}, timeout=30)
        assert answer.status_code == 200 and answer.json()["openapi"] == "3.1.0"
        assert "/mcp" in answer.json()["paths"]
    finally:
        server.stop()
