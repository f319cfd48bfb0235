"""The local server's guard: every request must carry the per-launch secret and come from here.

Checks, in order, each answering 403 with a JSON body that says which one failed:

1. the Host header names this machine (127.0.0.1, localhost, [::1], or this launch's own
   ``zishu-<random>.localhost`` name): a page on another site that rebinds its DNS name to
   127.0.0.1 still sends its own name, so it is refused;
2. a browser request the browser itself marks as coming from another site or another port
   (``Sec-Fetch-Site: cross-site`` or ``same-site``, a header no page can set) is refused whatever
   it carries: another page's ``<img>``, ``<script>``, form or fetch never reaches a route;
3. the secret: the ``zishu_token`` cookie, or an ``X-Zishu-Token`` / ``Authorization: Bearer``
   header for API clients. The cookie (HttpOnly, SameSite=Strict) lives only on the launch's own
   host name, never on 127.0.0.1: cookies ignore ports, so a cookie for 127.0.0.1 would be sent to
   every other server on 127.0.0.1 the browser visits. ``/?token=SECRET`` on 127.0.0.1 (the URL
   ``zishu serve`` prints) hops to the same path on the launch's name, which sets the cookie and
   drops the secret from the URL (docs/architecture.md, "Local secret");
4. state-changing requests (POST, PUT, PATCH, DELETE) must carry an Origin equal to this server's,
   or, without an Origin, authenticate by header: a browser always sends Origin with a cross-site
   POST, so another site's form can never act with the user's cookie.

Request bodies are limited by Flask's ``MAX_CONTENT_LENGTH`` (413 above it).

The local API listener (Settings, "Local API": a fixed port for other tools, ``server.py``) runs
the same app with ``API_LISTENER`` set in each request's environ, and checks instead
(``check_tool_request``):

1. the Host header, as above;
2. the path is one meant for tools (``TOOL_PATHS``: /v1, /sdapi, /mcp, /api/openapi.json,
   /api/health, /metrics), else 404: the app's pages and its own /api never answer on that port;
3. a request with an Origin (a browser tool such as SillyTavern) comes from one of the allowed
   origins, else 403 with no CORS headers; a CORS preflight (OPTIONS) from an allowed origin is
   answered 204 with the CORS headers, before the key is asked for (browsers send none on it);
4. ``Authorization: Bearer <API key>`` (``zishu.api_key``), else 401. Nothing else is accepted
   there: not the window's secret, not its cookie, not ``X-Zishu-Token``. On ``/sdapi`` alone, HTTP
   Basic auth with the key as its password counts too (``_basic_password``): AUTOMATIC1111 clients
   such as SillyTavern send only that. The app's own port takes its secret the same way there.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlencode

from flask import Flask, Response, current_app, jsonify, redirect, request
from werkzeug.wrappers import Response as BaseResponse  # what redirect() makes; flask's Response extends it

COOKIE = "zishu_token"
HEADER = "X-Zishu-Token"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
FOREIGN_SITES = {"cross-site", "same-site"}  # Sec-Fetch-Site values of requests another page made
API_LISTENER = "zishu.api_listener"  # environ key the local API listener sets on its requests
TOOL_PATHS = ("/v1/", "/sdapi/", "/mcp/", "/api/openapi.json", "/api/health", "/metrics")
BASIC_AUTH_PATHS = ("/sdapi/",)  # A1111 clients send HTTP Basic auth; the key (or secret) is its password
CORS_HEADERS = "Authorization, Content-Type, Accept, Mcp-Session-Id, Mcp-Protocol-Version, Last-Event-ID"
CORS_EXPOSED = "Mcp-Session-Id, X-Zishu-Note"


@dataclass
class ApiAccess:
    """What the local API listener accepts: its key (replaced on rotation) and the allowed origins."""

    key: str
    origins: set[str] = field(default_factory=set)

    def allows(self, origin: str | None) -> bool:
        return origin is not None and origin.lower().rstrip("/") in {o.lower() for o in self.origins}


def launch_host() -> str:
    """A new per-launch host name for the window: ``zishu-<64 random bits>.localhost``.

    Browsers resolve every ``*.localhost`` name to the loopback address themselves (RFC 6761), and
    a host-only cookie set on it is sent to that name only: no other server on 127.0.0.1 receives
    it, and no other server can be reached under that name without knowing it.
    """
    return f"zishu-{secrets.token_hex(8)}.localhost"


def _host_name(host: str) -> str:
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _forbidden(code: str, message: str) -> Response:
    response = jsonify(error={"code": code, "message": message})
    response.status_code = 403
    return response


def _same(a: str | None, b: str) -> bool:
    return a is not None and hmac.compare_digest(a.encode(), b.encode())


def _basic_password() -> str | None:
    """On ``/sdapi`` only: the password of HTTP Basic auth (``Authorization: Basic base64(user:pw)``),
    which is how AUTOMATIC1111 clients authenticate (SillyTavern sends its "auth" field so); the user
    name is not checked. None on other paths, or without Basic auth."""
    header = request.headers.get("Authorization", "")
    if not request.path.startswith(BASIC_AUTH_PATHS) or not header.startswith("Basic "):
        return None
    try:
        decoded = base64.b64decode(header.removeprefix("Basic ").strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    password = decoded.partition(":")[2]
    return password or None


def is_tool_path(path: str) -> bool:
    return path.startswith(TOOL_PATHS) or path == "/mcp"


def check_tool_request() -> BaseResponse | None:
    """The local API listener's checks (see the module docstring)."""
    host = _host_name(request.host.lower())
    if host not in LOCAL_HOSTS:
        return _forbidden("FORBIDDEN_HOST", f"Host {request.host!r} is not this machine; use http://127.0.0.1")
    if not is_tool_path(request.path):
        response = jsonify(error={"code": "NOT_FOUND", "message": f"{request.path} is not on the local API port, "
                                  "which serves /v1, /sdapi, /mcp, /metrics and /api/openapi.json; the app is on its "
                                  "own port"})
        response.status_code = 404
        return response
    access: ApiAccess = current_app.config["ZISHU_API"]
    origin = request.headers.get("Origin")
    if origin is not None and not access.allows(origin):
        return _forbidden("FORBIDDEN_ORIGIN", f"origin {origin!r} is not allowed: add it under Settings, Local API, "
                          "Allowed origins")
    if request.method == "OPTIONS" and origin is not None and "Access-Control-Request-Method" in request.headers:
        return Response(status=204)  # the preflight: add_headers gives it the CORS headers
    bearer = request.headers.get("Authorization", "")
    key = bearer.removeprefix("Bearer ").strip() if bearer.startswith("Bearer ") else _basic_password()
    if not _same(key, access.key):
        what = "a wrong API key" if key else "no API key"
        response = jsonify(error={"code": "INVALID_API_KEY", "type": "authentication_error", "param": None,
                                  "message": f"request with {what}: send Authorization: Bearer <key>, the key "
                                  "shown in Zishu's Settings, Local API"})
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="zishu"'
        return response
    return None


def _cors(response: Response) -> None:
    """CORS headers for an allowed origin on the local API listener; none for any other."""
    access: ApiAccess | None = current_app.config.get("ZISHU_API")
    origin = request.headers.get("Origin")
    response.vary.add("Origin")
    if access is None or not access.allows(origin):
        return
    response.headers["Access-Control-Allow-Origin"] = origin or ""
    response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSED
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
        response.headers["Access-Control-Max-Age"] = "600"


def check_request() -> BaseResponse | None:
    if request.environ.get(API_LISTENER):
        return check_tool_request()
    secret = current_app.config["ZISHU_SECRET"]
    own_host = current_app.config["ZISHU_HOST"]
    host = _host_name(request.host.lower())
    if host not in LOCAL_HOSTS and host != own_host:
        return _forbidden("FORBIDDEN_HOST", f"Host {request.host!r} is not this machine; use http://127.0.0.1")
    site = request.headers.get("Sec-Fetch-Site")
    if site in FOREIGN_SITES:
        return _forbidden("FORBIDDEN_ORIGIN", f"a request another page made ({site}); Zishu answers only its own pages")
    bearer = request.headers.get("Authorization", "").removeprefix("Bearer ").strip() or None
    by_header = (_same(request.headers.get(HEADER), secret) or _same(bearer, secret)
                 or _same(_basic_password(), secret))
    by_cookie = _same(request.cookies.get(COOKIE), secret)
    if not (by_header or by_cookie):
        token = request.args.get("token")
        if request.method == "GET" and _same(token, secret):
            if host != own_host:
                return _hop_to_own_host(own_host)
            return _set_cookie_and_clean_url(secret)
        offered = token or request.cookies.get(COOKIE) or request.headers.get(HEADER) or bearer
        what = "a wrong secret" if offered else "no secret"
        return _forbidden("FORBIDDEN_SECRET", f"request with {what}: open Zishu from its window, or use the URL "
                          "that `zishu serve` printed (it carries the secret)")
    if request.method in UNSAFE:
        origin = request.headers.get("Origin")
        if origin is None and not by_header:
            return _forbidden("FORBIDDEN_ORIGIN", f"{request.method} without an Origin header")
        if origin is not None and origin != f"{request.scheme}://{request.host}":
            return _forbidden("FORBIDDEN_ORIGIN", f"{request.method} from origin {origin!r}")
    return None


def _hop_to_own_host(own_host: str) -> BaseResponse:
    """The login URL on 127.0.0.1: the same URL (secret included) on the launch's own host name,
    where the cookie can be set without reaching other servers on 127.0.0.1."""
    port = request.host.rsplit(":", 1)[1] if request.host.count(":") == 1 or "]:" in request.host else ""
    return redirect(f"http://{own_host}{':' + port if port else ''}{request.full_path}", code=303)


def _set_cookie_and_clean_url(secret: str) -> BaseResponse:
    rest = {k: v for k, v in request.args.items(multi=True) if k != "token"}
    target = request.path + ("?" + urlencode(rest) if rest else "")
    response = redirect(target, code=303)
    response.set_cookie(COOKIE, secret, httponly=True, samesite="Strict", path="/")
    return response


def add_headers(response: Response) -> Response:
    if request.environ.get(API_LISTENER):
        _cors(response)
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data: blob: https: http://127.0.0.1:* http://localhost:*; "
        "media-src 'self' blob: data:; connect-src 'self'; style-src 'self'; script-src 'self' 'wasm-unsafe-eval'; "
        "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def protect(app: Flask, secret: str, max_body: int = 1024 * 1024, host: str | None = None,
            api: ApiAccess | None = None) -> None:
    """``api``: what the local API listener accepts (None: nothing, it does not run)."""
    app.config["ZISHU_SECRET"] = secret
    app.config["ZISHU_API"] = api or ApiAccess(key=secrets.token_urlsafe(32))
    app.config["ZISHU_HOST"] = host or launch_host()
    app.config["MAX_CONTENT_LENGTH"] = max_body
    app.before_request(check_request)
    app.after_request(add_headers)
