"""MCP over streamable HTTP at ``/mcp``: the official SDK's ``StreamableHTTPSessionManager`` run
inside the Flask app, on the same listeners and behind the same guard as every other route.

    POST   /mcp     a JSON-RPC message (the answer: JSON, or an event stream carrying progress
                    notifications and then the result)
    GET    /mcp     the session's stream of messages the server starts (an event stream)
    DELETE /mcp     ends the session (``Mcp-Session-Id``)

Why a bridge and not a second server: the SDK's transport is ASGI and the app is WSGI (cheroot).
Serving /mcp from uvicorn would need its own port, its own copy of the key, Host, Origin and CORS
checks, and its own shutdown; mounted here, /mcp on the local API port is checked by
``web/security.py`` (``Authorization: Bearer <API key>``, the allowed origins) exactly like /v1,
and on the window's port by the launch secret. The bridge is small: one event loop on a thread
(``anyio``'s blocking portal) runs the session manager; each request is handed to it as an ASGI
call, with the body Flask already read (and limited), and what the SDK sends comes back through a
queue as the Flask response, streamed as it is sent. A stream the SDK keeps open (GET, or a long
tool call) is written a comment line (``: keep-alive``) every ``streams.KEEP_ALIVE`` seconds of silence,
so a client that went away is noticed and its worker thread freed; the GET stream also holds one
of the app's event-stream slots (``streams.py``).

The MCP server (tools and resources) is ``mcp_tools.build_server`` for this app's runtime and
companions, made on the first request; ``close_mcp(app)`` ends the sessions when the server stops.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from typing import Any

import anyio
from anyio.from_thread import BlockingPortal
from flask import Blueprint, Flask, Response, current_app, request
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings

from zishu.companion.openai_media import MAX_AUDIO_BYTES

from .app import runtime
from .companion import companion_sessions
from .streams import KEEP_ALIVE, stream_slots
from .studio import MAX_REQUEST_BYTES as STUDIO_REQUEST_BYTES

mcp_http = Blueprint("mcp_http", __name__)

# a JSON-RPC message: a transcribe call carries its audio as base64, generate_image its pictures as data URLs
MAX_BODY = max(MAX_AUDIO_BYTES * 4 // 3 + 2**20, STUDIO_REQUEST_BYTES)
_DONE = object()
_lock = threading.Lock()


class McpBridge:
    """The SDK's session manager on an event loop of its own, answering WSGI requests."""

    def __init__(self, manager: StreamableHTTPSessionManager) -> None:
        self.manager = manager
        self._ready = threading.Event()
        self._failed: list[BaseException] = []
        self.portal: BlockingPortal | None = None
        # a daemon thread: an app that is never closed (a test client) does not hold the process open
        self._thread = threading.Thread(target=anyio.run, args=(self._serve,), name="zishu-mcp", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._failed:
            raise self._failed[0]

    async def _serve(self) -> None:
        try:
            async with BlockingPortal() as portal, self.manager.run():
                self.portal = portal
                self._ready.set()
                await portal.sleep_until_stopped()
        except BaseException as e:
            self._failed.append(e)
            raise
        finally:
            self._ready.set()

    def close(self) -> None:
        """End every session and stop the loop."""
        if self.portal is not None:
            with contextlib.suppress(RuntimeError):  # already stopped
                self.portal.call(self.portal.stop, True)
        self._thread.join(timeout=10)

    def answer(self, environ: dict, body: bytes) -> Response:
        """The SDK's answer to this request, as a Flask response that streams what it sends."""
        portal = self.portal
        assert portal is not None
        sent: queue.Queue[Any] = queue.Queue()
        gone = portal.call(anyio.Event)
        given = False

        async def receive() -> Any:
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: Any) -> None:
            sent.put(message)

        scope = _scope(environ)

        async def handle() -> None:
            await self.manager.handle_request(scope, receive, send)

        call = portal.start_task_soon(handle)
        call.add_done_callback(lambda _: sent.put(_DONE))
        start = sent.get()
        if start is _DONE:
            call.result()  # raises what the SDK raised (the app's error handler answers 500)
            raise RuntimeError("the MCP transport ended without answering")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", [])]
        streaming = any(k.lower() == "content-type" and v.startswith("text/event-stream") for k, v in headers)

        def chunks() -> Iterator[bytes]:
            while True:
                try:
                    message = sent.get(timeout=KEEP_ALIVE)
                except queue.Empty:
                    if streaming:
                        yield b": keep-alive\n\n"
                    continue
                if message is _DONE:
                    return
                if message.get("body"):
                    yield message["body"]
                if not message.get("more_body"):
                    return

        def disconnected() -> None:
            """The response is over (sent, or the client went away, or never read: HEAD): tell the SDK."""
            with contextlib.suppress(RuntimeError):  # the loop already stopped
                portal.call(gone.set)

        # (not direct_passthrough: werkzeug then hands the generator to the server bare, and the
        # response's call_on_close functions, the stream slot's among them, would never run)
        response = Response(chunks(), status=start["status"], headers=headers)
        response.call_on_close(disconnected)
        if streaming:
            response.headers["X-Accel-Buffering"] = "no"
        return response


def _scope(environ: dict) -> dict:
    """The ASGI scope of a WSGI request."""
    headers = [(k[5:].replace("_", "-").lower().encode("latin-1"), str(v).encode("latin-1"))
               for k, v in environ.items() if k.startswith("HTTP_")]
    for key, name in (("CONTENT_TYPE", b"content-type"), ("CONTENT_LENGTH", b"content-length")):
        if environ.get(key):
            headers.append((name, str(environ[key]).encode("latin-1")))
    port = int(environ.get("SERVER_PORT") or 0)
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
            "method": environ["REQUEST_METHOD"], "scheme": environ.get("wsgi.url_scheme", "http"),
            "path": environ.get("PATH_INFO", "/mcp"), "raw_path": environ.get("PATH_INFO", "/mcp").encode("latin-1"),
            "query_string": environ.get("QUERY_STRING", "").encode("latin-1"), "root_path": "",
            "headers": headers, "client": (environ.get("REMOTE_ADDR", ""), int(environ.get("REMOTE_PORT") or 0)),
            "server": (environ.get("SERVER_NAME", ""), port), "state": {}}


def mcp_bridge(app: Flask | None = None) -> McpBridge:
    """This app's bridge, made (with its MCP server) on first use."""
    from .mcp_tools import build_server

    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    with _lock:
        found = app.extensions.get("zishu_mcp")
        if found is None:
            server = build_server(runtime(), companion_sessions(), local_files=False)
            # Host, Origin and the key are checked by web/security.py before the request gets here
            server.streamable_http_app(max_request_body_size=MAX_BODY, transport_security=TransportSecuritySettings(
                enable_dns_rebinding_protection=False))
            found = app.extensions["zishu_mcp"] = McpBridge(server.session_manager)
        return found


def close_mcp(app: Flask) -> None:
    """End the app's MCP sessions (when its server stops)."""
    with _lock:
        found = app.extensions.pop("zishu_mcp", None)
    if found is not None:
        found.close()


@mcp_http.route("/mcp", methods=["GET", "POST", "DELETE"])
def mcp() -> Any:
    """The MCP endpoint (streamable HTTP); see docs/mcp.md."""
    request.max_content_length = MAX_BODY
    body = request.get_data(cache=False) if request.method == "POST" else b""
    bridge = mcp_bridge()
    if request.method != "GET":
        return bridge.answer(request.environ, body)
    slots = stream_slots()
    slots.take()
    try:
        response = bridge.answer(request.environ, body)
    except BaseException:
        slots.give_back()
        raise
    response.call_on_close(slots.give_back)
    return response
