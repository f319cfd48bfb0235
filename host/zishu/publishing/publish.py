"""``publish_character``: one of the user's characters to the catalog, by GitHub release and pull request.

The steps, each one GitHub REST call (``github.GitHub``), reported to ``progress`` as they go:

1. ``GET /user`` — the login: the catalog id's owner and the fork's owner;
2. ``GET /repos/{repo}``, and ``POST /user/repos`` when the user's release repository is missing;
3. ``POST /repos/{repo}/releases`` (422: the tag exists — refused, a published version never changes);
4. ``POST {upload_url}?name=…`` per file; each asset's ``browser_download_url`` becomes its URL;
5. ``GET /repos/{catalog}``, and ``POST /repos/{catalog}/forks`` unless the user owns the catalog;
6. ``GET /repos/{catalog}/git/ref/heads/{default}``, ``POST /repos/{fork}/git/refs`` (the branch);
7. ``GET`` then ``PUT /repos/{fork}/contents/registry_index/resources/{id}.yaml`` (the commit; a
   character published before keeps its earlier versions below the new one);
8. ``POST /repos/{catalog}/pulls``.

With ``dry_run`` nothing is sent; the same requests are shown, answered with what GitHub would
plausibly say, so the manifest and every later step can be checked before anything is public.
"""

from __future__ import annotations

import base64
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from zishu.errors import RemoteError, UsageError

from .github import DEFAULT_API_URL, GitHub, Request
from .manifest import Draft, character_draft
from .token import find_github_token, github_token

DEFAULT_CATALOG_REPO = "zishu-ai/zishu"  # the community catalog's repository; --catalog or ZISHU_CATALOG_REPO
DRY_RUN_LOGIN = "your-login"
REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
FORK_WAIT = (0.5, 1, 2, 4, 8)  # seconds between tries while a new fork is being made

Progress = Callable[[dict], None]  # {"step": str, "message": str, and for uploads "done", "total" (bytes)}


@dataclass
class Published:
    """What a publish did (or, with dry_run, would do)."""

    id: str
    version: str
    manifest: str  # the YAML committed
    release_url: str | None = None
    pull_request_url: str | None = None
    requests: list[str] = field(default_factory=list)


def publish_character(registry, rid: str, github: GitHub, *, repo: str | None = None,
                      catalog_repo: str = DEFAULT_CATALOG_REPO, license: str | None = None,
                      version: str | None = None, login: str | None = None,
                      progress: Progress = lambda event: None) -> Published:
    """Publish the user's character ``rid``; ``repo`` holds the release (default ``<login>/<name>``)."""
    def step(name: str, text: str, **extra: Any) -> None:
        progress({"step": name, "message": text, **extra})

    step("login", "Who you are on GitHub")
    login = _login(github, login)
    name = rid.partition("/")[2]
    repo = repo or f"{login}/{name}"
    step("manifest", "Building the catalog manifest")
    draft = character_draft(registry, rid, login=login, repo=repo, license=license, version=version)
    tag = f"v{draft.version}"

    release: dict = {}
    if draft.assets:  # a character with no files of its own needs no release
        step("release", f"Creating the release {tag} of {repo}")
        _ensure_repo(github, repo, login, draft)
        release = _create_release(github, repo, tag, draft)
    total = sum(a.size for a in draft.assets)
    done = 0
    for asset in draft.assets:
        step("upload", f"Uploading {asset.name}", done=done, total=total)
        with asset.path.open("rb") as stream:
            pretend = {"name": asset.asset, "size": asset.size, "state": "uploaded",
                       "browser_download_url": f"https://github.com/{repo}/releases/download/{tag}/{asset.asset}"}
            answer = github.upload(release["upload_url"], asset.asset, stream, asset.size, pretend=pretend)
        uploaded = answer.data or {}
        if uploaded.get("name") != asset.asset or uploaded.get("size") != asset.size:
            raise RemoteError(f"GitHub stored {asset.name} as {uploaded.get('name')!r} "
                              f"({uploaded.get('size')} bytes), not {asset.asset!r} ({asset.size} bytes)")
        draft.set_url(asset.name, str(uploaded["browser_download_url"]))
        done += asset.size
    if draft.assets:
        step("upload", "Uploaded every file", done=total, total=total)

    step("pull-request", f"Opening the pull request on {catalog_repo}")
    text, pr = _pull_request(github, catalog_repo, login, draft)
    step("done", f"Pull request: {pr}")
    return Published(draft.id, draft.version, text, release.get("html_url"), pr, [str(r) for r in github.sent])


def _login(github: GitHub, given: str | None) -> str:
    if github.dry_run:
        github.call("GET", "/user", pretend={"login": given or DRY_RUN_LOGIN})
        return given or DRY_RUN_LOGIN
    login = (github.call("GET", "/user").data or {}).get("login")
    if not isinstance(login, str) or not login:
        raise RemoteError("GitHub did not say whose token this is (GET /user has no login)")
    return login


def _ensure_repo(github: GitHub, repo: str, login: str, draft: Draft) -> None:
    """The release repository exists; the user's own is made (with a first commit) when missing."""
    found = github.call("GET", f"/repos/{repo}", ok=(200, 404), pretend={"full_name": repo})
    if found.status == 200:
        return
    owner, name = repo.split("/")
    if owner.lower() != login.lower():
        raise UsageError(f"--repo {repo}: no such repository, and only your own ({login}/...) can be created")
    body = {"name": name, "description": f"Files of the Zishu character {draft.id}", "auto_init": True}
    github.call("POST", "/user/repos", body, ok=(201,), pretend={"full_name": repo})


def _create_release(github: GitHub, repo: str, tag: str, draft: Draft) -> dict:
    body = {"tag_name": tag, "name": f"{draft.data['name']} {draft.version}",
            "body": f"Files of the Zishu character {draft.id} {draft.version}.", "draft": False}
    pretend = {"id": 1, "tag_name": tag, "html_url": f"https://github.com/{repo}/releases/tag/{tag}",
               "upload_url": f"https://uploads.github.com/repos/{repo}/releases/1/assets{{?name,label}}"}
    answer = github.call("POST", f"/repos/{repo}/releases", body, ok=(201, 422), pretend=pretend)
    if answer.status == 422:
        raise UsageError(f"the release {tag} already exists in {repo}: a published version never changes; "
                         "publish a new version (edit the character, or pass --version), "
                         "or delete that release on GitHub if nothing points at it yet")
    data = answer.data or {}
    if not isinstance(data.get("upload_url"), str):
        raise RemoteError(f"GitHub's answer to creating the release {tag} has no upload_url")
    return data


def _pull_request(github: GitHub, catalog: str, login: str, draft: Draft) -> tuple[str, str]:
    """Fork (if needed), branch, commit the manifest, open the pull request; (YAML, PR URL)."""
    upstream = github.call("GET", f"/repos/{catalog}", pretend={"full_name": catalog, "default_branch": "main",
                                                               "owner": {"login": catalog.split("/")[0]}}).data
    base = str(upstream.get("default_branch") or "main")
    owner = str((upstream.get("owner") or {}).get("login") or catalog.split("/")[0])
    fork = catalog
    if owner.lower() != login.lower():
        made = github.call("POST", f"/repos/{catalog}/forks", {"default_branch_only": True}, ok=(202, 200),
                           pretend={"full_name": f"{login}/{catalog.split('/')[1]}"}).data
        fork = str(made.get("full_name") or f"{login}/{catalog.split('/')[1]}")
    head = github.call("GET", f"/repos/{catalog}/git/ref/heads/{base}",
                       pretend={"ref": f"refs/heads/{base}", "object": {"sha": "0" * 40, "type": "commit"}}).data
    branch = f"publish/{draft.id.replace('/', '-')}-{draft.version}"
    ref_body = {"ref": f"refs/heads/{branch}", "sha": head["object"]["sha"]}
    for wait in (*FORK_WAIT, None):  # a fork just asked for may not be ready yet
        made_ref = github.call("POST", f"/repos/{fork}/git/refs", ref_body, ok=(201, 404, 409, 422))
        if made_ref.status == 201:
            break
        if made_ref.status == 422:
            raise UsageError(f"the branch {branch} already exists in {fork}: a pull request for "
                             f"{draft.id} {draft.version} was opened before; delete that branch to open it again")
        if wait is None:
            raise RemoteError(f"the fork {fork} was not ready to take the branch {branch}; run again in a minute")
        time.sleep(wait)

    path = draft.catalog_path()
    existing = github.call("GET", f"/repos/{fork}/contents/{path}?ref={branch}", ok=(200, 404),
                           pretend_status=404).data
    earlier, sha = _published_versions(existing, draft)
    text = draft.yaml(earlier)
    verb = "Add" if sha is None else "Add version"
    body = {"message": f"{verb} {draft.id} {draft.version}", "branch": branch,
            "content": base64.b64encode(text.encode()).decode()}
    if sha is not None:
        body["sha"] = sha
    github.call("PUT", f"/repos/{fork}/contents/{path}", body, ok=(200, 201),
                pretend={"commit": {"sha": "0" * 40}})
    pr_body = {"title": f"{verb} {draft.id} {draft.version}", "head": f"{fork.split('/')[0]}:{branch}",
               "base": base, "body": f"Published with `zishu publish`: {draft.data['summary']}"}
    pr = github.call("POST", f"/repos/{catalog}/pulls", pr_body, ok=(201,),
                     pretend={"number": 0, "html_url": f"https://github.com/{catalog}/pull/(dry run)"}).data
    return text, str(pr.get("html_url"))


def _published_versions(existing: Any, draft: Draft) -> tuple[list[dict], str | None]:
    """The versions already in the catalog's manifest of this id (to keep), and its blob sha."""
    if not isinstance(existing, dict) or "content" not in existing:
        return [], None
    try:
        old = yaml.safe_load(base64.b64decode(existing["content"]))
    except (ValueError, yaml.YAMLError):
        raise RemoteError(f"the catalog's {draft.catalog_path()} could not be read") from None
    versions = old.get("versions") if isinstance(old, dict) else None
    versions = versions if isinstance(versions, list) else []
    if any(isinstance(v, dict) and v.get("version") == draft.version for v in versions):
        raise UsageError(f"{draft.id} {draft.version} is already in the catalog: publish a new version")
    return versions, str(existing.get("sha"))


def publish(registry, rid: str, *, dry_run: bool = False, repo: str | None = None, catalog_repo: str | None = None,
            license: str | None = None, version: str | None = None, login: str | None = None,
            environ: Mapping[str, str] | None = None, on_request: Callable[[Request], None] = lambda r: None,
            progress: Progress = lambda event: None) -> Published:
    """``publish_character`` with the token, API and catalog this environment gives: the token from
    ``token.github_token`` (not needed for a dry run), ``ZISHU_GITHUB_API`` (default api.github.com),
    ``ZISHU_CATALOG_REPO`` (default ``DEFAULT_CATALOG_REPO``)."""
    environ = os.environ if environ is None else environ
    found = find_github_token(environ) if dry_run else None
    token = found[0] if found else (None if dry_run else github_token(environ))
    github = GitHub(token, environ.get("ZISHU_GITHUB_API") or DEFAULT_API_URL, dry_run=dry_run, on_request=on_request)
    catalog_repo = catalog_repo or environ.get("ZISHU_CATALOG_REPO") or DEFAULT_CATALOG_REPO
    for option, value in (("--repo", repo), ("--catalog", catalog_repo)):
        if value is not None and not REPO.match(value):
            raise UsageError(f"{option} {value!r} must be OWNER/REPO on GitHub")
    return publish_character(registry, rid, github, repo=repo, catalog_repo=catalog_repo, license=license,
                             version=version, login=login, progress=progress)
