"""``zishu publish``: a local character's files go to a GitHub release and its manifest to a pull request
on the catalog, end to end against ``local_github.LocalGitHub`` (the GitHub REST endpoints on
127.0.0.1); the catalog's own ``validate --online`` passes on the manifest it committed."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import keyring
import pytest
import yaml
from click.testing import CliRunner
from keyring.backend import KeyringBackend

from local_github import LocalGitHub
from zishu.catalog import RESOURCE, read_manifest
from zishu.cli import cli
from zishu_catalog.validate import validate

TOKEN = "ghp_test_token"
CATALOG = "zishu-ai/zishu"
MANIFEST_PATH = "registry_index/resources/alice/aria.yaml"
AVATAR = b"\x89PNG\r\n\x1a\n" + os.urandom(2000)
CALM = b"RIFF" + os.urandom(3000)


def make_character(home: Path, version: str = "1.0.0") -> Path:
    """The user's own character local/aria, with an avatar and a voice sample in a sub-folder."""
    folder = home / "resources" / "local" / "aria" / version
    (folder / "voices").mkdir(parents=True)
    (folder / "avatar.png").write_bytes(AVATAR)
    (folder / "voices" / "calm.wav").write_bytes(CALM)
    data = {
        "id": "local/aria", "kind": "character", "name": "Aria", "summary": "A calm guide.",
        "license": "LicenseRef-local", "maintainers": ["local"], "tags": ["guide"],
        "versions": [{"version": version, "released": "2026-12-01", "files": [], "notes": "Made in Zishu."}],
        "spec": {"persona": "You are Aria, a calm guide.", "greetings": ["Hello."],
                 "avatar": {"image": "avatar.png"},
                 "voice": {"engine": "espeak-ng", "reference_audio": {"calm": "voices/calm.wav"}}},
    }
    (folder / "manifest.json").write_bytes(RESOURCE.dump_json(RESOURCE.validate_python(data)))
    (home / "registry.json").unlink(missing_ok=True)  # rebuilt from the folders
    return folder


@pytest.fixture
def github(tmp_path, monkeypatch):
    """A local GitHub that knows alice's token and holds the catalog; ZISHU_HOME with local/aria."""
    home = tmp_path / "home"
    make_character(home)
    monkeypatch.setenv("ZISHU_HOME", str(home))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    for name in ("GITHUB_TOKEN", "ZISHU_GITHUB_TOKEN", "ZISHU_CATALOG_REPO"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "no-gh"))  # no gh CLI to ask
    with LocalGitHub(tokens={TOKEN: "alice"}) as server:
        server.add_repo(CATALOG, {"README.md": b"# catalog\n"})
        monkeypatch.setenv("ZISHU_GITHUB_API", server.url)
        yield server


def publish(*args: str):
    return CliRunner().invoke(cli, ["publish", "local/aria", *args], catch_exceptions=False)


def test_publish_uploads_the_files_and_opens_a_pull_request_that_validates(github, registry, monkeypatch):
    monkeypatch.setenv("ZISHU_GITHUB_TOKEN", TOKEN)
    result = publish("--license", "CC-BY-4.0", "--catalog", CATALOG)
    assert result.exit_code == 0, result.output
    assert "Pull request: https://github.com/zishu-ai/zishu/pull/1" in result.output

    # the requests, in order, each with the token
    calls = [(m, p.split("?")[0]) for m, p in github.calls()]
    releases = github.repo("alice/aria").releases
    assert calls == [
        ("GET", "/user"),
        ("GET", "/repos/alice/aria"),
        ("POST", "/user/repos"),
        ("POST", "/repos/alice/aria/releases"),
        ("POST", f"/repos/alice/aria/releases/{releases[0]['id']}/assets"),
        ("POST", f"/repos/alice/aria/releases/{releases[0]['id']}/assets"),
        ("GET", f"/repos/{CATALOG}"),
        ("POST", f"/repos/{CATALOG}/forks"),
        ("GET", f"/repos/{CATALOG}/git/ref/heads/main"),
        ("POST", "/repos/alice/zishu/git/refs"),
        ("GET", f"/repos/alice/zishu/contents/{MANIFEST_PATH}"),
        ("PUT", f"/repos/alice/zishu/contents/{MANIFEST_PATH}"),
        ("POST", f"/repos/{CATALOG}/pulls"),
    ]
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in github.requests)
    assert all(r.headers["X-GitHub-Api-Version"] == "2022-11-28" for r in github.requests)

    # the release holds the files under flat asset names, byte for byte
    assert releases[0]["tag_name"] == "v1.0.0"
    assert github.repo("alice/aria").assets == {("v1.0.0", "avatar.png"): AVATAR,
                                                ("v1.0.0", "voices.calm.wav"): CALM}
    uploads = [r for r in github.requests if r.path.endswith(("?name=avatar.png", "?name=voices.calm.wav"))]
    assert [r.headers["Content-Type"] for r in uploads] == ["application/octet-stream"] * 2

    # the pull request: from the fork's branch to the catalog's default branch
    (pull,) = github.pulls
    assert pull["head"]["label"] == "alice:publish/alice-aria-1.0.0" and pull["base"]["ref"] == "main"
    committed = github.repo("alice/zishu").files["publish/alice-aria-1.0.0"][MANIFEST_PATH]
    assert MANIFEST_PATH not in github.repo(CATALOG).files["main"]  # only through the pull request

    # the manifest: the character's own fields, sub-folders kept, URLs the uploads' download URLs
    data = yaml.safe_load(committed)
    assert data["id"] == "alice/aria" and data["maintainers"] == ["alice"] and data["license"] == "CC-BY-4.0"
    assert data["name"] == "Aria" and data["spec"]["voice"]["reference_audio"] == {"calm": "voices/calm.wav"}
    files = {f["name"]: f for f in data["versions"][0]["files"]}
    assert files["voices/calm.wav"]["sha256"] == hashlib.sha256(CALM).hexdigest()
    assert files["voices/calm.wav"]["url"] == f"{github.url}/alice/aria/releases/download/v1.0.0/voices.calm.wav"

    # the catalog's own validate, downloading every file from the release
    path = registry / "resources" / "alice" / "aria.yaml"
    path.parent.mkdir(parents=True)
    path.write_bytes(committed)
    outcome = validate(registry, [str(path)], online=True, allow_local_urls=True)
    assert outcome.problems == []
    assert read_manifest(path).versions[0].files[0].size == len(AVATAR)


def test_a_new_version_keeps_the_published_ones(github, registry, monkeypatch, tmp_path):
    monkeypatch.setenv("ZISHU_GITHUB_TOKEN", TOKEN)
    assert publish("--license", "CC-BY-4.0", "--catalog", CATALOG).exit_code == 0
    github.merge(github.pulls[0])  # the catalog merged the first pull request; the fork's main is now behind
    make_character(tmp_path / "home", "1.0.1")

    result = publish("--license", "CC-BY-4.0", "--catalog", CATALOG)
    assert result.exit_code == 0, result.output
    data = yaml.safe_load(github.repo("alice/zishu").files["publish/alice-aria-1.0.1"][MANIFEST_PATH])
    assert [v["version"] for v in data["versions"]] == ["1.0.1", "1.0.0"]
    assert github.pulls[-1]["title"] == "Add version alice/aria 1.0.1"
    put = [r for r in github.requests if r.method == "PUT"][-1].json()
    assert "sha" in put  # an update names the blob it replaces, as GitHub requires


def test_dry_run_prints_every_request_and_sends_none(github):
    result = publish("--dry-run", "--license", "CC-BY-4.0", "--login", "alice", "--catalog", CATALOG)
    assert result.exit_code == 0, result.output
    assert github.requests == []
    lines = [line for line in result.output.splitlines() if line.startswith("would send: ")]
    assert lines[0] == f"would send: GET {github.url}/user"
    assert any(line.startswith(f"would send: POST {github.url}/repos/alice/aria/releases ") and '"tag_name": "v1.0.0"'
               in line for line in lines)
    assert "would send: POST https://uploads.github.com/repos/alice/aria/releases/1/assets?name=voices.calm.wav" \
           "  3,004 bytes of application/octet-stream" in lines
    assert lines[-1].startswith(f"would send: POST {github.url}/repos/{CATALOG}/pulls ")
    assert "content\": \"<" in result.output  # the manifest's base64 is summarised, not dumped
    assert "name: voices/calm.wav" in result.output


def test_no_token_says_the_three_ways_to_give_one(github):
    from keyring.backends import null

    previous = keyring.get_keyring()
    keyring.set_keyring(null.Keyring())  # whatever another test in this process left: no keyring here
    try:
        result = publish("--license", "CC-BY-4.0")
    finally:
        keyring.set_keyring(previous)
    assert result.exit_code == 2, result.output
    assert "gh auth login" in result.output and "ZISHU_GITHUB_TOKEN" in result.output
    assert "keyring set zishu github" in result.output
    assert github.requests == []


def test_a_refused_token_is_a_clear_error(github, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "revoked")
    result = publish("--license", "CC-BY-4.0")
    assert result.exit_code == 6
    assert "GitHub refused the token (401 Bad credentials)" in result.output
    assert github.calls() == [("GET", "/user")]


def test_an_existing_release_is_refused_before_anything_is_uploaded(github, monkeypatch):
    monkeypatch.setenv("ZISHU_GITHUB_TOKEN", TOKEN)
    github.add_repo("alice/aria", {"README.md": b"x"}).releases.append(
        {"id": 99, "tag_name": "v1.0.0", "assets": []})
    result = publish("--license", "CC-BY-4.0")
    assert result.exit_code == 2
    assert "the release v1.0.0 already exists in alice/aria" in result.output
    assert github.calls()[-1] == ("POST", "/repos/alice/aria/releases")
    assert github.pulls == []


class OneSecret(KeyringBackend):
    """An OS keyring holding one password (the keyring library's own backend interface)."""

    priority = 1  # type: ignore[assignment]

    def get_password(self, service, username):
        return TOKEN if (service, username) == ("zishu", "github") else None

    def set_password(self, service, username, password):
        raise NotImplementedError

    def delete_password(self, service, username):
        raise NotImplementedError


def test_the_token_can_come_from_the_os_keyring(github):
    previous = keyring.get_keyring()
    keyring.set_keyring(OneSecret())
    try:
        result = publish("--license", "CC-BY-4.0", "--catalog", CATALOG)
    finally:
        keyring.set_keyring(previous)
    assert result.exit_code == 0, result.output
    assert github.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"


def test_a_character_without_a_license_or_naming_a_local_part_is_refused(github, monkeypatch, tmp_path):
    monkeypatch.setenv("ZISHU_GITHUB_TOKEN", TOKEN)
    result = publish()
    assert result.exit_code == 2 and "license" in result.output and "--license" in result.output
    folder = tmp_path / "home" / "resources" / "local" / "aria" / "1.0.0"
    data = json.loads((folder / "manifest.json").read_text())
    data["spec"]["avatar"] = {"live2d": "local/my-model"}
    (folder / "manifest.json").write_text(json.dumps(data))
    local_part = publish("--license", "CC-BY-4.0")
    assert local_part.exit_code == 2 and "spec.avatar.live2d: local/my-model is your own" in local_part.output
    assert [m for m, _ in github.calls()] == ["GET", "GET"]  # /user twice, nothing else
