"""Result files too large for Redis (over ``relay.max_file()``, 64 MiB) come back by a pull: the
worker offers the file on a small HTTP server of its own, and the app fetches it.

- The worker (``serve(...).offer(relative)``) hashes the file and hands the app, in the job's end
  event, its path, size, sha256, the URL and a token: an HMAC-SHA256 with the cluster secret over
  the sha256, the path and an expiry time. The server answers only a request carrying a valid,
  unexpired token for a file it offered, and only that file.
- The app (``fetch``) streams it into a temporary file beside the target while hashing, and moves
  it into place (``os.replace``) only when the size and sha256 match, so a cut or altered transfer
  never leaves a file that looks complete.

The server listens on the address this node reaches Redis from (the local end of its Redis
connection: the one interface the app can surely reach back), or ``ZISHU_CLUSTER_FILE_HOST``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from zishu.errors import ChecksumMismatch, DownloadError, UsageError
from zishu.files import adjacent_tmp_file

from .relay import FILE_TTL, safe_relative

log = logging.getLogger(__name__)

HOST_ENV = "ZISHU_CLUSTER_FILE_HOST"
CHUNK = 1024 * 1024
SALT = b"zishu-file-pull-v1"


def sign(secret: str, sha256: str, path: str, expires: int) -> str:
    message = f"{sha256}\n{path}\n{expires}".encode()
    return hmac.new(SALT + secret.encode(), message, hashlib.sha256).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class FileOffer:
    """The worker's file server: the files it offered (sha256 → path) and the HTTP server for them."""

    def __init__(self, home: Path, secret: str, host: str) -> None:
        self.home, self.secret = Path(home), secret
        self.offered: dict[str, tuple[Path, str, int]] = {}  # sha256 -> (file, relative path, expires)
        offer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                offer.answer(self)

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.host, self.port = host, self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, name="zishu-file-pull", daemon=True).start()

    def offer(self, relative: str) -> dict:
        """Offer ``home/relative``; returns what the app needs to pull it (the end event's ``files`` entry)."""
        path = self.home / safe_relative(relative)
        size = path.stat().st_size
        digest = sha256_file(path)
        expires = int(time.time()) + FILE_TTL
        now = time.time()
        self.offered = {k: v for k, v in self.offered.items() if v[2] > now}
        self.offered[digest] = (path, relative, expires)
        host = f"[{self.host}]" if ":" in self.host else self.host
        return {"path": relative, "sha256": digest, "size": size, "expires": expires,
                "url": f"http://{host}:{self.port}/files/{digest}?path={quote(relative)}&expires={expires}",
                "token": sign(self.secret, digest, relative, expires)}

    def answer(self, request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        query = dict(p.partition("=")[::2] for p in parts.query.split("&") if p)
        digest = parts.path.rpartition("/")[2]
        relative = unquote(query.get("path", ""))
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        found = self.offered.get(digest)
        try:
            expires = int(query.get("expires", "0"))
        except ValueError:
            expires = 0
        good = (found is not None and found[1] == relative and found[2] == expires and expires > time.time()
                and hmac.compare_digest(token, sign(self.secret, digest, relative, expires)))
        if not good or found is None:
            log.warning("refused a file pull without a valid token (%s)", parts.path)
            request.send_error(403, "no valid token for this file")
            return
        path = found[0]
        try:
            with open(path, "rb") as f:
                request.send_response(200)
                request.send_header("Content-Type", "application/octet-stream")
                request.send_header("Content-Length", str(os.fstat(f.fileno()).st_size))
                request.end_headers()
                while chunk := f.read(CHUNK):
                    request.wfile.write(chunk)
        except OSError as e:
            log.warning("could not send %s: %s", path, e)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


_servers: dict[Path, FileOffer] = {}
_lock = threading.Lock()


def reach_address(conn: Any) -> str:
    """The local address this process reaches Redis from (``ZISHU_CLUSTER_FILE_HOST`` first)."""
    named = os.environ.get(HOST_ENV)
    if named:
        return named
    try:
        kwargs = conn.connection_pool.connection_kwargs
        host, port = kwargs.get("host"), kwargs.get("port", 6379)
        if host:
            with socket.create_connection((host, port), timeout=5) as s:
                return str(s.getsockname()[0])
    except OSError:
        pass
    return "127.0.0.1"  # a unix socket: Redis, and so the app, is on this machine


def serve(home: Path, conn: Any, secret: str) -> FileOffer:
    """This process's file server for ``home`` (started on first use)."""
    if not secret:
        raise UsageError("pulling result files needs the cluster secret")
    with _lock:
        found = _servers.get(Path(home))
        if found is None:
            found = _servers[Path(home)] = FileOffer(home, secret, reach_address(conn))
        return found


def fetch(home: Path, offered: dict, secret: str, timeout: float = 60) -> Path:
    """Pull an offered file into ``home`` at its relative path: streamed, its sha256 checked, moved
    into place only when whole and right."""
    relative, digest, size = str(offered["path"]), str(offered["sha256"]), int(offered["size"])
    target = Path(home) / safe_relative(relative)
    url = str(offered["url"])
    if not url.startswith("http://"):
        raise DownloadError(f"result file {relative}: not an http:// URL from a worker")
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {offered.get('token', '')}"})
    got = hashlib.sha256()
    written = 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer, adjacent_tmp_file(target) as out:
            while chunk := answer.read(CHUNK):
                written += len(chunk)
                if written > size:
                    raise ChecksumMismatch(f"result file {relative}: more than the {size} bytes offered")
                got.update(chunk)
                out.write(chunk)
            if written != size or got.hexdigest() != digest:
                raise ChecksumMismatch(f"result file {relative}: {written} bytes with sha256 {got.hexdigest()}, "
                                       f"expected {size} bytes with sha256 {digest}")
    except urllib.error.HTTPError as e:
        raise DownloadError(f"result file {relative}: the worker answered {e.code} ({e.reason})") from e
    except (urllib.error.URLError, OSError) as e:
        raise DownloadError(f"result file {relative}: could not pull it from the worker ({e})") from e
    return target
