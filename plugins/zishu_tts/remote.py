"""Talking to a speech server the user runs (GPT-SoVITS, CosyVoice): its address, one POST whose
answer is read piece by piece as it arrives, and errors that say which server and what to do.

Only the standard library: ``read1`` hands over each piece the moment it arrives (chunked or not),
so playback can start while the server is still synthesising.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

from zishu.engines import Engine, MemoryNeed, ModelRef
from zishu.errors import EngineError

READ_TIMEOUT = 300  # seconds without a byte before giving up: a big model on a CPU is slow to start
PIECE = 64 * 1024
# Servers the user runs are reached directly: a system proxy would not know a local address.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def server_url(env: str, default: str) -> str:
    """The server's base URL: ``$env`` when set, else ``default``; without a trailing slash."""
    url = (os.environ.get(env) or default).strip().rstrip("/")
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise EngineError(f"{env}={url!r} is not an http:// or https:// URL")
    return url


def post_stream(url: str, *, server: str, how_to_start: str, json_body: dict | None = None,
                form: dict | None = None) -> Iterator[bytes]:
    """POST ``json_body`` (as JSON) or ``form`` (form-encoded) to ``url`` and yield the answer's body
    as it arrives. ``server`` names the kind of server and ``how_to_start`` says how to start it,
    for the error when nothing answers."""
    if json_body is not None:
        data, kind = json.dumps(json_body, ensure_ascii=False).encode("utf-8"), "application/json"
    else:
        data, kind = urllib.parse.urlencode(form or {}).encode("utf-8"), "application/x-www-form-urlencoded"
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": kind})
    try:
        response = _opener.open(request, timeout=READ_TIMEOUT)
    except urllib.error.HTTPError as e:
        with e:
            said = _message(e.read(PIECE))
        raise EngineError(f"the {server} server at {url} refused the request (HTTP {e.code}): {said}") from None
    except (urllib.error.URLError, TimeoutError) as e:
        reason = getattr(e, "reason", e)
        if isinstance(reason, TimeoutError):
            raise EngineError(f"the {server} server at {url} did not answer within {READ_TIMEOUT} s") from None
        raise EngineError(f"no {server} server answers at {url} ({reason}): {how_to_start}") from None
    with response:
        try:
            while piece := response.read1(PIECE):
                yield piece
        except TimeoutError:
            raise EngineError(f"the {server} server at {url} stopped sending audio for {READ_TIMEOUT} s") from None
        except OSError as e:
            raise EngineError(f"the {server} server at {url} broke off its answer: {e}") from None


def _message(body: bytes) -> str:
    """The error a server put in its body: a JSON ``message``/``detail``/``error`` (GPT-SoVITS adds
    ``Exception``; FastAPI's validation errors are a list in ``detail``), else the text itself."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:500] or "(no message)"
    if not isinstance(data, dict):
        return text[:500]
    said = data.get("message") or data.get("detail") or data.get("error") or text
    if isinstance(said, list):  # FastAPI: [{"loc": [...], "msg": "...", ...}]
        said = "; ".join(f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}" if isinstance(d, dict) else str(d)
                         for d in said)
    if data.get("Exception"):
        said = f"{said}: {data['Exception']}"
    return str(said)[:500]


class RemoteEngine(Engine):
    """An engine whose model lives in a server the user runs: it takes no memory here."""

    def estimate(self, model: ModelRef, device: str = "cpu") -> MemoryNeed:
        return MemoryNeed()
