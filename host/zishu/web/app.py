"""The Flask app factory: the guard, the blueprints every plugin registers, errors as JSON
(a ZishuError answers with its class's ``code`` and ``http_status``).

Bad input never reaches a view as a crash: JSON bodies are strict (no NaN or Infinity, no lone
surrogate, at most ``MAX_JSON_DEPTH`` deep, else 400), and a chunked body longer than the
request's limit is a 413 rather than being cut at the limit (``_WholeBodyOrNothing``). An
unexpected exception answers 500 with its type only; its text and traceback go to the log.

Panels (the built-in ones included) come from the ``register_routes`` hook; ``nav`` entries
become the app's navigation in registration order. A blueprint that fails to register is
recorded against its plugin and the app starts without it.
"""

from __future__ import annotations

import json
import logging
import math
import re
import secrets
from typing import IO, Any, cast

from flask import Blueprint, Flask, Request, jsonify, render_template, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.utils import cached_property
from werkzeug.wsgi import LimitedStream, get_input_stream

from zishu import __version__, plugins
from zishu.errors import ZishuError
from zishu.runtime import Runtime

from .security import ApiAccess, protect

log = logging.getLogger(__name__)


MAX_JSON_DEPTH = 64  # arrays and objects inside each other in one request body
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class _TextAsItself(DefaultJSONProvider):
    """Flask's JSON, with Chinese and other non-ASCII text written as itself rather than as \\u escapes;
    reading is strict (``strict_json``)."""

    ensure_ascii = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return strict_json(s)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is too large a number")
    return value


def strict_json(text: str | bytes) -> Any:
    """``text`` parsed as JSON; ValueError (with the reason) for NaN/Infinity, numbers too large
    for a float, lone surrogates (they cannot be written as UTF-8), or nesting past MAX_JSON_DEPTH."""
    try:
        data = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise ValueError(f"nested more than {MAX_JSON_DEPTH} deep") from None
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if LONE_SURROGATE.search(value):
                raise ValueError("a string holds a lone surrogate (\\ud800-\\udfff), which is not text")
        elif isinstance(value, (dict, list)):
            if depth >= MAX_JSON_DEPTH:
                raise ValueError(f"nested more than {MAX_JSON_DEPTH} deep")
            items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items)
    return data


class _WholeBodyOrNothing(LimitedStream):
    """A chunked body (no Content-Length) read up to ``most`` bytes: one byte more is a 413.
    werkzeug's own limit stops reading at the limit and hands the view the cut body."""

    def __init__(self, stream: IO[bytes], most: int) -> None:
        super().__init__(stream, most + 1, is_max=True)
        self.most = most

    def readinto(self, b: Any) -> int | None:
        size = super().readinto(b)
        if self._pos > self.most:
            raise RequestEntityTooLarge(f"the request body is more than {self.most} bytes")
        return size


class _BoundedRequest(Request):
    """Flask's request, whose body stream refuses a chunked body past the limit (413)."""

    @cached_property
    def stream(self) -> IO[bytes]:
        most = self.max_content_length
        if self.content_length is None and most is not None and self.environ.get("wsgi.input_terminated"):
            return cast(IO[bytes], _WholeBodyOrNothing(self.environ["wsgi.input"], most))
        return get_input_stream(self.environ, max_content_length=most)


def create_app(runtime: Runtime, secret: str | None = None, host: str | None = None,
               api: ApiAccess | None = None) -> Flask:
    """``host``: this launch's own ``*.localhost`` name, where the window's cookie lives (one is made up
    when not given; see zishu.web.security). ``api``: the key and origins of the local API listener."""
    app = Flask(__name__)
    app.request_class = _BoundedRequest
    app.config["ZISHU_RUNTIME"] = runtime
    app.json = _TextAsItself(app)
    protect(app, secret or secrets.token_urlsafe(32), host=host, api=api)
    links: list[tuple[str, str]] = []

    def register(blueprint: Blueprint, nav=None) -> None:
        """``nav``: ("Label", "/path"), or a list of them, for links in the app's navigation."""
        app.register_blueprint(blueprint)
        entries = [nav] if nav and isinstance(nav[0], str) else list(nav or [])
        links.extend((str(label), str(href)) for label, href in entries)

    plugins.call_each("register_routes", register=register)
    app.config["ZISHU_NAV"] = links

    @app.context_processor
    def _globals():
        return {"nav": links, "version": __version__, "plugin_errors": dict(plugins.errors)}

    @app.errorhandler(ZishuError)
    def _zishu_error(e: ZishuError):
        status = e.http_status  # each class in zishu.errors carries its own
        if _wants_json():
            error = {"code": e.code, "message": str(e)}
            if e.install:  # what to install to make this request work (the page's Install button)
                error["install"] = e.install
            return jsonify(error=error), status
        return render_template("error.html", code=e.code, message=str(e), status=status), status

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException):
        code = (e.name or "error").upper().replace(" ", "_")
        message = e.description
        if isinstance(e, RequestEntityTooLarge) and message == RequestEntityTooLarge.description:
            message = f"the request body is more than {request.max_content_length} bytes, the limit for this request"
        if _wants_json():
            return jsonify(error={"code": code, "message": message}), e.code
        return render_template("error.html", code=code, message=message, status=e.code), e.code

    @app.errorhandler(Exception)
    def _unexpected(e: Exception):
        log.error("unexpected error on %s %s", request.method, request.path, exc_info=e)
        message = f"unexpected {type(e).__name__} (a bug in Zishu); the details are in its log"
        code, status = ZishuError.code, ZishuError.http_status
        if _wants_json():
            return jsonify(error={"code": code, "message": message}), status
        return render_template("error.html", code=code, message=message, status=status), status

    return app


def _wants_json() -> bool:
    tool = request.path.startswith(("/api/", "/v1/", "/sdapi/", "/mcp"))
    return tool or request.accept_mimetypes.best == "application/json"


def runtime() -> Runtime:
    from flask import current_app

    return current_app.config["ZISHU_RUNTIME"]
