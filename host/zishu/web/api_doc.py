"""The OpenAPI 3.1 document of a running app, generated from its routes (``app.url_map``) and the
pydantic models its routes validate with; served at ``/api/openapi.json`` (``openapi.py``) and
written out as ``docs/api.md`` (``scripts/api_docs.py``; a test keeps both true).

A route needs no hand work beyond what it already has. Each operation's

- path, method and path parameters come from the rule (``<int:sid>`` is an integer, any other
  converter a string);
- summary comes from the view's docstring (first line; the rest is the description), else from
  the line naming its method and path in its module's docstring table (``GET /api/jobs  what it
  answers``, as the blueprints already write them; ``→ 202`` there gives the success status),
  else from ``api_summaries.SUMMARIES`` (the routes older than this document), else, for a page in
  the app's navigation, from its label;
- request body comes from the view's ``described(...)`` marks or from ``ROUTE_MODELS`` (endpoint →
  the pydantic model the route validates with; a route without one takes a JSON object).

``undescribed(app)`` lists the routes that have no summary from either place: a new route without
a docstring fails ``tests/test_openapi.py``, which names it. Static files (Flask's ``static``
endpoints) are left out: they are the front end's own files, not an API.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from pydantic import BaseModel
from werkzeug.routing import Rule

from zishu import __version__

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_TABLE_LINE = re.compile(r"^\s*((?:GET|POST|PUT|PATCH|DELETE)(?:\s*[|/,]\s*(?:GET|POST|PUT|PATCH|DELETE))*)\s+(/\S*)"
                         r"(?:\s+(.*))?$")
_PARAM = re.compile(r"<(?:(?P<converter>[a-zA-Z_][a-zA-Z0-9_]*)(?:\([^)]*\))?:)?(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)>")
_STATUS = re.compile(r"→\s*([1-5]\d\d)\b")


@dataclass(frozen=True)
class Described:
    """What a route takes beyond its path: a JSON ``body``, a multipart ``form`` (with ``files``),
    ``query`` parameters, all pydantic models; and what it answers (``answers``: media type)."""

    body: type[BaseModel] | None = None
    form: type[BaseModel] | None = None
    files: tuple[str, ...] = ()
    query: type[BaseModel] | None = None
    answers: str | None = None
    status: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def described(**what: Any) -> Callable[[Callable], Callable]:
    """Mark a view with what it takes (``body=Model``, ``form=Model``, ``files=("file",)``,
    ``query=Model``, ``answers="audio/mpeg"``, ``status=202``) for the OpenAPI document."""

    def mark(view: Callable) -> Callable:
        view.zishu_described = Described(**what)  # type: ignore[attr-defined]
        return view

    return mark


def route_models() -> dict[str, Described]:
    """Endpoint → what it takes, for the routes that validate with a pydantic model and carry no
    ``described`` mark (kept here so the blueprints stay as they are)."""
    from zishu.companion import openai_compat as compat
    from zishu.companion import openai_media as media
    from zishu.storyboard.requests import ExportRequest, StoryboardRequest
    from zishu.studio.requests import ImageRequest

    return {
        "openai_api.chat_completions": Described(body=compat.ChatCompletionRequest),
        "openai_api.embeddings": Described(body=media.EmbeddingRequest),
        "openai_api.speech": Described(body=media.SpeechRequest, answers="audio/mpeg"),
        "openai_api.transcriptions": Described(form=media.TranscriptionRequest, files=("file",)),
        "studio.draw": Described(body=ImageRequest, status=202),
        "storyboard.create_storyboard": Described(body=StoryboardRequest, status=201),
        "storyboard.export": Described(body=ExportRequest, status=202),
        "mcp_http.mcp": Described(answers="text/event-stream", extra={"x-protocol": "MCP streamable HTTP"}),
        "api.job_stream": Described(answers="text/event-stream"),
        "companion.events": Described(answers="text/event-stream"),
        "studio.file": Described(answers="image/png"),
    }


# -- summaries --------------------------------------------------------------------------------------


def _module_table(module_name: str) -> dict[tuple[str, str], str]:
    """(method, path with its parameters as <>) → the text the module docstring's table gives it."""
    try:
        module = importlib.import_module(module_name)
        text = inspect.getdoc(module) or ""
    except Exception:  # noqa: BLE001 - a module that cannot be read has no table
        return {}
    table: dict[tuple[str, str], str] = {}
    last: list[tuple[str, str]] = []
    indent = 0
    for line in text.splitlines():
        found = _TABLE_LINE.match(line)
        if found:
            methods = re.split(r"\s*[|/,]\s*", found.group(1))
            path = _shape(found.group(2).rstrip(":,"))
            last = [(m, path) for m in methods]
            indent = line.index("/") + len(found.group(2))
            for key in last:
                table[key] = (found.group(3) or "").strip()
        elif last and line.strip() and len(line) - len(line.lstrip()) >= min(indent, 20):
            for key in last:
                table[key] = (table[key] + " " + line.strip()).strip()
        else:
            last = []
    return table


def _shape(path: str) -> str:
    """A path with each parameter as ``<>``, to match a table's ``<id>`` to a rule's ``<int:sid>``."""
    return re.sub(r"<[^>]*>", "<>", path.split("?")[0]).rstrip("/") or "/"


def summary_of(app: Flask, rule: Rule, method: str, tables: dict[str, dict] | None = None) -> tuple[str, str]:
    """(summary, description) of a route: its docstring, else its module's table; ("", "") for none."""
    view = app.view_functions[rule.endpoint]
    doc = inspect.getdoc(view)
    if doc:
        first, _, rest = doc.partition("\n")
        return first.strip(), rest.strip()
    tables = {} if tables is None else tables
    module = getattr(view, "__module__", "")
    if module not in tables:
        tables[module] = _module_table(module)
    text = tables[module].get((method, _shape(rule.rule)))
    if text:
        return _first_sentence(text), text
    from .api_summaries import SUMMARIES

    listed = SUMMARIES.get(f"{method} {rule.endpoint}")
    if listed:
        return listed, ""
    for label, href in app.config.get("ZISHU_NAV", []):
        if method == "GET" and href == rule.rule:
            return f"The {label} page.", ""
    return "", ""


def _first_sentence(text: str) -> str:
    cut = re.split(r"(?<=[.;])\s|\s→\s", text, maxsplit=1)[0]
    return cut[:200].rstrip(" ;")


# -- the document -----------------------------------------------------------------------------------


def api_rules(app: Flask) -> list[tuple[Rule, str]]:
    """Every (rule, method) the app serves, static files left out, in path order."""
    out = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        if _is_static(rule):
            continue
        for method in METHODS:
            if method in (rule.methods or ()):
                out.append((rule, method))
    return out


def _is_static(rule: Rule) -> bool:
    """Flask's static file routes (the app's and each blueprint's ``static`` endpoint)."""
    return rule.endpoint == "static" or rule.endpoint.endswith(".static")


def openapi_path(rule: Rule) -> str:
    return _PARAM.sub(lambda m: "{" + m.group("name") + "}", rule.rule)


def undescribed(app: Flask) -> list[str]:
    """``METHOD /path (endpoint)`` of each route with no summary (no docstring, no table line)."""
    tables: dict[str, dict] = {}
    return [f"{method} {rule.rule} ({rule.endpoint})" for rule, method in api_rules(app)
            if not summary_of(app, rule, method, tables)[0]]


class _Schemas:
    """components.schemas, filled from the models operations refer to."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def ref(self, model: type[BaseModel]) -> dict:
        name = model.__name__
        if name not in self.schemas:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for inner, definition in schema.pop("$defs", {}).items():
                self.schemas.setdefault(inner, definition)
            self.schemas[name] = schema
        return {"$ref": f"#/components/schemas/{name}"}


def _path_parameters(rule: Rule) -> list[dict]:
    params = []
    for found in _PARAM.finditer(rule.rule):
        kind = {"int": "integer", "float": "number"}.get(found.group("converter") or "", "string")
        params.append({"name": found.group("name"), "in": "path", "required": True, "schema": {"type": kind}})
    return params


def _query_parameters(model: type[BaseModel]) -> list[dict]:
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    return [{"name": name, "in": "query", "required": name in required, "schema": prop}
            for name, prop in schema.get("properties", {}).items()]


def _media_type(rule: Rule, how: Described) -> str:
    if how.answers:
        return how.answers
    return "application/json" if rule.rule.startswith(("/api/", "/v1/")) else "text/html"


def build_document(app: Flask) -> dict:
    """The OpenAPI 3.1 document of ``app``."""
    known = route_models()
    schemas = _Schemas()
    tables: dict[str, dict] = {}
    paths: dict[str, dict] = {}
    for rule, method in api_rules(app):
        view = app.view_functions[rule.endpoint]
        how: Described = getattr(view, "zishu_described", None) or known.get(rule.endpoint) or Described()
        summary, description = summary_of(app, rule, method, tables)
        status = how.status or int((_STATUS.search(description) or [None, 200])[1] or 200)
        several = len([m for m in METHODS if m in (rule.methods or ())]) > 1
        operation: dict[str, Any] = {
            "operationId": f"{rule.endpoint}_{method.lower()}" if several else rule.endpoint,
            "summary": summary, "tags": [rule.endpoint.split(".")[0] if "." in rule.endpoint else "app"],
            "parameters": _path_parameters(rule) + (_query_parameters(how.query) if how.query else []),
            "responses": {str(status): {"description": summary or "done",
                                        "content": {_media_type(rule, how): {}}},
                          "4XX": {"$ref": "#/components/responses/Error"},
                          "5XX": {"$ref": "#/components/responses/Error"}},
            **how.extra,
        }
        if description:
            operation["description"] = description
        if how.body is not None:
            operation["requestBody"] = {"required": True,
                                        "content": {"application/json": {"schema": schemas.ref(how.body)}}}
        elif how.form is not None:
            form = {"allOf": [schemas.ref(how.form), {"type": "object", "required": list(how.files), "properties": {
                name: {"type": "string", "contentMediaType": "application/octet-stream"} for name in how.files}}]}
            operation["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": form}}}
        elif method in ("POST", "PUT", "PATCH"):
            operation["requestBody"] = {"required": False,
                                        "content": {"application/json": {"schema": {"type": "object"}}}}
        paths.setdefault(openapi_path(rule), {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Zishu", "version": __version__,
                 "description": "Zishu's local API: the app's own JSON API under /api, the OpenAI-compatible /v1, "
                                "MCP at /mcp. Send the launch secret (X-Zishu-Token or Authorization: Bearer), "
                                "or on the local API port the API key (Authorization: Bearer)."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"launchSecret": []}],
        "paths": paths,
        "components": {
            "schemas": {**schemas.schemas, "Error": _ERROR},
            "responses": {"Error": {"description": "the error, its code and message", "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "the API key (local API port) or the launch secret (the app's port)"},
                "launchSecret": {"type": "apiKey", "in": "header", "name": "X-Zishu-Token"}},
        },
    }


_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["code", "message"],
    "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                   "type": {"type": "string", "description": "/v1 only (OpenAI's shape)"},
                   "param": {"type": ["string", "null"], "description": "/v1 only: the field at fault"},
                   "install": {"type": "string", "description": "a catalog id whose install would cure it"}}}}}


def markdown(document: dict) -> str:
    """docs/api.md: every endpoint of ``document``, grouped by its first path segment."""
    lines = ["# Zishu's HTTP API", "",
             "Every endpoint the app serves, generated from the app's routes by `scripts/api_docs.py` "
             "(`tests/test_openapi.py` fails when this page and the routes differ). The machine-readable "
             "document, with each request's schema, is `GET /api/openapi.json` (OpenAPI 3.1). "
             "Authentication: docs/architecture.md, \"Local secret\" and \"The local API listener\"; "
             "MCP: docs/mcp.md; the OpenAI-compatible API: docs/openai-api.md.", ""]
    groups: dict[str, list[tuple[str, str, dict]]] = {}
    for path, operations in document["paths"].items():
        head = "/" + path.strip("/").split("/")[0] if path != "/" else "/"
        if head == "/api":
            head = "/api/" + (path.split("/")[2] if path.count("/") >= 2 else "")
        for method, operation in operations.items():
            groups.setdefault(head, []).append((method.upper(), path, operation))
    for head in sorted(groups):
        lines += [f"## `{head}`", "", "| method | path | what it does | body |", "|---|---|---|---|"]
        for method, path, operation in groups[head]:
            body: dict[str, Any] = operation.get("requestBody", {}).get("content", {})
            first: dict[str, Any] = next(iter(body.values()), {})
            schema: dict[str, Any] = first.get("schema", {})
            ref = schema.get("$ref") or next((s.get("$ref") for s in schema.get("allOf", []) if "$ref" in s), None)
            shown = f"`{ref.rsplit('/', 1)[1]}`" if ref else ("JSON" if body else "")
            text = operation["summary"].replace("|", "\\|")
            lines.append(f"| {method} | `{path}` | {text} | {shown} |")
        lines.append("")
    return "\n".join(lines)
