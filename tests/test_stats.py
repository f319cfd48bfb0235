"""``zishu catalog stats`` against a local server speaking the GitHub REST API, and
``download_totals`` over synthetic snapshots."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import make_manifest, write_manifest
from zishu.cli import cli
from zishu.errors import CatalogBuildError, RemoteError
from zishu_catalog import stats
from zishu_catalog.github_releases import GitHubReleases, ReleaseAsset

DAY = dt.date(2026, 11, 21)


# ---- a fake GitHub API -----------------------------------------------------------------------


def send_json(handler, status: int, body, headers: dict | None = None) -> bool:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(raw)))
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    handler.wfile.write(raw)
    return True


def release(tag: str, **assets: int) -> dict:
    return {"tag_name": tag, "assets": [{"name": n.replace("_", "."), "download_count": c} for n, c in assets.items()]}


def paged_releases(server, path: str, pages: list[list[dict]]) -> None:
    """Serve ``pages`` at ``path``, linked with ``Link: <...>; rel="next"`` like GitHub does."""

    def answer(handler) -> bool:
        query = handler.path.partition("?")[2]
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        assert params.get("per_page") == "100"
        page = int(params.get("page", "1"))
        headers = {}
        if page < len(pages):
            headers["Link"] = (f'<{server.url}{path}?per_page=100&page={page + 1}>; rel="next", '
                               f'<{server.url}{path}?per_page=100&page={len(pages)}>; rel="last"')
        return send_json(handler, 200, pages[page - 1], headers)

    server.faults[path] = answer


def file(name: str, repo: str, tag: str, **extra) -> dict:
    return {"name": name, "url": f"https://github.com/{repo}/releases/download/{tag}/{name}",
            "sha256": "0" * 64, "size": 1, **extra}


def version(number: str, *files: dict) -> dict:
    return {"version": number, "released": "2026-01-01", "files": list(files)}


@pytest.fixture
def catalog(registry: Path, file_server) -> Path:
    """A catalog whose counted files are spread over two release pages, a gone repo and a hub."""
    write_manifest(registry, make_manifest("alice/llm", versions=[
        version("1.0.0", file("extra.bin", "alice/models", "v1.0.0"),
                file("model.gguf", "alice/models", "v1.0.0", primary=True)),
        version("0.9.0", file("model.gguf", "alice/models", "v0.9.0")),
    ]))
    write_manifest(registry, make_manifest("alice/small", versions=[
        version("2.0.0", file("small.gguf", "Alice/Models", "small-2.0.0")),
    ]))
    write_manifest(registry, make_manifest("bob/voice", versions=[
        version("1.0.0", file("voice.pth", "bob/gone", "v1.0.0")),
    ]))
    hub = "https://huggingface.co/carol/base/resolve/" + "a" * 40 + "/model.safetensors"
    write_manifest(registry, make_manifest("carol/base", versions=[
        version("1.0.0", {"name": "model.safetensors", "url": hub}, file("README.md", "carol/base", "v1.0.0")),
    ]))
    paged_releases(file_server, "/repos/alice/models/releases", [
        [release("v1.0.0", model_gguf=10, extra_bin=999), release("small-2.0.0", small_gguf=4)],
        [release("v0.9.0", model_gguf=5), release("v0.1.0")],
    ])
    paged_releases(file_server, "/repos/carol/base/releases", [[release("v1.0.0", README_md=70)]])
    file_server.faults["/repos/bob/gone/releases"] = lambda h: send_json(h, 404, {"message": "Not Found"})
    return registry


def run_stats(registry: Path, api: str, *extra: str):
    return CliRunner().invoke(cli, ["catalog", "stats", "--root", str(registry), "--date", DAY.isoformat(),
                                    "--api-url", api, *extra], catch_exceptions=False)


# ---- the command -----------------------------------------------------------------------------


def test_stats_writes_a_snapshot_of_counted_files(catalog: Path, file_server, monkeypatch):
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    result = run_stats(catalog, file_server.url)
    assert result.exit_code == 0, result.output

    path = catalog / "stats" / "2026-11-21.json"
    snapshot = json.loads(path.read_text())
    assert snapshot == {
        "date": "2026-11-21",
        "downloads": {
            "alice/llm": {"0.9.0": 5, "1.0.0": 10},  # the primary file, not extra.bin
            "alice/small": {"2.0.0": 4},  # same repository, written with other capitals
        },
    }
    # One listing per repository (two pages for alice/models), none for the hub-hosted resource.
    paths = [p for _, p, _ in file_server.requests]
    assert paths.count("/repos/alice/models/releases?per_page=100") == 1
    assert "/repos/alice/models/releases?per_page=100&page=2" in paths
    assert not any(p.startswith("/repos/carol/") for p in paths)
    assert "bob/gone not found (404)" in result.stderr
    assert "Authorization" not in file_server.requests[0][2]
    # Sorted keys, one line per resource: a diff shows what moved.
    assert path.read_text().splitlines()[3] == '    "alice/llm": {"0.9.0": 5, "1.0.0": 10},'


def test_token_is_sent_as_bearer(catalog: Path, file_server, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_secret")
    assert run_stats(catalog, file_server.url).exit_code == 0
    assert {h.get("Authorization") for _, _, h in file_server.requests} == {"Bearer ghs_secret"}
    assert all(h.get("Accept") == "application/vnd.github+json" for _, _, h in file_server.requests)


def test_api_url_comes_from_the_environment(catalog: Path, file_server, monkeypatch):
    monkeypatch.setenv("GITHUB_API_URL", file_server.url)
    result = CliRunner().invoke(cli, ["catalog", "stats", "--root", str(catalog), "--date", "2026-11-21"])
    assert result.exit_code == 0, result.output
    assert (catalog / "stats" / "2026-11-21.json").exists()


FAILURES = {
    "rate limit": (403, {"message": "API rate limit exceeded"},
                   {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1795000000"}, "rate limit reached"),
    "bad token": (401, {"message": "Bad credentials"}, {}, "GITHUB_TOKEN"),
    "server error": (502, {"message": "Bad Gateway"}, {}, "502"),
    "not json": (200, b"<html>oops</html>", {}, "not JSON"),
    "not a list": (200, {"message": "hello"}, {}, "not a list of releases"),
}


@pytest.mark.parametrize("failure", FAILURES)
def test_remote_failures_are_clear_and_leave_no_snapshot(catalog: Path, file_server, failure):
    status, body, headers, message = FAILURES[failure]
    file_server.faults["/repos/alice/models/releases"] = lambda h: send_json(h, status, body, headers)
    stats_dir = catalog / "stats"
    stats_dir.mkdir()
    (stats_dir / "2026-11-21.json").write_text('{"date": "2026-11-21", "downloads": {"old/one": {"1.0.0": 1}}}\n')

    result = run_stats(catalog, file_server.url)
    assert result.exit_code == 6
    assert message in result.stderr
    assert json.loads((stats_dir / "2026-11-21.json").read_text())["downloads"] == {"old/one": {"1.0.0": 1}}
    assert sorted(p.name for p in stats_dir.iterdir()) == ["2026-11-21.json"]


def test_unreachable_api_is_a_remote_error(catalog: Path):
    result = run_stats(catalog, "http://127.0.0.1:9")
    assert result.exit_code == 6
    assert "could not be reached" in result.stderr
    assert not (catalog / "stats").exists()


def test_next_page_on_another_server_is_refused(file_server):
    file_server.faults["/repos/a/b/releases"] = lambda h: send_json(
        h, 200, [], {"Link": '<https://evil.example/repos/a/b/releases?page=2>; rel="next"'})
    with pytest.raises(RemoteError, match="another server"):
        GitHubReleases(file_server.url, token="t").download_counts("a/b")


def test_only_github_release_urls_are_assets():
    asset = ReleaseAsset.from_url("https://github.com/o/r/releases/download/v1%2B2/a%20b.bin")
    assert asset == ReleaseAsset("o/r", "v1+2", "a b.bin")
    assert ReleaseAsset.from_url("https://huggingface.co/o/r/resolve/main/x.bin") is None
    assert ReleaseAsset.from_url("https://github.com/o/r/raw/" + "a" * 40 + "/x.bin") is None


def test_snapshot_is_replaced_atomically(tmp_path: Path, monkeypatch):
    stats_dir = tmp_path / "stats"
    stats.write_snapshot(stats_dir, DAY, {"a/b": {"1.0.0": 1}})
    before = (stats_dir / "2026-11-21.json").read_text()

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("zishu.files.os.replace", crash)
    with pytest.raises(OSError):
        stats.write_snapshot(stats_dir, DAY, {"a/b": {"1.0.0": 2}})
    assert (stats_dir / "2026-11-21.json").read_text() == before
    assert [p.name for p in stats_dir.iterdir()] == ["2026-11-21.json"]


# ---- download_totals ---------------------------------------------------------------------------


def write(stats_dir: Path, day: str, downloads: dict) -> None:
    stats.write_snapshot(stats_dir, dt.date.fromisoformat(day), downloads)


def test_totals_without_snapshots_are_empty(tmp_path: Path):
    assert stats.download_totals(tmp_path / "missing") == {}
    assert stats.download_totals(tmp_path) == {}


def test_one_snapshot_gives_totals_and_zero_recent(tmp_path: Path):
    write(tmp_path, "2026-11-21", {"a/x": {"1.0.0": 7, "1.1.0": 3}})
    assert stats.download_totals(tmp_path) == {"a/x": (10, 0)}


def test_recent_is_measured_against_the_newest_snapshot_30_days_older(tmp_path: Path):
    write(tmp_path, "2026-10-01", {"a/x": {"1.0.0": 10}})
    write(tmp_path, "2026-10-11", {"a/x": {"1.0.0": 20}})  # exactly 30 days before the latest: the base
    write(tmp_path, "2026-10-20", {"a/x": {"1.0.0": 40}})
    write(tmp_path, "2026-11-10", {"a/x": {"1.0.0": 50, "2.0.0": 25}, "b/new": {"0.1.0": 6}})
    (tmp_path / "README.md").write_text("not a snapshot")
    (tmp_path / ".2026-11-11.json.abc.tmp").write_text("{")
    assert stats.download_totals(tmp_path) == {"a/x": (75, 55), "b/new": (6, 6)}


def test_recent_falls_back_to_the_oldest_snapshot(tmp_path: Path):
    write(tmp_path, "2026-11-01", {"a/x": {"1.0.0": 10}})
    write(tmp_path, "2026-11-05", {"a/x": {"1.0.0": 12}})
    write(tmp_path, "2026-11-10", {"a/x": {"1.0.0": 15}})
    assert stats.download_totals(tmp_path) == {"a/x": (15, 5)}


def test_today_ignores_later_snapshots_and_counts_never_go_negative(tmp_path: Path):
    write(tmp_path, "2026-09-01", {"a/x": {"1.0.0": 100}})
    write(tmp_path, "2026-10-15", {"a/x": {"1.0.0": 3}})  # the asset was replaced: counts restarted
    write(tmp_path, "2026-12-01", {"a/x": {"1.0.0": 999}})
    assert stats.download_totals(tmp_path, today=dt.date(2026, 11, 21)) == {"a/x": (3, 0)}
    assert stats.download_totals(tmp_path, today=dt.date(2026, 8, 1)) == {}


def test_a_broken_snapshot_is_reported(tmp_path: Path):
    (tmp_path / "2026-11-21.json").write_text('{"date": "2026-11-21"}')
    with pytest.raises(CatalogBuildError, match=re.escape("2026-11-21.json is not a download snapshot")):
        stats.download_totals(tmp_path)
