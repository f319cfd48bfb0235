"""A local stand-in for the GitHub REST API, speaking exactly the endpoints ``zishu publish`` uses.

It answers as GitHub documents them (status codes, JSON shapes, error bodies with ``message``,
``errors[]`` and ``documentation_url``), keeps the state those calls change, and records every
request (``requests``: method, path with query, headers, body). The uploads host is this same
server: a release's ``upload_url`` is ``{url}/repos/{owner}/{repo}/releases/{id}/assets{?name,label}``,
the RFC 6570 template GitHub returns, and an asset's ``browser_download_url`` is
``{url}/{owner}/{repo}/releases/download/{tag}/{name}``, which this server also serves, so the
catalog's ``validate --online --allow-local-urls`` can download what was published.

    GET  /user                                         401 without a known token
    GET  /repos/{o}/{r}                                404 when missing
    POST /user/repos                                   {name, auto_init} → 201
    POST /repos/{o}/{r}/releases                       → 201; 422 already_exists (tag_name)
    POST /repos/{o}/{r}/releases/{id}/assets?name=     raw body → 201; 422 already_exists (name)
    POST /repos/{o}/{r}/forks                          → 202 (the fork, made at once)
    GET  /repos/{o}/{r}/git/ref/heads/{branch}         → 200; 404
    POST /repos/{o}/{r}/git/refs                       {ref, sha} → 201; 422 Reference already exists
    GET  /repos/{o}/{r}/contents/{path}?ref=           → 200 (base64); 404
    PUT  /repos/{o}/{r}/contents/{path}                {message, content, branch, sha?} → 201/200; 409; 422
    POST /repos/{o}/{r}/pulls                          {title, head, base, body} → 201
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlsplit

from conftest import LoopbackServer

DOCS = "https://docs.github.com/rest"


@dataclass
class Repo:
    owner: str
    name: str
    default_branch: str = "main"
    fork: bool = False
    branches: dict[str, str] = field(default_factory=dict)  # branch → commit sha
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)  # branch → path → bytes
    releases: list[dict] = field(default_factory=list)
    assets: dict[tuple[str, str], bytes] = field(default_factory=dict)  # (tag, name) → bytes

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


class LocalGitHub(LoopbackServer):
    """``with LocalGitHub(tokens={"t0ken": "alice"}) as gh:`` — ``gh.url`` is the API's base URL."""

    def __init__(self, tokens: dict[str, str]) -> None:
        self.tokens = tokens
        self.repos: dict[str, Repo] = {}
        self.pulls: list[dict] = []
        self.requests: list[Recorded] = []
        self.commits: dict[str, dict[str, bytes]] = {}  # sha → the files at that commit (shared, as in a fork network)
        self._ids = itertools.count(1)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                server._handle(self)

            do_POST = do_PUT = do_GET

        super().__init__(Handler)

    # ---- state the test sets up and reads ----------------------------------------------------

    def add_repo(self, full_name: str, files: dict[str, bytes] | None = None) -> Repo:
        owner, name = full_name.split("/")
        repo = Repo(owner, name)
        repo.files["main"] = dict(files or {})
        repo.branches["main"] = self._commit(repo.files["main"])
        self.repos[full_name.lower()] = repo
        return repo

    def merge(self, pull: dict) -> None:
        """Merge a pull request: its head's files become the base branch's next commit."""
        head = self.repo(pull["head"]["repo"]["full_name"])
        base = self.repo(pull["base"]["repo"]["full_name"])
        files = base.files[pull["base"]["ref"]]
        files.update(head.files[pull["head"]["ref"]])
        base.branches[pull["base"]["ref"]] = self._commit(files, f"Merge pull request #{pull['number']}")
        pull["state"] = "closed"

    def repo(self, full_name: str) -> Repo:
        return self.repos[full_name.lower()]

    def calls(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.requests]

    # ---- answering ---------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        self.requests.append(Recorded(h.command, h.path, dict(h.headers), body))
        split = urlsplit(h.path)
        path, query = unquote(split.path), parse_qs(split.query)
        download = re.fullmatch(r"/([^/]+)/([^/]+)/releases/download/([^/]+)/([^/]+)", path)
        if h.command == "GET" and download:  # github.com, not the API: no token needed
            repo = self.repos.get(f"{download[1]}/{download[2]}".lower())
            data = repo.assets.get((download[3], download[4])) if repo else None
            return self._send(h, 200, data) if data is not None else self._send(h, 404, b"Not Found")
        auth = h.headers.get("Authorization", "")
        login = self.tokens.get(auth.removeprefix("Bearer ").removeprefix("token ")) if auth else None
        if login is None:
            message = "Bad credentials" if auth else "Requires authentication"
            return self._json(h, 401, {"message": message, "documentation_url": DOCS, "status": "401"})
        for method, pattern, answer in self._routes():
            match = re.fullmatch(pattern, path)
            if match and method == h.command:
                status, data = answer(login, body, query, *match.groups())
                return self._json(h, status, data)
        self._json(h, 404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"})

    def _routes(self):
        repo = r"/repos/([^/]+)/([^/]+)"
        return [
            ("GET", r"/user", lambda login, *_: (200, {"login": login, "id": 1, "type": "User"})),
            ("POST", r"/user/repos", self._create_repo),
            ("GET", repo, self._get_repo),
            ("POST", repo + r"/releases", self._create_release),
            ("POST", repo + r"/releases/(\d+)/assets", self._upload),
            ("POST", repo + r"/forks", self._fork),
            ("GET", repo + r"/git/ref/heads/(.+)", self._get_ref),
            ("POST", repo + r"/git/refs", self._create_ref),
            ("GET", repo + r"/contents/(.+)", self._get_contents),
            ("PUT", repo + r"/contents/(.+)", self._put_contents),
            ("POST", repo + r"/pulls", self._create_pull),
        ]

    def _repo_json(self, repo: Repo) -> dict:
        return {"id": 1, "name": repo.name, "full_name": repo.full_name, "owner": {"login": repo.owner},
                "private": False, "fork": repo.fork, "default_branch": repo.default_branch,
                "html_url": f"https://github.com/{repo.full_name}"}

    def _find(self, owner: str, name: str) -> Repo | None:
        return self.repos.get(f"{owner}/{name}".lower())

    def _create_repo(self, login, body, query):
        data = json.loads(body)
        if self._find(login, data["name"]):
            return 422, _invalid("Repository", "name", "custom", "name already exists on this account")
        repo = self.add_repo(f"{login}/{data['name']}", {"README.md": b"# files\n"} if data.get("auto_init") else {})
        return 201, self._repo_json(repo)

    def _get_repo(self, login, body, query, owner, name):
        repo = self._find(owner, name)
        return (200, self._repo_json(repo)) if repo else _not_found()

    def _create_release(self, login, body, query, owner, name):
        repo = self._find(owner, name)
        if repo is None:
            return _not_found()
        data = json.loads(body)
        if any(r["tag_name"] == data["tag_name"] for r in repo.releases):
            return 422, _invalid("Release", "tag_name", "already_exists")
        rid = next(self._ids)
        release = {
            "id": rid, "tag_name": data["tag_name"], "name": data.get("name"), "body": data.get("body"),
            "draft": bool(data.get("draft")), "prerelease": bool(data.get("prerelease")),
            "url": f"{self.url}/repos/{repo.full_name}/releases/{rid}",
            "html_url": f"https://github.com/{repo.full_name}/releases/tag/{data['tag_name']}",
            "assets_url": f"{self.url}/repos/{repo.full_name}/releases/{rid}/assets",
            "upload_url": f"{self.url}/repos/{repo.full_name}/releases/{rid}/assets{{?name,label}}",
            "assets": [],
        }
        repo.releases.append(release)
        return 201, release

    def _upload(self, login, body, query, owner, name, release_id):
        repo = self._find(owner, name)
        release = next((r for r in repo.releases if r["id"] == int(release_id)), None) if repo else None
        if release is None:
            return _not_found()
        asset_name = query.get("name", [""])[0]
        if any(a["name"] == asset_name for a in release["assets"]):
            return 422, _invalid("ReleaseAsset", "name", "already_exists")
        repo.assets[release["tag_name"], asset_name] = body
        asset = {
            "id": next(self._ids), "name": asset_name, "label": "", "state": "uploaded",
            "content_type": "application/octet-stream", "size": len(body), "download_count": 0,
            "url": f"{self.url}/repos/{repo.full_name}/releases/assets/{release_id}",
            "browser_download_url": f"{self.url}/{repo.full_name}/releases/download/{release['tag_name']}/{asset_name}",
            "uploader": {"login": login},
        }
        release["assets"].append(asset)
        return 201, asset

    def _fork(self, login, body, query, owner, name):
        upstream = self._find(owner, name)
        if upstream is None:
            return _not_found()
        fork = self._find(login, name)
        if fork is None:
            fork = Repo(login, upstream.name, upstream.default_branch, fork=True)
            fork.branches = dict(upstream.branches)
            fork.files = {b: dict(f) for b, f in upstream.files.items()}
            self.repos[fork.full_name.lower()] = fork
        return 202, self._repo_json(fork)

    def _ref_json(self, repo: Repo, branch: str) -> dict:
        sha = repo.branches[branch]
        return {"ref": f"refs/heads/{branch}", "url": f"{self.url}/repos/{repo.full_name}/git/refs/heads/{branch}",
                "object": {"type": "commit", "sha": sha, "url": f"{self.url}/repos/{repo.full_name}/git/commits/{sha}"}}

    def _get_ref(self, login, body, query, owner, name, branch):
        repo = self._find(owner, name)
        if repo is None or branch not in repo.branches:
            return _not_found()
        return 200, self._ref_json(repo, branch)

    def _create_ref(self, login, body, query, owner, name):
        repo = self._find(owner, name)
        if repo is None:
            return _not_found()
        data = json.loads(body)
        branch = data["ref"].removeprefix("refs/heads/")
        if branch in repo.branches:
            return 422, {"message": "Reference already exists", "documentation_url": DOCS, "status": "422"}
        if data["sha"] not in self.commits:
            return 422, {"message": "Object does not exist", "documentation_url": DOCS, "status": "422"}
        repo.branches[branch] = data["sha"]
        repo.files[branch] = dict(self.commits[data["sha"]])
        return 201, self._ref_json(repo, branch)

    def _get_contents(self, login, body, query, owner, name, path):
        repo = self._find(owner, name)
        branch = query.get("ref", [repo.default_branch if repo else "main"])[0]
        data = repo.files.get(branch, {}).get(path) if repo else None
        if data is None:
            return _not_found()
        return 200, {"type": "file", "encoding": "base64", "name": path.rsplit("/", 1)[-1], "path": path,
                     "size": len(data), "sha": _blob_sha(data), "content": base64.encodebytes(data).decode()}

    def _put_contents(self, login, body, query, owner, name, path):
        repo = self._find(owner, name)
        if repo is None:
            return _not_found()
        data = json.loads(body)
        branch = data.get("branch") or repo.default_branch
        if branch not in repo.branches:
            return 404, {"message": f"Branch {branch} not found", "documentation_url": DOCS, "status": "404"}
        files = repo.files[branch]
        old = files.get(path)
        if old is not None and "sha" not in data:
            return 422, {"message": 'Invalid request.\n\n"sha" wasn\'t supplied.', "documentation_url": DOCS,
                         "status": "422"}
        if old is not None and data["sha"] != _blob_sha(old):
            return 409, {"message": f"{path} does not match {data['sha']}", "documentation_url": DOCS,
                         "status": "409"}
        content = base64.b64decode(data["content"])
        files[path] = content
        repo.branches[branch] = self._commit(files, data["message"])
        return (200 if old is not None else 201), {
            "content": {"name": path.rsplit("/", 1)[-1], "path": path, "sha": _blob_sha(content), "size": len(content)},
            "commit": {"sha": repo.branches[branch], "message": data["message"]},
        }

    def _create_pull(self, login, body, query, owner, name):
        repo = self._find(owner, name)
        if repo is None:
            return _not_found()
        data = json.loads(body)
        head_owner, _, head_branch = data["head"].rpartition(":")
        head = self._find(head_owner or owner, name)
        if head is None or head_branch not in head.branches or data["base"] not in repo.branches:
            return 422, _invalid("PullRequest", "head", "invalid")
        number = len(self.pulls) + 1
        pull = {"id": number, "number": number, "state": "open", "title": data["title"], "body": data.get("body"),
                "html_url": f"https://github.com/{repo.full_name}/pull/{number}",
                "head": {"label": data["head"], "ref": head_branch, "sha": head.branches[head_branch],
                         "repo": {"full_name": head.full_name}},
                "base": {"ref": data["base"], "repo": {"full_name": repo.full_name}}}
        self.pulls.append(pull)
        return 201, pull

    # ---- plumbing ----------------------------------------------------------------------------

    def _commit(self, files: dict[str, bytes], message: str = "initial") -> str:
        digest = hashlib.sha1(message.encode())
        for path in sorted(files):
            digest.update(path.encode() + b"\0" + files[path])
        digest.update(str(next(self._ids)).encode())
        self.commits[digest.hexdigest()] = dict(files)
        return digest.hexdigest()

    @staticmethod
    def _json(h: BaseHTTPRequestHandler, status: int, data) -> None:
        LocalGitHub._send(h, status, json.dumps(data).encode(), "application/json; charset=utf-8")

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, body: bytes, kind: str = "application/octet-stream") -> None:
        h.send_response(status)
        h.send_header("Content-Type", kind)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)


def _blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _not_found():
    return 404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"}


def _invalid(resource: str, field: str, code: str, message: str | None = None) -> dict:
    error = {"resource": resource, "code": code, "field": field, **({"message": message} if message else {})}
    return {"message": "Validation Failed", "errors": [error], "documentation_url": DOCS, "status": "422"}
