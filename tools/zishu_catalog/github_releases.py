"""Reading GitHub Releases through the GitHub REST API: which assets a repository has, and how
often each was downloaded.

One call per repository, ``GET {api}/repos/{owner}/{repo}/releases?per_page=100``, following the
``Link: rel="next"`` pages. Every answer that cannot be used becomes a ``RemoteError`` that says
what to do (rate limit, bad token, server error, not JSON); a repository that is gone (404) is
reported as ``None`` so the caller can warn and go on.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import requests

from zishu.errors import RemoteError

DEFAULT_API_URL = "https://api.github.com"
TIMEOUT = (10, 30)  # seconds to connect, seconds between bytes
MAX_PAGES = 100  # 10,000 releases: far more than any resource repository has

RELEASE_URL = re.compile(
    r"^https://github\.com/(?P<owner>[A-Za-z0-9_.-]+)/(?P<repo>[A-Za-z0-9_.-]+)"
    r"/releases/download/(?P<tag>[^/?#]+)/(?P<name>[^/?#]+)$"
)


@dataclass(frozen=True)
class ReleaseAsset:
    """A file on GitHub Releases, as its download URL names it."""

    repo: str  # owner/repo, as written in the URL
    tag: str
    name: str

    @classmethod
    def from_url(cls, url: str) -> ReleaseAsset | None:
        """The asset a GitHub Releases download URL points at, or None for any other URL."""
        match = RELEASE_URL.match(url)
        if not match:
            return None
        return cls(f"{match['owner']}/{match['repo']}", unquote(match["tag"]), unquote(match["name"]))


class GitHubReleases:
    """A small client for the releases endpoint; ``session`` can be swapped in tests."""

    def __init__(self, api_url: str = DEFAULT_API_URL, token: str | None = None,
                 session: requests.Session | None = None, timeout=TIMEOUT) -> None:
        self.api_url = api_url.rstrip("/")
        self.token = token
        self.session = session or requests.Session()
        self.timeout = timeout

    def download_counts(self, repo: str) -> dict[tuple[str, str], int] | None:
        """``(tag, asset name) → download count`` for every asset of every release of ``repo``;
        None when the repository does not exist (or is private)."""
        counts: dict[tuple[str, str], int] = {}
        url: str | None = f"{self.api_url}/repos/{repo}/releases?per_page=100"
        for _ in range(MAX_PAGES):
            if url is None:
                return counts
            response = self._get(url)
            if response.status_code == 404:
                return None
            for release in self._releases(response, url):
                for asset in release.get("assets") or []:
                    key = (str(release.get("tag_name")), str(asset.get("name")))
                    counts[key] = int(asset.get("download_count") or 0)
            url = self._next_page(response)
        raise RemoteError(f"GitHub API: {repo} has more than {MAX_PAGES} pages of releases; giving up")

    # ---- one request ---------------------------------------------------------------------------

    def _get(self, url: str) -> requests.Response:
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "zishu-catalog-stats",
        }
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = self.session.get(url, headers=headers, timeout=self.timeout)
        except requests.Timeout:
            raise RemoteError(f"GitHub API did not answer in time: {url}") from None
        except requests.RequestException as e:
            raise RemoteError(f"GitHub API could not be reached ({type(e).__name__}): {url}") from None
        self._raise_for_status(response, url)
        return response

    @staticmethod
    def _raise_for_status(response: requests.Response, url: str) -> None:
        status = response.status_code
        if status < 400 or status == 404:
            return
        remaining = response.headers.get("X-RateLimit-Remaining")
        limited = remaining == "0" or "Retry-After" in response.headers or "rate limit" in _message(response).lower()
        if status == 429 or (status == 403 and limited):
            raise RemoteError(f"GitHub API rate limit reached{_reset_time(response)}; "
                              "set GITHUB_TOKEN for a higher limit, or run again later")
        if status == 401:
            raise RemoteError("GitHub API refused the token (401 Unauthorized); check GITHUB_TOKEN")
        if status == 403:
            raise RemoteError(f"GitHub API refused access (403): {_message(response)} ({url})")
        if status >= 500:
            raise RemoteError(f"GitHub API failed with {status} {response.reason}; try again later ({url})")
        raise RemoteError(f"GitHub API answered {status} {response.reason}: {_message(response)} ({url})")

    @staticmethod
    def _releases(response: requests.Response, url: str) -> list[dict]:
        try:
            data = response.json()
        except ValueError:
            raise RemoteError(f"GitHub API answered with something that is not JSON ({url})") from None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise RemoteError(f"GitHub API answered with JSON that is not a list of releases ({url})")
        return data

    def _next_page(self, response: requests.Response) -> str | None:
        url = response.links.get("next", {}).get("url")
        if url is None:
            return None
        # Only ever send the token back to the API we were given.
        if urlsplit(url)[:2] != urlsplit(self.api_url)[:2]:
            raise RemoteError(f"GitHub API pointed the next page at another server: {url}")
        return url


def _message(response: requests.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200].strip() or "no message"
    return str(data.get("message", "no message")) if isinstance(data, dict) else "no message"


def _reset_time(response: requests.Response) -> str:
    reset = response.headers.get("X-RateLimit-Reset", "")
    if reset.isdigit():
        when = dt.datetime.fromtimestamp(int(reset), dt.timezone.utc)
        return f" (it resets at {when:%Y-%m-%d %H:%M} UTC)"
    retry = response.headers.get("Retry-After", "")
    return f" (retry after {retry} seconds)" if retry.isdigit() else ""
