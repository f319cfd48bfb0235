"""Serving the app: cheroot's multi-threaded WSGI server on 127.0.0.1 and a free port.

cheroot streams what a view yields as it is yielded (the live job stream needs that) and is a
production server, not Flask's development one. ``start_app`` is what ``zishu app``, ``zishu
serve`` and the tests call: the runtime, start-up recovery of jobs, the in-app consumer, the
server; ``serve_until_stopped`` is what ``zishu serve`` (and ``zishu app`` without a window) then
waits in.

API clients use ``url`` (127.0.0.1); browsers end up on ``browser_url``, this launch's own
``zishu-<random>.localhost`` name, where their cookie is bound (zishu.web.security). Browsers may
resolve that name to [::1] before 127.0.0.1, so the server listens on the same port of [::1] too
(where the machine has IPv6): no other program can take that address and receive the window's
requests. While it runs, ``ZISHU_HOME/app.json`` (readable by the user only) tells ``zishu open``
where to find it, and ``show_in_window`` asks its window to show a page.

The local API (Settings, "Local API", off until the user turns it on) is a second listener of the
same app on a fixed port (and [::1] at that port): ``zishu.web.security`` lets that listener serve
only the routes meant for tools, behind the API key and the allowed origins, while the window's
listener keeps its per-launch port, secret and cookie. One app, so /v1 and /mcp on the fixed port
share the window's companions, model cache and jobs; two listeners, so the window's port never
accepts the key and the key's port never serves the window's pages or its cookie.

Holding load (every client is local, so the limits are sized for one user's windows and tools,
not for the internet):

- the listen backlog is ``BACKLOG`` (1024; the kernel caps it at ``net.core.somaxconn``), not
  cheroot's 5, so a burst of a few hundred connections waits to be accepted instead of being reset;
- a connection that has not sent anything waits in cheroot's selector, not on a worker thread, and
  is closed after ``IDLE_TIMEOUT`` seconds, like an idle keep-alive one; once its first bytes
  arrive, each read of the request line and headers may wait at most ``HEADERS_TIMEOUT`` seconds
  (then 408 and close). The body and the response are read and written with ``IDLE_TIMEOUT``;
- event streams are capped below the worker count (``streams.py`` says why), so ``threads -
  STREAM_LIMIT`` workers are always left for requests.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import secrets
import signal
import threading
from pathlib import Path

import click
from cheroot import server as cheroot_server
from cheroot import wsgi

from zishu.files import write_atomic
from zishu.runtime import Runtime

from .app import create_app
from .mcp_http import close_mcp
from .security import API_LISTENER, ApiAccess, launch_host
from .streams import STREAM_LIMIT

log = logging.getLogger(__name__)

RUNTIME_FILE = "app.json"
BACKLOG = 1024  # connections the kernel queues before the server accepts them
IDLE_TIMEOUT = 5  # seconds: a connection with nothing to say is closed; the socket timeout after the headers
HEADERS_TIMEOUT = 2  # seconds each read of a request's line and headers may wait
THREADS = 2 * STREAM_LIMIT  # worker threads: half of them never hold an event stream


class _Request(cheroot_server.HTTPRequest):
    """cheroot's request, reading its request line and headers with the short ``HEADERS_TIMEOUT``."""

    def parse_request(self) -> None:
        sock = self.conn.socket
        sock.settimeout(self.server.headers_timeout)
        try:
            super().parse_request()
        finally:
            sock.settimeout(self.server.timeout)


class _Connection(cheroot_server.HTTPConnection):
    RequestHandlerClass = _Request


class _Server(wsgi.Server):
    """cheroot's WSGI server, except that a new connection waits in the selector (as an idle
    keep-alive one does) until it sends something, instead of holding a worker thread while it
    says nothing."""

    ConnectionClass = _Connection
    headers_timeout = HEADERS_TIMEOUT

    def process_conn(self, conn: cheroot_server.HTTPConnection) -> None:
        if conn.last_used is None and self.ready:  # just accepted: wait until it has bytes to read
            self.put_conn(conn)
        else:
            super().process_conn(conn)


class AppServer:
    def __init__(self, runtime: Runtime, *, port: int = 0, secret: str | None = None, threads: int = THREADS,
                 idle_timeout: int = IDLE_TIMEOUT, headers_timeout: int = HEADERS_TIMEOUT,
                 stream_limit: int | None = None, api: ApiAccess | None = None, api_port: int | None = None) -> None:
        """``api`` and ``api_port``: run the local API listener on that fixed port with that key and origins."""
        self.runtime = runtime
        self.secret = secret or secrets.token_urlsafe(32)
        self.host = launch_host()
        self.app = create_app(runtime, self.secret, self.host, api=api)
        self.api_port = api_port if api is not None else None
        self.api_servers: list[_Server] = []
        self.api_error: str | None = None
        self.app.config["ZISHU_STREAM_LIMIT"] = stream_limit or max(1, min(STREAM_LIMIT, threads // 2))
        self._numthreads, self._idle_timeout, self._headers_timeout = threads, idle_timeout, headers_timeout
        self.server = self._listener("127.0.0.1", port)
        self.ipv6: _Server | None = None
        self.port = port
        self._threads: list[threading.Thread] = []

    def _listener(self, address: str, port: int, *, tools: bool = False) -> _Server:
        """One listening socket of the app (127.0.0.1, and [::1] at the same port), each with its own
        workers, the long backlog and the short idle and header timeouts. ``tools``: the local API's."""
        app = _marked_as_api(self.app) if tools else self.app
        server = _Server((address, port), app, numthreads=self._numthreads, server_name="zishu",
                         shutdown_timeout=2, request_queue_size=BACKLOG, timeout=self._idle_timeout)
        server.headers_timeout = self._headers_timeout
        server.keep_alive_conn_limit = BACKLOG  # (not 10: new connections wait there too, until idle_timeout)
        return server

    @property
    def url(self) -> str:
        """The address API clients use (the secret goes in a header)."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def browser_url(self) -> str:
        """Where the window and browsers show the app: this launch's own name, which carries the cookie."""
        return f"http://{self.host}:{self.port}/"

    def url_with_secret(self, path: str = "/") -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.url.rstrip('/')}{path}{sep}token={self.secret}"

    def start(self) -> AppServer:
        fixed = self.port != 0
        for _ in range(20):
            self.server.prepare()  # binds now, so the port is known before anything connects
            self.port = self.server.bind_addr[1]
            if self._hold_ipv6() or fixed:
                break
            self.server.stop()  # [::1] of this port is someone else's: take another port
            self.server = self._listener("127.0.0.1", 0)
        self._start_api()
        self.app.config["ZISHU_API_URL"], self.app.config["ZISHU_API_ERROR"] = self.api_url, self.api_error
        named = [("zishu-server", self.server), ("zishu-server-ipv6", self.ipv6),
                 *((f"zishu-api-{i}", s) for i, s in enumerate(self.api_servers))]
        for name, server in named:
            if server is not None:
                thread = threading.Thread(target=server.serve, name=name, daemon=True)
                thread.start()
                self._threads.append(thread)
        write_atomic(self.runtime.home / RUNTIME_FILE,
                     json.dumps({"url": self.url, "pid": os.getpid(), "secret": self.secret,
                                 "api_url": self.api_url}))
        return self

    @property
    def api_url(self) -> str | None:
        """The local API's base URL when its listener runs."""
        return f"http://127.0.0.1:{self.api_port}" if self.api_servers else None

    def _start_api(self) -> None:
        """Bind the local API's fixed port (127.0.0.1, and [::1] where free); a port in use is
        reported (``api_error``, Settings shows it), not fatal: the window still opens."""
        if self.api_port is None:
            return
        server = self._listener("127.0.0.1", self.api_port, tools=True)
        try:
            server.prepare()
        except OSError as e:
            self.api_error = f"port {self.api_port} could not be opened ({e}); choose another in Settings"
            log.error("local API not started: %s", self.api_error)
            return
        self.api_servers.append(server)
        ipv6 = self._listener("::1", self.api_port, tools=True)
        try:
            ipv6.prepare()
            self.api_servers.append(ipv6)
        except OSError as e:
            log.info("local API not on [::1] (%s)", e)

    def _hold_ipv6(self) -> bool:
        """Listen on [::1] at our port too; False when another program already does."""
        server = self._listener("::1", self.port)
        try:
            server.prepare()
        except OSError as e:
            if f"[Errno {errno.EADDRINUSE}]" in str(e):  # cheroot folds the socket error into its message
                return False
            log.info("not listening on [::1] (%s); browsers reach the app on 127.0.0.1", e)
            return True  # no IPv6 loopback here: no one else can listen there either
        self.ipv6 = server
        return True

    def stop(self) -> None:
        self.runtime.stopping.set()
        self.server.stop()
        if self.ipv6 is not None:
            self.ipv6.stop()
        for server in self.api_servers:
            server.stop()
        close_mcp(self.app)
        try:
            info = json.loads((self.runtime.home / RUNTIME_FILE).read_text())
            if info.get("pid") == os.getpid():
                (self.runtime.home / RUNTIME_FILE).unlink()
        except (OSError, ValueError):
            pass


def _marked_as_api(app):
    """The app as the local API listener serves it: each request marked, so the security checks
    are the API key's (zishu.web.security.check_tool_request)."""

    def wsgi(environ, start_response):
        environ[API_LISTENER] = True
        return app(environ, start_response)

    return wsgi


def running_app(home: Path) -> dict | None:
    """The app.json of a Zishu app that is running for ``home``, if there is one."""
    import psutil

    try:
        info = json.loads((Path(home) / RUNTIME_FILE).read_text())
        return info if psutil.pid_exists(int(info["pid"])) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def start_app(home: Path | None = None, *, consumer: bool = True, workers: int = 2, port: int = 0,
              secret: str | None = None) -> AppServer:
    """Everything ``zishu serve`` runs: the runtime, recovered jobs, the consumer, the server."""
    runtime = Runtime(home)
    found = runtime.jobs.recover()
    if found["interrupted"]:
        log.warning("jobs interrupted when Zishu last stopped: %s", found["interrupted"])
    if consumer:
        runtime.jobs.start_consumer(workers)
    api, api_port = local_api_access(runtime.home)
    return AppServer(runtime, port=port, secret=secret, api=api, api_port=api_port).start()


def local_api_access(home: Path) -> tuple[ApiAccess | None, int | None]:
    """The local API's key, origins and port from Settings, or (None, None) when it is off."""
    from zishu import api_key, settings

    chosen = settings.load()
    if not chosen.local_api_enabled:
        return None, None
    return ApiAccess(key=api_key.api_key(home), origins=set(chosen.local_api_origins)), chosen.local_api_port


def serve_until_stopped(server: AppServer, *, show_url: bool = True) -> None:
    """Print the app's URL with this launch's secret (stdout) and how to stop (stderr), wait for
    Ctrl+C or SIGTERM, then stop the server and close its runtime."""
    if show_url:
        click.echo(server.url_with_secret("/"), nl=True)
        click.secho(f"Zishu is serving on {server.url} — open the URL above in a browser "
                    "(it carries this launch's secret). Ctrl+C stops.", dim=True, err=True)
        if server.api_url:
            click.secho(f"Local API for other tools: {server.api_url}/v1 and {server.api_url}/mcp "
                        "(the key is in Settings, Local API)", dim=True, err=True)
        elif server.api_error:
            click.secho(f"Local API not started: {server.api_error}", fg="red", err=True)
    try:
        _wait_for_ctrl_c()
    finally:
        server.stop()
        server.runtime.close()


def _wait_for_ctrl_c() -> None:
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()


def show_in_window(info: dict, path: str) -> bool:
    """Ask the running app (its ``app.json`` ``info``) to show ``path`` in its window; False where
    it has no window or does not answer."""
    import requests

    from .security import HEADER

    try:
        answer = requests.post(f"{info['url'].rstrip('/')}/api/window/open", json={"path": path},
                               headers={HEADER: info["secret"]}, timeout=10)
    except requests.RequestException:
        return False
    return answer.status_code == 200
