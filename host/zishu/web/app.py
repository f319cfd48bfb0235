"""The Flask app factory: the guard, the blueprints every plugin registers, errors as JSON
(a ZishuError answers with its class's ``code`` and ``http_status``).

Panels (the built-in ones included) come from the ``register_routes`` hook; ``nav`` entries
become the app's navigation in registration order. A blueprint that fails to register is
recorded against its plugin and the app starts without it.
"""

from __future__ import annotations

import logging
import secrets

from flask import Blueprint, Flask, jsonify, render_template, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException

from zishu import __version__, plugins
from zishu.errors import ZishuError
from zishu.runtime import Runtime

from .security import protect

log = logging.getLogger(__name__)


class _TextAsItself(DefaultJSONProvider):
    """Flask's JSON, with Chinese and other non-ASCII text written as itself rather than as \\u escapes."""

    ensure_ascii = False


def create_app(runtime: Runtime, secret: str | None = None, host: str | None = None) -> Flask:
    """``host``: this launch's own ``*.localhost`` name, where the window's cookie lives (one is made up
    when not given; see zishu.web.security)."""
    app = Flask(__name__)
    app.config["ZISHU_RUNTIME"] = runtime
    app.json = _TextAsItself(app)
    protect(app, secret or secrets.token_urlsafe(32), host=host)
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
            return jsonify(error={"code": e.code, "message": str(e)}), status
        return render_template("error.html", code=e.code, message=str(e), status=status), status

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException):
        code = (e.name or "error").upper().replace(" ", "_")
        if _wants_json():
            return jsonify(error={"code": code, "message": e.description}), e.code
        return render_template("error.html", code=code, message=e.description, status=e.code), e.code

    @app.errorhandler(Exception)
    def _unexpected(e: Exception):
        log.error("unexpected error on %s %s", request.method, request.path, exc_info=e)
        message, code, status = f"{type(e).__name__}: {e}", ZishuError.code, ZishuError.http_status
        if _wants_json():
            return jsonify(error={"code": code, "message": message}), status
        return render_template("error.html", code=code, message=message, status=status), status

    return app


def _wants_json() -> bool:
    return request.path.startswith(("/api/", "/v1/")) or request.accept_mimetypes.best == "application/json"


def runtime() -> Runtime:
    from flask import current_app

    return current_app.config["ZISHU_RUNTIME"]
