"""The catalog client: the compact index and each resource's manifest, from a built catalog.

Where the catalog comes from (``CatalogClient(source)``; default ``ZISHU_CATALOG``; default the
snapshot bundled with the package)::

    https://…/  (or http://)   a published catalog. Answers are cached under ``cache_dir``; every
                               method but ``update()`` works from that cache alone. ``update()``
                               asks again with a conditional GET (ETag / Last-Modified).
    file:///…  or a folder     a built catalog on disk (``zishu catalog build``), read as it is:
                               no cache, no network.

Cache layout, one folder per catalog URL (``cache_dir/<digest of the URL>/``)::

    index.json                            the body as served
    index.meta.json                       {source, url, etag, last_modified, fetched_at, sha256}
    resources/<owner>/<name>.json         one resource's detail, as served
    resources/<owner>/<name>.meta.json    the same metadata, plus the index fetch it was checked at

Bodies are written before their metadata, each atomically; metadata whose ``sha256`` does not
match its body is ignored, and a body that is not the JSON expected is treated as missing (and
fetched again), never as a crash.

When the catalog cannot be reached, ``update()`` returns False and sets ``offline`` and
``warning``; with nothing cached, the index falls back to the bundled snapshot and ``source_used``
says so. A detail that was fetched before an ``update()`` is checked again (a cheap 304) the next
time it is asked for.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import requests
from pydantic import ValidationError

from zishu import config
from zishu.errors import RemoteError, UnknownResource, UsageError
from zishu.files import write_atomic
from zishu.ids import is_id

from .manifest import RESOURCE, Resource
from .search import search_entries

SNAPSHOT = Path(__file__).resolve().parent / "snapshot"
INDEX_PATH = "api/v1/index.json"
INDEX_FORMAT = 1
DETAIL_EXTRAS = ("latest", "downloads")  # added by the build; not manifest fields


def parse_index(data: object) -> list[dict]:
    """The entries of an ``index.json`` document; ValueError when it is not one this client reads."""
    if not isinstance(data, dict) or not isinstance(data.get("resources"), list):
        raise ValueError("not a catalog index (no 'resources' list)")
    if data.get("format") != INDEX_FORMAT:
        raise ValueError(f"index format {data.get('format')!r}; this Zishu reads format {INDEX_FORMAT} (update Zishu)")
    entries = data["resources"]
    for number, entry in enumerate(entries):
        problem = _entry_problem(entry)
        if problem:
            raise ValueError(f"index entry {number} is not a catalog entry: {problem}")
    return entries


ENTRY_FIELDS: dict[str, tuple[type, ...]] = {
    "kind": (str,), "name": (str,), "summary": (str,), "license": (str,), "latest": (str,), "updated": (str,),
    "base_model": (str, type(None)), "size": (int, float), "downloads": (int, float), "downloads_30d": (int, float),
    "tags": (list,),
}
REQUIRED_FIELDS = ("id", "kind", "name")


def _entry_problem(entry: object) -> str | None:
    """What is wrong with one index entry (search reads these fields), or None."""
    if not isinstance(entry, dict):
        return "not an object"
    if not isinstance(entry.get("id"), str):
        return "no id"
    missing = [name for name in REQUIRED_FIELDS if name not in entry]
    if missing:
        return f"{entry['id'][:100]!r} has no {', '.join(missing)}"
    for name, types in ENTRY_FIELDS.items():
        if name in entry and (not isinstance(entry[name], types) or isinstance(entry[name], bool)):
            return f"{entry['id'][:100]!r}: {name} is {type(entry[name]).__name__}"
    if not all(isinstance(tag, str) for tag in entry.get("tags", [])):
        return f"{entry['id'][:100]!r}: tags must be text"
    return None


def _json(body: str | bytes) -> object:
    """``json.loads``, with nesting too deep for the parser a ValueError like any other bad JSON."""
    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError("JSON nested too deep") from None


def local_folder(source: str) -> Path | None:
    """The folder a file:// URL or plain path names; None for http(s) URLs."""
    parts = urlsplit(source)
    if parts.scheme in ("http", "https"):
        return None
    if parts.scheme == "file":
        return Path(url2pathname(parts.path))
    return Path(source).expanduser()


# ---- the HTTP cache ---------------------------------------------------------------------------


@dataclass
class Cached:
    """One cached answer: its parsed JSON, its body's digest and its metadata (empty when unusable)."""

    data: object
    sha256: str
    meta: dict = field(default_factory=dict)


def read_cached(path: Path) -> Cached | None:
    """The cached JSON at ``path``, or None when it is missing or unreadable."""
    try:
        body = path.read_bytes()
        data = _json(body)
    except (OSError, ValueError):
        return None
    digest = hashlib.sha256(body).hexdigest()
    meta = read_meta(path)
    if meta.get("sha256") != digest:
        meta = {}  # written for another body: its ETag would lie
    return Cached(data, digest, meta)


def read_meta(path: Path) -> dict:
    try:
        meta = _json(_meta_path(path).read_bytes())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def write_cached(path: Path, body: bytes, meta: dict) -> None:
    """Body first, then its metadata: a crash in between leaves metadata that no longer matches."""
    write_atomic(path, body)
    write_meta(path, meta, hashlib.sha256(body).hexdigest())


def write_meta(path: Path, meta: dict, sha256: str) -> None:
    write_atomic(_meta_path(path), json.dumps({**meta, "sha256": sha256}, indent=1))


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".json") + ".meta.json")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")


class Unreachable(Exception):
    """The catalog did not give a usable answer (no connection, timeout, server error)."""


NOT_MODIFIED = object()
NOT_FOUND = object()


def _describe(error: requests.RequestException, timeout: float) -> str:
    if isinstance(error, requests.Timeout):
        return f"no answer within {timeout:g} s"
    if isinstance(error, requests.ConnectionError):
        return "cannot connect"
    return type(error).__name__


# ---- the client -------------------------------------------------------------------------------


class CatalogClient:
    """Read one catalog: ``index()``, ``search()``, ``resource(id)``; ``update()`` refreshes.

    Attributes after use: ``source`` (the catalog asked for), ``source_used`` (where the current
    index came from: ``source``, or the bundled snapshot's folder), ``offline`` (the last attempt
    to reach the catalog failed), ``offline_reason`` (why, or None) and ``warning`` (a sentence
    for the user that says what is shown instead, or None).
    """

    def __init__(
        self,
        source: str | None = None,
        *,
        cache_dir: Path | None = None,
        session: requests.Session | None = None,
        timeout: float = 10.0,
    ) -> None:
        source = source or config.catalog_source() or str(SNAPSHOT)
        self.folder = local_folder(source)
        self.source = str(self.folder) if self.folder else source.rstrip("/") + "/"
        key = hashlib.sha256(self.source.encode()).hexdigest()[:16]
        self.cache = Path(cache_dir or config.home() / "cache" / "catalog") / key
        self.session = session or requests.Session()
        self.timeout = timeout
        self.source_used = self.source
        self.offline = False
        self.offline_reason: str | None = None
        self.warning: str | None = None
        self._entries: list[dict] | None = None

    # ---- public ----

    def index(self) -> list[dict]:
        """Every compact index entry: from memory, else the cache, else fetched (or the snapshot)."""
        if self._entries is None:
            if self.folder:
                self._entries = self._read_folder_index(self.folder)
            else:
                cached = self._cached_index()
                if cached is not None:
                    self._entries = cached
                else:
                    self.update()  # no cache: fetch, or fall back to the snapshot
        assert self._entries is not None
        return self._entries

    def update(self) -> bool:
        """Ask the catalog for its index again; True when the entries served changed.

        Never raises for a catalog that cannot be reached: returns False, sets ``offline`` and
        ``warning``, and keeps the cached index or, with none, uses the bundled snapshot.
        """
        before = self._entries
        if self.folder:
            self._entries = self._read_folder_index(self.folder)
            return before is not None and self._entries != before
        path = self.cache / "index.json"
        cached = read_cached(path)
        old = self._valid_entries(cached.data) if cached else None
        if old is None:
            cached = None  # missing or corrupt: fetch it whole
        url = self.source + INDEX_PATH
        try:
            answer = self._get(url, cached)
            if answer is NOT_FOUND:
                raise Unreachable(f"{url}: not found (is this a Zishu catalog?)")
            if answer is not NOT_MODIFIED:
                body, meta = answer
                try:
                    entries = parse_index(_json(body))
                except ValueError as e:
                    raise Unreachable(f"{url}: {e}") from None
        except Unreachable as e:
            self._go_offline(str(e))
            if old is not None:
                self._entries, self.source_used = old, self.source
            elif before is None or self.source_used != self.source:
                self._use_snapshot()
            return False

        self.offline, self.offline_reason, self.warning = False, None, None
        if answer is NOT_MODIFIED:
            assert cached is not None and old is not None
            write_meta(path, {**cached.meta, "fetched_at": _now()}, cached.sha256)
            entries = old
        else:
            write_cached(path, body, meta)
        previous = before if before is not None else old
        changed = self.source_used != self.source or previous != entries
        self._entries, self.source_used = entries, self.source
        return changed

    def search(
        self,
        text: str = "",
        *,
        kind: str | None = None,
        tag: str | None = None,
        license: str | None = None,
        base_model: str | None = None,
        sort: str = "popular",
        limit: int | None = None,
    ) -> list[dict]:
        """Index entries matching ``text`` and the filters, ranked like the site (see ``search``)."""
        return search_entries(
            self.index(), text, kind=kind, tag=tag, license=license, base_model=base_model, sort=sort, limit=limit
        )

    def detail(self, id: str) -> dict:
        """The resource's detail document: the manifest plus ``latest`` and ``downloads``.

        A document whose ``id`` is not the one asked for is refused (RemoteError naming both): it
        would otherwise install under another id than the user chose."""
        if not is_id(id):
            raise UnknownResource(str(id), self.source)
        data = self._detail(id)
        if data.get("id") != id:
            got = data.get("id")
            raise RemoteError(f"{self.source_used}: the detail of {id} is about {str(got)[:100]!r} instead; "
                              "refused (the catalog is wrong or was tampered with)")
        return data

    def _detail(self, id: str) -> dict:
        if self.folder:
            return self._read_folder_detail(self.folder, id)
        if self.source_used == str(SNAPSHOT):
            return self._read_folder_detail(SNAPSHOT, id)
        path = self.cache / "resources" / f"{id}.json"
        cached = read_cached(path)
        if cached is not None and not isinstance(cached.data, dict):
            cached = None
        stamp = self._index_stamp()
        if cached is not None and (self.offline or cached.meta.get("checked_at_index") == stamp):
            return cached.data  # type: ignore[return-value]
        if self.offline and cached is None:
            return self._detail_unreachable(id, self.warning or "offline")
        try:
            answer = self._get(self.source + f"api/v1/resources/{id}.json", cached)
            if answer is NOT_FOUND:
                raise UnknownResource(id, self.source)
            if answer is NOT_MODIFIED:
                assert cached is not None
                write_meta(path, {**cached.meta, "checked_at_index": stamp}, cached.sha256)
                return cached.data  # type: ignore[return-value]
            body, meta = answer
            try:
                data = _json(body)
            except ValueError:
                data = None
            if not isinstance(data, dict):
                raise Unreachable(f"{meta['url']}: not a resource detail (expected a JSON object)")
        except Unreachable as e:
            self._go_offline(str(e))
            if cached is not None:
                return cached.data  # type: ignore[return-value]
            return self._detail_unreachable(id, str(e))
        write_cached(path, body, {**meta, "checked_at_index": stamp})
        return data

    def resource(self, id: str) -> Resource:
        """The full manifest of ``id``; UnknownResource when the catalog has no such id."""
        data = {k: v for k, v in self.detail(id).items() if k not in DETAIL_EXTRAS}
        try:
            return RESOURCE.validate_python(data)
        except ValidationError as e:
            raise RemoteError(f"{self.source_used}: the manifest of {id} is not valid: {e}") from None

    # ---- internals ----

    def _get(self, url: str, cached: Cached | None):
        """GET ``url`` (conditionally when cached): (body, meta), NOT_MODIFIED or NOT_FOUND."""
        headers = {}
        if cached is not None:
            if cached.meta.get("etag"):
                headers["If-None-Match"] = cached.meta["etag"]
            if cached.meta.get("last_modified"):
                headers["If-Modified-Since"] = cached.meta["last_modified"]
        try:
            response = self.session.get(url, headers=headers, timeout=self.timeout)
        except requests.RequestException as e:
            raise Unreachable(f"{url}: {_describe(e, self.timeout)}") from e
        if response.status_code == 304 and cached is not None:
            return NOT_MODIFIED
        if response.status_code == 404:
            return NOT_FOUND
        if response.status_code != 200:
            raise Unreachable(f"{url}: HTTP {response.status_code}")
        meta = {
            "source": self.source,
            "url": url,
            "etag": response.headers.get("ETag"),
            "last_modified": response.headers.get("Last-Modified"),
            "fetched_at": _now(),
        }
        return response.content, meta

    def _cached_index(self) -> list[dict] | None:
        cached = read_cached(self.cache / "index.json")
        return None if cached is None else self._valid_entries(cached.data)

    @staticmethod
    def _valid_entries(data: object) -> list[dict] | None:
        try:
            return parse_index(data)
        except ValueError:
            return None

    def _index_stamp(self) -> str | None:
        """When the cached index was last confirmed by the catalog; details checked before are rechecked."""
        return read_meta(self.cache / "index.json").get("fetched_at")

    def _go_offline(self, reason: str) -> None:
        self.offline, self.offline_reason = True, reason
        self.warning = f"the catalog could not be reached ({reason})"

    def _use_snapshot(self) -> None:
        self._entries, self.source_used = self._read_folder_index(SNAPSHOT), str(SNAPSHOT)
        self.warning = f"{self.warning or 'offline'}; showing the catalog bundled with Zishu, which may be out of date"

    def _detail_unreachable(self, id: str, reason: str) -> dict:
        """Offline with no cached detail: the snapshot's when there is no index at all, else an error."""
        if self._entries is None and self._cached_index() is None:
            self._use_snapshot()
            return self._read_folder_detail(SNAPSHOT, id)
        if id not in {e["id"] for e in self.index()}:
            raise UnknownResource(id, self.source)
        raise RemoteError(f"cannot get the details of {id}: {reason}; try again when online")

    @staticmethod
    def _read_folder_index(folder: Path) -> list[dict]:
        path = folder / INDEX_PATH
        try:
            return parse_index(_json(path.read_bytes()))
        except OSError as e:
            raise UsageError(
                f"{folder} is not a built Zishu catalog: cannot read {INDEX_PATH} ({e.strerror}); "
                "set ZISHU_CATALOG to a catalog URL or to a folder made by `zishu catalog build`"
            ) from None
        except ValueError as e:
            raise UsageError(f"{path}: {e}; rebuild it with `zishu catalog build`, or set ZISHU_CATALOG "
                             "to another catalog") from None

    def _read_folder_detail(self, folder: Path, id: str) -> dict:
        path = folder / "api" / "v1" / "resources" / f"{id}.json"
        try:
            data = _json(path.read_bytes())
        except FileNotFoundError:
            raise UnknownResource(id, str(folder)) from None
        except (OSError, ValueError) as e:
            raise UsageError(f"{path}: cannot read this resource's detail ({e})") from None
        if not isinstance(data, dict):
            raise UsageError(f"{path}: not a resource detail (expected a JSON object)")
        return data
