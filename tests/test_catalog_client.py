"""The host's catalog client against a real HTTP server on 127.0.0.1 that answers conditional GETs,
against built catalogs on disk, and the bundled snapshot (which must match registry_index/)."""

from __future__ import annotations

import hashlib
import json
import socket
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import LoopbackServer, make_manifest
from zishu.catalog import RESOURCE, SNAPSHOT, CatalogClient
from zishu.cli import cli
from zishu.errors import InstallPlanError, RemoteError, UnknownResource, UsageError, exit_status
from zishu_catalog.build.index import Downloads, index_entries, write_api
from zishu_catalog.snapshot import write_snapshot

REPO = Path(__file__).resolve().parent.parent


# ---- a small catalog -------------------------------------------------------------------------


def _manifest(id, kind, name, summary, tags, license, released, base_model=None):
    data = make_manifest(id, kind, name=name, summary=summary, tags=tags, license=license)
    data["versions"][0]["released"] = released
    if base_model:
        data["spec"]["base_model"] = base_model
    return data


MANIFESTS = [
    _manifest("alice/moon-llm", "model", "Moon", "A small chat model.", ["llm", "chinese"], "Apache-2.0",
              "2026-01-01", base_model="Qwen/Qwen2.5-0.5B"),
    _manifest("bob/moonlight-lora", "lora", "Moonlight Painter", "Paints at night.", ["anime", "image"],
              "CC-BY-NC-4.0", "2026-03-01", base_model="runwayml/stable-diffusion-v1-5"),
    _manifest("carol/night-voice", "voice", "Night Whisper", "A calm voice.", ["moon", "tts"], "MIT", "2026-02-01"),
    _manifest("dave/helper", "character", "Helper", "Talks about the moon.", ["companion"], "MIT", "2026-04-01"),
    _manifest("erin/blue-moon", "plugin", "Blue Moon Plugin", "Adds a panel.", ["panel"], "Apache-2.0", "2026-05-01"),
    _manifest("frank/moon-tools", "model", "Tools", "Utilities.", ["tools"], "Apache-2.0", "2025-12-01"),
]
DOWNLOADS = {  # id → (all time, last 30 days)
    "alice/moon-llm": (500, 5),
    "bob/moonlight-lora": (100, 80),
    "carol/night-voice": (300, 10),
    "dave/helper": (50, 50),
    "erin/blue-moon": (50, 50),
}


def write_catalog(out: Path, manifests: list[dict] = MANIFESTS) -> None:
    """The JSON API of a built catalog (what ``zishu catalog build`` writes besides the site)."""
    resources = {m["id"]: RESOURCE.validate_python(m) for m in manifests}
    downloads = {rid: Downloads(*d) for rid, d in DOWNLOADS.items() if rid in resources}
    write_api(out, resources, index_entries(resources, downloads), downloads, "{}\n")


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    out = tmp_path / "catalog"
    write_catalog(out)
    return out


# ---- a static server that answers conditional GETs --------------------------------------------


class CatalogServer(LoopbackServer):
    """Serves a folder with ETag and Last-Modified, and answers 304 to a matching conditional GET.

    ``requests`` records (path, request headers, status) of every request; set ``fail_with`` to
    an HTTP status to answer every request with it.
    """

    def __init__(self, root: Path) -> None:
        self.requests: list[tuple[str, dict, int]] = []
        self.fail_with: int | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if server.fail_with:
                    return self._answer(path, server.fail_with)
                file = (root / path.lstrip("/")).resolve()
                if not file.is_relative_to(root.resolve()) or not file.is_file():
                    return self._answer(path, 404)
                body = file.read_bytes()
                etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
                mtime = int(file.stat().st_mtime)
                headers = {"ETag": etag, "Last-Modified": formatdate(mtime, usegmt=True)}
                if_none_match = self.headers.get("If-None-Match")
                if_modified_since = self.headers.get("If-Modified-Since")
                if if_none_match is not None:  # takes precedence over If-Modified-Since (RFC 9110)
                    if etag in [t.strip() for t in if_none_match.split(",")]:
                        return self._answer(path, 304, headers=headers)
                elif if_modified_since and mtime <= parsedate_to_datetime(if_modified_since).timestamp():
                    return self._answer(path, 304, headers=headers)
                self._answer(path, 200, body, {**headers, "Content-Type": "application/json"})

            def _answer(self, path: str, status: int, body: bytes = b"", headers: dict | None = None) -> None:
                server.requests.append((path, dict(self.headers), status))
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        super().__init__(Handler)

    @property
    def url(self) -> str:
        return super().url + "/"

    def stop(self) -> None:
        self.__exit__(None, None, None)


@pytest.fixture
def server(catalog: Path):
    with CatalogServer(catalog) as server:
        yield server


def dead_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def ids(entries: list[dict]) -> list[str]:
    return [e["id"] for e in entries]


INDEX = "/api/v1/index.json"


# ---- fetching and caching --------------------------------------------------------------------


def test_first_index_fetches_and_a_second_client_reads_the_cache_without_network(server, tmp_path):
    cache = tmp_path / "cache"
    first = CatalogClient(server.url, cache_dir=cache)
    assert sorted(ids(first.index())) == sorted(m["id"] for m in MANIFESTS)
    assert [(p, s) for p, _, s in server.requests] == [(INDEX, 200)]
    first.index()
    assert len(server.requests) == 1  # memoised

    second = CatalogClient(server.url, cache_dir=cache)
    assert second.index() == first.index()
    assert len(server.requests) == 1  # straight from the cache
    assert second.source_used == server.url and not second.offline and second.warning is None

    meta = json.loads(next(cache.glob("*/index.meta.json")).read_text())
    assert meta["source"] == server.url and meta["etag"].startswith('"')
    assert meta["last_modified"] and meta["fetched_at"]


def test_update_sends_the_cached_validators_and_a_304_changes_nothing(server, tmp_path):
    client = CatalogClient(server.url, cache_dir=tmp_path / "cache")
    entries = client.index()
    meta = json.loads(next((tmp_path / "cache").glob("*/index.meta.json")).read_text())

    assert client.update() is False
    path, headers, status = server.requests[-1]
    assert (path, status) == (INDEX, 304)
    assert headers["If-None-Match"] == meta["etag"]
    assert headers["If-Modified-Since"] == meta["last_modified"]
    assert client.index() == entries and not client.offline


def test_update_after_the_index_changed_returns_true_and_the_new_entries(server, catalog, tmp_path):
    cache = tmp_path / "cache"
    client = CatalogClient(server.url, cache_dir=cache)
    client.index()
    added = _manifest("gina/star", "voice", "Star", "A new voice.", ["tts"], "MIT", "2026-06-01")
    write_catalog(catalog, [*MANIFESTS, added])

    assert client.update() is True
    assert server.requests[-1][2] == 200
    assert "gina/star" in ids(client.index())
    assert "gina/star" in ids(CatalogClient(server.url, cache_dir=cache).index())  # cached for the next run
    assert client.update() is False  # and now unchanged again
    assert client.offline is False and client.offline_reason is None


def test_server_down_update_returns_false_and_the_cache_still_serves(server, tmp_path):
    cache = tmp_path / "cache"
    entries = CatalogClient(server.url, cache_dir=cache).index()
    server.stop()

    client = CatalogClient(server.url, cache_dir=cache)
    assert client.update() is False
    assert client.offline is True and client.offline_reason.endswith(f"{INDEX}: cannot connect")
    assert "could not be reached" in client.warning and "cannot connect" in client.warning
    assert client.index() == entries
    assert client.source_used == server.url  # the cache, not the snapshot
    assert ids(client.search("moon", limit=1)) == ["alice/moon-llm"]


def test_no_cache_and_no_server_falls_back_to_the_bundled_snapshot(tmp_path):
    client = CatalogClient(dead_url(), cache_dir=tmp_path / "cache")
    snapshot = json.loads((SNAPSHOT / "api/v1/index.json").read_text())["resources"]
    assert client.index() == snapshot
    assert client.offline is True
    assert client.source_used == str(SNAPSHOT)
    assert "bundled" in client.warning and "could not be reached" in client.warning
    assert client.resource("zishu/xiaoyu").kind == "character"  # details come from the snapshot too
    assert not (tmp_path / "cache").exists()  # nothing was cached from the snapshot


def test_a_server_error_counts_as_unreachable(tmp_path, catalog):
    (catalog / "api/v1/index.json").unlink()  # the server answers 404
    with CatalogServer(catalog) as server:
        client = CatalogClient(server.url, cache_dir=tmp_path / "cache")
        assert client.update() is False
        assert "not found" in client.warning and client.source_used == str(SNAPSHOT)


def test_back_online_after_the_snapshot_fallback(server, tmp_path):
    server.fail_with = 503
    client = CatalogClient(server.url, cache_dir=tmp_path / "cache")
    assert client.source_used == client.source  # nothing decided before first use
    client.index()
    assert client.source_used == str(SNAPSHOT) and "HTTP 503" in client.warning

    server.fail_with = None
    assert client.update() is True
    assert client.source_used == server.url and client.warning is None and not client.offline
    assert len(client.index()) == len(MANIFESTS)
    assert client.resource("dave/helper").name == "Helper"  # details from the catalog again


@pytest.mark.parametrize("garbage", [b"", b"{not json", b"[]", b'{"format": 1}', b'{"format": 99, "resources": []}'])
def test_a_corrupt_cached_index_is_fetched_again(server, tmp_path, garbage):
    cache = tmp_path / "cache"
    entries = CatalogClient(server.url, cache_dir=cache).index()
    next(cache.glob("*/index.json")).write_bytes(garbage)

    client = CatalogClient(server.url, cache_dir=cache)
    assert client.index() == entries
    path, headers, status = server.requests[-1]
    assert (path, status) == (INDEX, 200) and "If-None-Match" not in headers  # fetched whole
    assert CatalogClient(server.url, cache_dir=cache).index() == entries  # and cached again


def test_metadata_for_another_body_is_ignored(server, tmp_path):
    cache = tmp_path / "cache"
    CatalogClient(server.url, cache_dir=cache).index()
    meta = next(cache.glob("*/index.meta.json"))
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "sha256": "0" * 64}))
    assert CatalogClient(server.url, cache_dir=cache).update() is False
    assert "If-None-Match" not in server.requests[-1][1]  # its ETag might describe other bytes
    meta.write_text("{broken")
    assert len(CatalogClient(server.url, cache_dir=cache).index()) == len(MANIFESTS)  # body still serves


# ---- resource details ------------------------------------------------------------------------


def test_resource_returns_the_manifest_and_caches_it(server, tmp_path):
    cache = tmp_path / "cache"
    client = CatalogClient(server.url, cache_dir=cache)
    client.index()
    resource = client.resource("bob/moonlight-lora")
    assert (resource.id, resource.kind, resource.name) == ("bob/moonlight-lora", "lora", "Moonlight Painter")
    assert resource.spec.base_model == "runwayml/stable-diffusion-v1-5"
    assert client.detail("bob/moonlight-lora")["downloads"] == {"total": 100, "last_30_days": 80}
    detail_path = "/api/v1/resources/bob/moonlight-lora.json"
    assert [p for p, _, _ in server.requests].count(detail_path) == 1  # the second call used the cache

    again = CatalogClient(server.url, cache_dir=cache)
    assert again.resource("bob/moonlight-lora") == resource
    assert [p for p, _, _ in server.requests].count(detail_path) == 1

    again.update()  # after an update, the next look is a conditional GET
    assert again.resource("bob/moonlight-lora") == resource
    path, headers, status = server.requests[-1]
    assert (path, status) == (detail_path, 304) and "If-None-Match" in headers
    again.resource("bob/moonlight-lora")
    assert server.requests[-1][0] == detail_path and len(server.requests) == 4  # checked once per update


def test_a_corrupt_cached_detail_is_fetched_again(server, tmp_path):
    cache = tmp_path / "cache"
    CatalogClient(server.url, cache_dir=cache).resource("erin/blue-moon")
    next(cache.glob("*/resources/erin/blue-moon.json")).write_bytes(b'{"id": "erin/blue')
    assert CatalogClient(server.url, cache_dir=cache).resource("erin/blue-moon").kind == "plugin"
    assert server.requests[-1][0] == "/api/v1/resources/erin/blue-moon.json"
    assert server.requests[-1][2] == 200 and "If-None-Match" not in server.requests[-1][1]


def test_resource_details_work_offline_from_the_cache(server, tmp_path):
    cache = tmp_path / "cache"
    online = CatalogClient(server.url, cache_dir=cache)
    online.resource("alice/moon-llm")
    online.update()  # the cached detail is now due for a check
    server.stop()

    offline = CatalogClient(server.url, cache_dir=cache)
    assert offline.resource("alice/moon-llm").name == "Moon"  # stale but usable
    assert offline.offline is True
    with pytest.raises(RemoteError, match="carol/night-voice"):
        offline.resource("carol/night-voice")  # in the index, never fetched
    with pytest.raises(UnknownResource):
        offline.resource("nobody/nothing")  # not in the index either


def test_unknown_resource_names_the_id_and_suggests_search(server, tmp_path):
    client = CatalogClient(server.url, cache_dir=tmp_path / "cache")
    with pytest.raises(UnknownResource) as caught:
        client.resource("alice/no-such-thing")
    error = caught.value
    assert "alice/no-such-thing" in str(error) and "zishu search no such thing" in str(error)
    assert error.id == "alice/no-such-thing" and error.code == "UNKNOWN_RESOURCE"
    assert isinstance(error, InstallPlanError) and exit_status(error) == 7

    before = len(server.requests)
    with pytest.raises(UnknownResource):
        client.resource("../../etc/passwd")  # not an id: never becomes a URL or a cache path
    assert len(server.requests) == before


# ---- local sources ---------------------------------------------------------------------------


@pytest.mark.parametrize("as_url", [True, False], ids=["file-url", "plain-path"])
def test_a_built_catalog_on_disk_needs_no_network_and_no_cache(catalog, tmp_path, as_url):
    source = catalog.as_uri() if as_url else str(catalog)
    client = CatalogClient(source, cache_dir=tmp_path / "cache")
    assert client.source == str(catalog)
    assert len(client.index()) == len(MANIFESTS)
    assert client.resource("carol/night-voice").spec.engine == "espeak-ng"
    with pytest.raises(UnknownResource, match="carol/nope"):
        client.resource("carol/nope")
    assert client.update() is False
    write_catalog(catalog, MANIFESTS[:2])
    assert client.update() is True and len(client.index()) == 2
    assert not (tmp_path / "cache").exists()


def test_a_folder_that_is_not_a_catalog_is_a_clear_error(tmp_path):
    with pytest.raises(UsageError, match="not a built Zishu catalog"):
        CatalogClient(str(tmp_path), cache_dir=tmp_path / "cache").index()


def _swap_detail(catalog: Path, asked: str, other: str) -> None:
    """Make the detail file of ``asked`` a copy of ``other``'s (a catalog that lies about ids)."""
    folder = catalog / "api" / "v1" / "resources"
    (folder / f"{asked}.json").write_bytes((folder / f"{other}.json").read_bytes())


@pytest.mark.parametrize("where", ["http", "folder"])
def test_a_detail_whose_id_is_another_is_refused_naming_both(catalog, tmp_path, where):
    _swap_detail(catalog, "alice/moon-llm", "dave/helper")
    if where == "http":
        with CatalogServer(catalog) as server:
            client = CatalogClient(server.url, cache_dir=tmp_path / "cache")
            client.index()
            with pytest.raises(RemoteError) as caught:
                client.resource("alice/moon-llm")
    else:
        with pytest.raises(RemoteError) as caught:
            CatalogClient(str(catalog), cache_dir=tmp_path / "cache").resource("alice/moon-llm")
    assert "alice/moon-llm" in str(caught.value) and "dave/helper" in str(caught.value)
    assert caught.value.code == "REMOTE_FAILED"


def test_install_never_puts_a_resource_under_an_id_the_user_did_not_ask_for(catalog, tmp_path):
    import os
    import subprocess
    import sys

    _swap_detail(catalog, "alice/moon-llm", "dave/helper")
    env = {**os.environ, "ZISHU_HOME": str(tmp_path / "home"), "ZISHU_CATALOG": str(catalog)}
    done = subprocess.run([sys.executable, "-m", "zishu.cli", "install", "alice/moon-llm"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode in (RemoteError.exit_status, InstallPlanError.exit_status), done.stderr
    assert "Traceback" not in done.stderr and "about 'dave/helper' instead" in done.stderr
    assert not (tmp_path / "home" / "resources" / "dave").exists()


BAD_ENTRIES = {
    "name-null": lambda e: {**e, "name": None},
    "tags-not-text": lambda e: {**e, "tags": [{"a": 1}]},
    "kind-missing": lambda e: {k: v for k, v in e.items() if k != "kind"},
    "downloads-text": lambda e: {**e, "downloads": "many"},
    "deep": lambda e: {**e, "extra": "DEEP"},  # replaced by nesting deeper than the parser goes
}


def _spoil_index(catalog: Path, how: str) -> Path:
    path = catalog / "api" / "v1" / "index.json"
    data = json.loads(path.read_text())
    data["resources"][0] = BAD_ENTRIES[how](data["resources"][0])
    text = json.dumps(data)
    if how == "deep":
        text = text.replace('"DEEP"', "[" * 100_000 + "]" * 100_000)
    path.write_text(text)
    return path


@pytest.mark.parametrize("how", list(BAD_ENTRIES))
def test_a_catalog_index_with_bad_entries_is_one_clear_error_for_zishu_search(catalog, tmp_path, how):
    import os
    import subprocess
    import sys

    path = _spoil_index(catalog, how)
    env = {**os.environ, "ZISHU_HOME": str(tmp_path / "home"), "ZISHU_CATALOG": str(catalog)}
    done = subprocess.run([sys.executable, "-m", "zishu.cli", "search", "moon"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == UsageError.exit_status, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert str(path) in done.stderr and "zishu catalog build" in done.stderr

    # served over HTTP, the same index is unusable: the client says so and shows the bundled snapshot
    with CatalogServer(catalog) as server:
        client = CatalogClient(server.url, cache_dir=tmp_path / "cache")
        assert client.search("moon") is not None
        assert client.offline and client.source_used == str(SNAPSHOT)
        assert ("nested too deep" if how == "deep" else "index entry 0") in client.warning


def test_the_environment_picks_the_catalog_and_the_cache(server, tmp_path, monkeypatch):
    monkeypatch.setenv("ZISHU_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ZISHU_CATALOG", raising=False)
    assert CatalogClient().source == str(SNAPSHOT)
    assert CatalogClient().index() == json.loads((SNAPSHOT / "api/v1/index.json").read_text())["resources"]

    monkeypatch.setenv("ZISHU_CATALOG", server.url.rstrip("/"))
    client = CatalogClient()
    assert client.source == server.url
    client.index()
    assert list((tmp_path / "home" / "cache" / "catalog").glob("*/index.json"))


# ---- search ----------------------------------------------------------------------------------


@pytest.fixture
def local(catalog: Path, tmp_path: Path) -> CatalogClient:
    return CatalogClient(str(catalog), cache_dir=tmp_path / "cache")


def test_search_ranks_like_the_site(local):
    # exact name > name prefix > name contains > tag > id > summary
    assert ids(local.search("moon")) == [
        "alice/moon-llm", "bob/moonlight-lora", "erin/blue-moon", "carol/night-voice", "frank/moon-tools",
        "dave/helper",
    ]
    assert ids(local.search("MOON calm")) == ["carol/night-voice"]  # every word must match
    assert local.search("moon zebra") == []
    assert ids(local.search("moon", limit=2)) == ["alice/moon-llm", "bob/moonlight-lora"]


def test_search_filters(local):
    assert ids(local.search(kind="lora")) == ["bob/moonlight-lora"]
    assert ids(local.search(tag="tts")) == ["carol/night-voice"]
    assert ids(local.search(license="mit")) == ["carol/night-voice", "dave/helper"]
    assert ids(local.search(base_model="qwen")) == ["alice/moon-llm"]
    assert ids(local.search(base_model="STABLE-diffusion")) == ["bob/moonlight-lora"]
    assert ids(local.search("moon", kind="model")) == ["alice/moon-llm", "frank/moon-tools"]
    assert ids(local.search("kind:voice moon")) == ["carol/night-voice"]  # the site's query syntax
    assert ids(local.search("base:runwayml")) == ["bob/moonlight-lora"]
    assert local.search(kind="voice", tag="anime") == []


@pytest.mark.parametrize("sort, expected", [
    ("popular", ["alice/moon-llm", "carol/night-voice", "bob/moonlight-lora", "dave/helper", "erin/blue-moon",
                 "frank/moon-tools"]),
    ("trending", ["bob/moonlight-lora", "dave/helper", "erin/blue-moon", "carol/night-voice", "alice/moon-llm",
                  "frank/moon-tools"]),
    ("new", ["erin/blue-moon", "dave/helper", "bob/moonlight-lora", "carol/night-voice", "alice/moon-llm",
             "frank/moon-tools"]),
    ("name", ["erin/blue-moon", "dave/helper", "alice/moon-llm", "bob/moonlight-lora", "carol/night-voice",
              "frank/moon-tools"]),
])
def test_search_sort_orders_with_ties_by_id(local, sort, expected):
    assert ids(local.search(sort=sort)) == expected


def test_search_rejects_unknown_sorts_and_kinds(local):
    with pytest.raises(UsageError, match="popular, trending, new, name"):
        local.search(sort="best")
    with pytest.raises(UsageError, match="character"):
        local.search(kind="models")


# ---- the bundled snapshot --------------------------------------------------------------------


def _tree(root: Path) -> dict[str, object]:
    """Every JSON file under ``root`` by relative path, without the download figures: the daily
    stats commit moves those, and the snapshot keeps the ones it was made with."""
    files = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        name = path.relative_to(root).as_posix()
        data = json.loads(path.read_text(encoding="utf-8"))
        if name == "api/v1/index.json":
            for entry in data["resources"]:
                del entry["downloads"], entry["downloads_30d"]
        elif name.startswith("api/v1/resources/"):
            del data["downloads"]
        files[name] = data
    return files


def test_the_bundled_snapshot_is_the_api_of_registry_index(tmp_path):
    out = tmp_path / "snapshot"
    result = CliRunner().invoke(cli, ["catalog", "snapshot", str(REPO / "registry_index"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert _tree(out) == _tree(SNAPSHOT), "the bundled snapshot is stale: run `zishu catalog snapshot registry_index`"
    manifests = list((REPO / "registry_index/resources").glob("*/*.yaml"))
    assert write_snapshot(REPO / "registry_index", out) == len(manifests)
