"""What a pull request changed, compared with a git base: published versions stay as they were,
and only a resource's maintainers change it.

``read_base`` reads the manifests of ``registry_index/resources`` at a git ref (one ``ls-tree``,
one ``cat-file --batch``; no checkout). ``check_against_base`` compares the catalog on disk with it.
The single relaxation: CI may fill in ``sha256`` and ``size`` that a hub-pinned file left out.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zishu.catalog.manifest import Resource, Version
from zishu.catalog.reading import load_yaml, parse_manifest
from zishu.errors import ManifestError, Problem, UsageError

from .catalog import Catalog, Manifest, ValidManifest


@dataclass
class BaseCatalog:
    """The registry at a git ref: blob ids of its manifests, contents read on demand."""

    ref: str
    top: Path  # the git work tree
    prefix: str  # the registry folder (--root) relative to ``top``, POSIX
    blobs: dict[str, str]  # manifest path under resources/ → blob id
    others: dict[str, str] = field(default_factory=dict)  # other files of the registry (policy.yaml, ...)
    _parsed: dict[str, tuple[dict | None, Resource | None]] = field(default_factory=dict)

    def changed(self, manifest: Manifest) -> bool:
        """True when the file is new or differs from the base."""
        blob = self.blobs.get(manifest.rel)
        if blob is None:
            return True
        try:
            return git_blob_id(manifest.path.read_bytes()) != blob
        except OSError:
            return True

    def manifest(self, rel: str) -> tuple[dict | None, Resource | None]:
        """The base manifest at ``rel``: its raw data and its resource (None where unreadable)."""
        return self._parsed.get(rel, (None, None))

    def load(self, rels: list[str]) -> None:
        """Read and parse the base versions of ``rels`` in one ``git cat-file --batch``."""
        wanted = [rel for rel in dict.fromkeys(rels) if rel in self.blobs and rel not in self._parsed]
        for rel, data in zip(wanted, _cat_blobs(self.top, [self.blobs[r] for r in wanted]), strict=True):
            self._parsed[rel] = _parse(data, f"{self.ref}:{self.prefix}/resources/{rel}")

    def file(self, name: str) -> bytes | None:
        """The bytes of another registry file at the base (``policy.yaml``), or None if absent."""
        blob = self.others.get(name)
        return next(_cat_blobs(self.top, [blob])) if blob else None


def git_blob_id(data: bytes) -> str:
    """The id git gives a file with these bytes (so unchanged files need no git call)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def read_base(root: Path, ref: str) -> BaseCatalog:
    """The registry ``root`` as it was at ``ref``; UsageError when git or the ref is missing."""
    if not root.is_dir():
        raise UsageError(f"--root {root}: no such folder")
    top = Path(_git(root, "rev-parse", "--show-toplevel").decode().strip())
    prefix = Path(os.path.relpath(root.resolve(), top.resolve())).as_posix()
    if prefix.startswith(".."):
        raise UsageError(f"--base: {root} is not inside the git work tree {top}")
    try:
        _git(top, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except UsageError:
        raise UsageError(f"--base: git knows no commit {ref!r} in {top} (fetch it first?)") from None
    pathspec = [] if prefix == "." else ["--", prefix]
    listing = _git(top, "ls-tree", "-r", "-z", "--full-tree", ref, *pathspec).decode("utf-8", "surrogateescape")
    base = BaseCatalog(ref, top, prefix, {})
    start = "" if prefix == "." else prefix + "/"
    for line in filter(None, listing.split("\0")):
        meta, _, path = line.partition("\t")
        _, kind, blob = meta.split()
        if kind != "blob" or not path.startswith(start):
            continue
        inside = path[len(start) :]
        if inside.startswith("resources/") and inside.endswith(".yaml"):
            base.blobs[inside.removeprefix("resources/")] = blob
        else:
            base.others[inside] = blob
    return base


def _git(cwd: Path, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True, check=True)
    except FileNotFoundError:
        raise UsageError("--base needs git, which is not installed") from None
    except subprocess.CalledProcessError as e:
        raise UsageError(f"git {args[0]} failed: {e.stderr.decode('utf-8', 'replace').strip()}") from None
    return done.stdout


def _cat_blobs(top: Path, blobs: list[str]) -> Iterator[bytes]:
    """The contents of ``blobs``, in order, from one ``git cat-file --batch``."""
    if not blobs:
        return
    out = _git(top, "cat-file", "--batch", stdin="".join(b + "\n" for b in blobs).encode())
    pos = 0
    for _ in blobs:
        header_end = out.index(b"\n", pos)
        header = out[pos:header_end].split()  # b"<blob> blob <size>", or b"<blob> missing"
        if len(header) != 3:
            pos = header_end + 1
            yield b""
            continue
        size = int(header[2])
        yield out[header_end + 1 : header_end + 1 + size]
        pos = header_end + 1 + size + 1


def _parse(data: bytes, file: str) -> tuple[dict | None, Resource | None]:
    try:
        raw = load_yaml(data, file)
    except ManifestError:
        return None, None
    try:
        return raw, parse_manifest(raw, file)
    except ManifestError:
        return raw, None


# ---- the checks ------------------------------------------------------------------------------


def check_against_base(
    catalog: Catalog,
    base: BaseCatalog,
    *,
    author: str | None = None,
    retired: dict[str, str] | None = None,
) -> list[Problem]:
    """Published versions never change or disappear; only maintainers (as of the base) change a
    resource; a new resource lists its author among its maintainers; a deleted manifest is retired."""
    present = {m.rel for m in catalog.manifests}
    changed = [m for m in catalog.manifests if base.changed(m)]
    base.load([m.rel for m in changed] + [rel for rel in base.blobs if rel not in present])
    problems: list[Problem] = []
    for m in changed:
        raw, old = base.manifest(m.rel)
        if m.rel not in base.blobs:
            problems += _new_resource_author(m, author)
            continue
        if author is not None:
            problems += _maintainer_author(m.file, raw, author, base.ref)
        if old is not None and isinstance(m, ValidManifest):
            problems += published_version_changes(m, old, base.ref)
    for rel in sorted(set(base.blobs) - present):
        problems += _deleted(catalog.name(rel), rel, base, author, retired or {})
    return problems


def _new_resource_author(m: Manifest, author: str | None) -> list[Problem]:
    if author is None or m.resource is None:
        return []
    if author.lower() in {login.lower() for login in m.resource.maintainers}:
        return []
    return [Problem(m.file, "maintainers", f"a new resource must list its author among its maintainers; add {author}")]


def _maintainer_author(file: str, raw: dict | None, author: str, ref: str) -> list[Problem]:
    listed = raw.get("maintainers") if isinstance(raw, dict) else None
    maintainers = [str(x) for x in listed] if isinstance(listed, list) else []
    if author.lower() in {login.lower() for login in maintainers}:
        return []
    who = ", ".join(maintainers) or "nobody"
    return [Problem(file, "maintainers", (
        f"{author} is not a maintainer of this resource (at {ref}: {who}); only a maintainer may change it"
    ))]


def _deleted(file: str, rel: str, base: BaseCatalog, author: str | None, retired: dict[str, str]) -> list[Problem]:
    """A manifest may leave the catalog only when its id is retired, by one of its maintainers."""
    raw, old = base.manifest(rel)
    if rel.removesuffix(".yaml").lower() not in retired:
        versions = ", ".join(v.version for v in old.versions) if old else "all its versions"
        return [Problem(file, "versions", (
            f"this manifest was deleted, removing published versions ({versions}); published versions "
            "may not be removed (a catalog maintainer retires the id in retired.yaml instead)"
        ))]
    if author is not None:
        return _maintainer_author(file, raw, author, base.ref)
    return []


def published_version_changes(m: ValidManifest, old: Resource, ref: str) -> list[Problem]:
    """Each version published in ``old`` is still there, unchanged (bar measured checksums)."""
    current = {v.version: (i, v) for i, v in enumerate(m.resource.versions)}
    problems = []
    for before in old.versions:
        if before.version not in current:
            problems.append(Problem(m.file, "versions", (
                f"published version {before.version} was removed (it is in {ref}); "
                "published versions may not be removed"
            )))
            continue
        i, after = current[before.version]
        for path, was, now in _differences(_comparable(before), _comparable(after, measured_from=before)):
            problems.append(Problem(m.file, f"versions[{i}]{path}", (
                f"published version {before.version} may not change (was {_short(was)}, now {_short(now)}); "
                "publish a new version instead"
            )))
    return problems


def _comparable(version: Version, *, measured_from: Version | None = None) -> dict:
    """The version as JSON data; sha256/size that ``measured_from`` left out are left out here too."""
    data = version.model_dump(mode="json")
    if measured_from is not None:
        unmeasured = {f.name for f in measured_from.files if f.sha256 is None and f.size is None}
        for entry in data["files"]:
            if entry["name"] in unmeasured:
                entry["sha256"] = entry["size"] = None
    return data


def _differences(before: Any, after: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(field path, before, after) for each place two JSON values differ."""
    if isinstance(before, dict) and isinstance(after, dict):
        for key in list(before) + [k for k in after if k not in before]:
            yield from _differences(before.get(key), after.get(key), f"{path}.{key}")
    elif isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            yield from _differences(b, a, f"{path}[{i}]")
    elif before != after:
        yield path, before, after


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
