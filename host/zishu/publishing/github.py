"""The GitHub REST endpoints publishing uses, sent by one small client (``GitHub``).

Every request carries the token in ``Authorization: Bearer``, ``Accept: application/vnd.github+json``
and ``X-GitHub-Api-Version: 2022-11-28``. The token is sent only to the API's own host and to the
uploads host a release's ``upload_url`` names (``uploads.github.com`` on GitHub). With
``dry_run``, nothing is sent: each request is handed to ``on_request`` (the CLI prints it) and
answered with what ``pretend`` (the caller's idea of GitHub's answer) says, so the later steps can
be shown too.

Answers are checked once, here: 401 (the token was refused), a rate limit, and any other status the
caller did not expect become ``RemoteError`` with GitHub's own message; the caller gets the status
of the ones it expects (``ok=(201, 422)``) to say what they mean for the user.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import quote, urlsplit

import requests

from zishu.errors import RemoteError

DEFAULT_API_URL = "https://api.github.com"
UPLOADS_HOST = "uploads.github.com"
TIMEOUT = (10, 120)  # seconds to connect, seconds between bytes


@dataclass
class Request:
    """One request, as ``--dry-run`` shows it."""

    method: str
    url: str
    summary: str = ""  # the body, summarised: JSON fields, or "N bytes of application/octet-stream"

    def __str__(self) -> str:
        return f"{self.method} {self.url}" + (f"  {self.summary}" if self.summary else "")


@dataclass
class Answer:
    status: int
    data: Any = None


@dataclass
class GitHub:
    """A client for ``api_url`` with ``token``; ``dry_run`` records instead of sending."""

    token: str | None
    api_url: str = DEFAULT_API_URL
    dry_run: bool = False
    on_request: Callable[[Request], None] = lambda r: None
    session: requests.Session = field(default_factory=requests.Session)
    sent: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.api_url = self.api_url.rstrip("/")

    def call(self, method: str, path: str, body: dict | None = None, *, ok: tuple[int, ...] = (200, 201),
             pretend: Any = None, pretend_status: int | None = None) -> Answer:
        """``method`` on ``{api_url}{path}`` with a JSON ``body``; the answer when its status is in ``ok``."""
        url = self.api_url + path
        request = Request(method, url, summarise(body) if body is not None else "")
        return self._send(request, ok, pretend, pretend_status, json=body)

    def upload(self, upload_url: str, name: str, stream: IO[bytes], size: int, *, pretend: Any = None,
               ok: tuple[int, ...] = (201,)) -> Answer:
        """Upload ``size`` bytes from ``stream`` as the release asset ``name`` (``upload_url`` is the
        release's URI template, ``…/assets{?name,label}``)."""
        base = upload_url.split("{", 1)[0]
        url = f"{base}?name={quote(name, safe='')}"
        target, api = urlsplit(url), urlsplit(self.api_url)
        if (target.scheme, target.netloc) != (api.scheme, api.netloc) and not (
                target.scheme == "https" and target.hostname == UPLOADS_HOST):
            raise RemoteError(f"GitHub gave an upload URL on another server ({url}); not sending the token there")
        request = Request("POST", url, f"{size:,} bytes of application/octet-stream")
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        return self._send(request, ok, pretend, None, data=stream, headers=headers)

    # ---- one request ---------------------------------------------------------------------------

    def _send(self, request: Request, ok: tuple[int, ...], pretend: Any, pretend_status: int | None,
              **kwargs) -> Answer:
        self.sent.append(request)
        self.on_request(request)
        if self.dry_run:
            return Answer(pretend_status or ok[0], pretend)
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "zishu-publish",
            **kwargs.pop("headers", {}),
        }
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = self.session.request(request.method, request.url, headers=headers, timeout=TIMEOUT, **kwargs)
        except requests.Timeout:
            raise RemoteError(f"GitHub did not answer in time: {request.method} {request.url}") from None
        except requests.RequestException as e:
            raise RemoteError(f"GitHub could not be reached ({type(e).__name__}): {request.url}") from None
        if response.status_code in ok:
            return Answer(response.status_code, _json(response))
        raise _error(response, request)


def summarise(body: dict) -> str:
    """A JSON body as one line, long strings cut (a manifest's base64 shows as its length)."""
    shown = {}
    for key, value in body.items():
        if key == "content" and isinstance(value, str):
            shown[key] = f"<{len(value):,} characters of base64>"
        elif isinstance(value, str) and len(value) > 80:
            shown[key] = value[:77] + "..."
        else:
            shown[key] = value
    return json.dumps(shown, ensure_ascii=False)


def message(data: Any) -> str:
    """GitHub's error message with its validation errors (``errors[].code/field``)."""
    if not isinstance(data, dict):
        return "no message"
    text = str(data.get("message") or "no message")
    details = [
        " ".join(str(e.get(k)) for k in ("resource", "field", "code") if e.get(k)) if isinstance(e, dict) else str(e)
        for e in data.get("errors") or []
    ]
    return f"{text} ({'; '.join(details)})" if details else text


def _json(response: requests.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise RemoteError(f"GitHub answered with something that is not JSON ({response.url})") from None


def _error(response: requests.Response, request: Request) -> RemoteError:
    status = response.status_code
    try:
        data = response.json()
    except ValueError:
        data = {"message": response.text[:200].strip()}
    what = f"{request.method} {request.url}"
    if status == 401:
        return RemoteError("GitHub refused the token (401 Bad credentials): it is wrong, expired or revoked; "
                           "give a new one (gh auth login, ZISHU_GITHUB_TOKEN, or keyring set zishu github)")
    if status == 429 or (status == 403 and response.headers.get("X-RateLimit-Remaining") == "0"):
        return RemoteError("GitHub's rate limit is reached; run again later")
    if status == 403:
        return RemoteError(f"GitHub refused this ({message(data)}): the token needs the 'repo' scope ({what})")
    return RemoteError(f"GitHub answered {status} to {what}: {message(data)}")
