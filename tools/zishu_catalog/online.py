"""Online checks (``validate --online``): download each new or changed file and verify it.

A download streams and is hashed while it is read; it never reads more than the declared size
plus one byte (a server that sends more is "larger than declared"). Files that leave sha256 and
size out (hub files pinned to a commit) are measured instead, and ``write_measured`` puts the
measured values into their manifests: that is what the CI bot commits on the pull request.
Network failures are Problems, never crashes. A Live2D model's entry file (``spec.entry``) is kept
in memory as it downloads, and every file its ``model3.json`` names must be a file of the version
(``live2d.missing_files``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import requests
import urllib3
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from zishu import __version__
from zishu.catalog.manifest import FileEntry
from zishu.catalog.reading import dump_manifest
from zishu.errors import Problem
from zishu.files import write_atomic

from .catalog import Manifest, ValidManifest
from .live2d import MAX_MODEL3_BYTES, missing_files
from .policy import Policy, file_urls

if TYPE_CHECKING:
    from .published import BaseCatalog

SCHEMA_REF = "../../resource.schema.json"  # from resources/<owner>/<name>.yaml to registry_index/
CHUNK = 1024 * 1024
TIMEOUT = (10, 60)  # seconds: to connect, then between two reads


@dataclass
class FileCheck:
    """One file entry to download: its manifest, its field path, and the URLs the policy accepts."""

    manifest: ValidManifest
    where: str  # versions[i].files[j]
    entry: FileEntry
    urls: list[tuple[str, str, int | None]]  # (field, url, the source's size limit)
    measurable: bool = False  # no sha256/size, and every URL pinned to a hub commit: measure it
    names: frozenset[str] | None = None  # a Live2D entry: every file name of its version, to check it against


@dataclass
class Measured:
    """sha256 and size measured for a file that left them out."""

    manifest: ValidManifest
    where: str
    entry: FileEntry
    sha256: str
    size: int


@dataclass
class Fetched:
    """What one download found: a digest and a length, or why there is none."""

    sha256: str | None = None
    size: int = 0
    error: str | None = None
    too_large: bool = False  # more than the limit: announced (then ``size`` is the announced length) or sent
    content: bytes | None = None  # the bytes, when asked to keep them (a Live2D entry)


def files_to_check(
    manifests: list[Manifest],
    policy: Policy,
    *,
    allow_local_urls: bool = False,
    base: BaseCatalog | None = None,
) -> list[FileCheck]:
    """The file entries of ``manifests`` that are new or changed since ``base`` (all without one),
    each with the URLs that passed the policy (others are already problems, and never fetched)."""
    if base is not None:
        manifests = [m for m in manifests if base.changed(m)]
        base.load([m.rel for m in manifests])
    checks = []
    for m in manifests:
        if not isinstance(m, ValidManifest):
            continue
        old = base.manifest(m.rel)[1] if base is not None else None
        for i, version in enumerate(m.resource.versions):
            old_version = old.version(version.version) if old is not None else None
            old_files = {f.name: f for f in old_version.files} if old_version is not None else {}
            for j, entry in enumerate(version.files):
                if old_files.get(entry.name) == entry:
                    continue
                where = f"versions[{i}].files[{j}]"
                urls, pinned = [], entry.sha256 is None and entry.size is None
                for fld, url in file_urls(entry, where):
                    source, _ = policy.url_source(url, allow_local=allow_local_urls)
                    if source is not None:
                        urls.append((fld, url, source.max_size))
                    pinned = pinned and source is not None and source.pinned_commit(url) is not None
                if urls:
                    names = _live2d_names(m, version, entry.name)
                    checks.append(FileCheck(m, where, entry, urls, measurable=pinned, names=names))
    return checks


def _live2d_names(m: ValidManifest, version, name: str) -> frozenset[str] | None:
    spec = m.resource.spec
    if m.resource.kind != "live2d" or getattr(spec, "entry", None) != name:
        return None
    return frozenset(f.name for f in version.files)


def check_downloads(
    checks: list[FileCheck],
    *,
    session: requests.Session | None = None,
    show_progress: bool = True,
) -> tuple[list[Problem], list[Measured]]:
    """Download every URL of every check; verify declared sha256/size, measure missing ones."""
    session = session or _session()
    problems: list[Problem] = []
    measured: list[Measured] = []
    fetched: dict[tuple[str, int | None], Fetched] = {}
    with _progress(show_progress) as progress:
        for check in checks:
            found: list[Problem] = []
            first: tuple[str, Fetched] | None = None
            for fld, url, max_size in check.urls:
                limit = check.entry.size if check.entry.size is not None else max_size
                if (url, limit) not in fetched:
                    task = progress.add_task(f"{check.manifest.expected_id} {check.entry.name}", total=limit)
                    keep = check.names is not None
                    fetched[url, limit] = fetch(session, url, limit, partial(progress.advance, task), keep=keep)
                    progress.remove_task(task)
                got = fetched[url, limit]
                compared = _compare(check, fld, got, first)
                found += compared
                if check.names is not None and got.content is not None and not compared and first is None:
                    found += [Problem(check.manifest.file, f"{check.where}.name", message)
                              for message in missing_files(got.content, check.entry.name, set(check.names))]
                if first is None and got.sha256 is not None:
                    first = (fld, got)
            problems += found
            if check.measurable and first is not None and not found:
                digest = first[1].sha256
                assert digest is not None  # only a download with a digest becomes ``first``
                measured.append(Measured(check.manifest, check.where, check.entry, digest, first[1].size))
    return problems, measured


def _compare(check: FileCheck, fld: str, got: Fetched, first: tuple[str, Fetched] | None) -> list[Problem]:
    """Problems with one download of ``check``'s file, checked against the manifest (or against the
    first URL's bytes for a file whose checksums are being measured)."""
    file, entry, where = check.manifest.file, check.entry, check.where
    primary = fld.endswith(".url")
    if got.error:
        return [Problem(file, fld, f"download failed: {got.error}")]
    if got.too_large and entry.size is None:
        return [Problem(file, fld, "larger than its file source allows for one file (stopped reading)")]
    if got.too_large:
        sent = f"announces {got.size:,} bytes" if got.size else f"sent more than {entry.size:,} bytes (stopped reading)"
        return [Problem(file, f"{where}.size" if primary else fld,
                        f"larger than declared: size says {entry.size:,}, and the server {sent}")]
    if entry.size is not None and got.size != entry.size:
        return [Problem(file, f"{where}.size" if primary else fld,
                        f"the file is {got.size:,} bytes, but size says {entry.size:,}")]
    if entry.sha256 is not None and got.sha256 != entry.sha256:
        return [Problem(file, f"{where}.sha256" if primary else fld,
                        f"the file's sha256 is {got.sha256}, but the manifest says {entry.sha256}")]
    if entry.sha256 is None and first is not None and (first[1].sha256, first[1].size) != (got.sha256, got.size):
        return [Problem(file, fld, f"serves different bytes than {first[0]} (sha256 {got.sha256}, {got.size:,} bytes)")]
    return []


def fetch(
    session: requests.Session, url: str, limit: int | None, advance: Callable[[int], None] = lambda n: None,
    *, keep: bool = False,
) -> Fetched:
    """Stream ``url``, hashing as it reads; stop after ``limit`` + 1 bytes. Never raises for network trouble.
    With ``keep``, the bytes come back too (up to ``MAX_MODEL3_BYTES``)."""
    try:
        with session.get(url, stream=True, timeout=TIMEOUT, headers={"Accept-Encoding": "identity"}) as response:
            if not response.ok:
                return Fetched(error=f"HTTP {response.status_code} {response.reason or ''}".strip())
            announced = response.headers.get("Content-Length", "")
            if limit is not None and announced.isdigit() and int(announced) > limit:
                return Fetched(size=int(announced), too_large=True)
            return _read(response, limit, advance, keep)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as e:
        return Fetched(error=_reason(e))


def _read(response: requests.Response, limit: int | None, advance: Callable[[int], None],
          keep: bool = False) -> Fetched:
    digest, count = hashlib.sha256(), 0
    kept: bytearray | None = bytearray() if keep else None
    while True:
        want = CHUNK if limit is None else min(CHUNK, limit + 1 - count)
        chunk = response.raw.read(want, decode_content=True)
        if not chunk:
            return Fetched(sha256=digest.hexdigest(), size=count, content=None if kept is None else bytes(kept))
        digest.update(chunk)
        if kept is not None:
            kept += chunk
            if len(kept) > MAX_MODEL3_BYTES:
                kept = None
        count += len(chunk)
        advance(len(chunk))
        if limit is not None and count > limit:
            return Fetched(too_large=True)


def _reason(error: Exception) -> str:
    """A one-line reason for a network error (urllib3 nests long reprs; keep the start)."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}"[:300]


def write_measured(measured: list[Measured]) -> list[ValidManifest]:
    """Put measured sha256/size into their manifests and rewrite each such manifest atomically."""
    touched: dict[int, ValidManifest] = {}
    for item in measured:
        item.entry.sha256, item.entry.size = item.sha256, item.size
        touched[id(item.manifest)] = item.manifest
    for m in touched.values():
        write_atomic(m.path, dump_manifest(m.resource, SCHEMA_REF))
    return list(touched.values())


def _session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = f"zishu-catalog-validate/{__version__}"
    return session


def _progress(enabled: bool) -> Progress:
    console = Console(stderr=True)
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not (enabled and console.is_terminal),
    )
