"""The catalog's manifest files, read into the types every rule works on.

``read_catalog`` finds every file under ``registry_index/resources`` and schema-checks each
manifest (``zishu.catalog.reading``) into a ``Manifest``; the result is a ``Catalog``, which also
holds the problems met while reading (a symbolic link, a file that is not a manifest, bad YAML,
a schema error). With a cache file, a rebuild parses only the YAML files that changed.

The rule modules (``rules``, ``published``, ``online``) take these types; they never import
``validate``, the module that runs them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from zishu.catalog.manifest import RESOURCE, Resource
from zishu.catalog.reading import MAX_MANIFEST_BYTES, load_yaml, parse_manifest
from zishu.errors import ManifestError, Problem
from zishu.files import write_atomic

CACHE_FORMAT = 1  # bump when the cache's layout changes

@dataclass
class Manifest:
    """One manifest file of the catalog, and its resource when it could be read and validated."""

    rel: str  # POSIX path under resources/, e.g. "alice/example.yaml"
    path: Path
    file: str  # how problems name the file
    resource: Resource | None = None

    @property
    def expected_id(self) -> str:
        return self.rel.removesuffix(".yaml")


@dataclass
class ValidManifest(Manifest):
    """A manifest whose resource was read and passed the schema: what the cross-file rules work on."""

    resource: Resource


@dataclass
class Catalog:
    """Every manifest under ``root/resources``, and the problems met while reading them."""

    root: Path
    manifests: list[Manifest]
    problems: list[Problem] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # path under resources/ → name given by the user

    def name(self, rel: str) -> str:
        """How problems name the file at ``rel`` (under resources/): as the user gave it, or root-based."""
        return self.names.get(rel) or printable(os.path.join(self.root, "resources", rel))

    @property
    def valid(self) -> list[ValidManifest]:
        return [m for m in self.manifests if isinstance(m, ValidManifest)]

    def by_id(self) -> dict[str, ValidManifest]:
        """Valid manifests by id (the first file wins when an id is used twice)."""
        out: dict[str, ValidManifest] = {}
        for m in self.valid:
            out.setdefault(m.resource.id, m)
        return out


def read_catalog(root: Path, *, cache_file: Path | None = None, names: dict[str, str] | None = None) -> Catalog:
    """Read and schema-check every manifest under ``root/resources``.

    ``names`` maps a path under resources/ to the name problems should use for it (as the user
    typed it). With ``cache_file``, files whose size and mtime match the cache are re-validated
    from their cached JSON instead of being parsed again, and the cache is refreshed atomically.
    """
    resources = root / "resources"
    cache = _load_cache(cache_file)
    fresh: dict[str, list] = {}  # what the cache will hold: rel → [size, mtime_ns, validated JSON]
    catalog = Catalog(root, [], names=names or {})
    for rel, path, found in sorted(_manifest_files(resources), key=lambda found: found[0]):
        file = catalog.name(rel)
        if isinstance(found, str):
            catalog.problems.append(Problem(file, "", found))
            continue
        key = [found.st_size, found.st_mtime_ns]
        hit = cache.get(rel)
        if hit and hit[:2] == key:
            try:
                catalog.manifests.append(ValidManifest(rel, Path(path), file, RESOURCE.validate_json(hit[2])))
                fresh[rel] = hit
                continue
            except ValidationError:
                pass  # the models changed since: read the YAML again
        resource, problems = _read_manifest(Path(path), file, found.st_size)
        catalog.problems += problems
        if resource is None:
            catalog.manifests.append(Manifest(rel, Path(path), file))
            continue
        catalog.manifests.append(ValidManifest(rel, Path(path), file, resource))
        if cache_file is not None:
            fresh[rel] = [*key, RESOURCE.dump_json(resource, exclude_defaults=True).decode()]
    if cache_file is not None and (fresh.keys() != cache.keys() or any(fresh[k] is not cache[k] for k in fresh)):
        write_atomic(cache_file, json.dumps({"format": CACHE_FORMAT, "files": fresh}, separators=(",", ":")))
    return catalog


def _manifest_files(resources: Path) -> Iterator[tuple[str, str, os.stat_result | str]]:
    """(rel, path, stat or the problem with the file) for every file under resources/; hidden ones are skipped."""
    todo = [("", str(resources))]
    while todo:
        prefix, folder = todo.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue  # no resources/ folder yet: an empty catalog
        for entry in entries:
            rel = prefix + entry.name
            if entry.name.startswith("."):
                continue
            if entry.is_symlink():
                yield rel, entry.path, "is a symbolic link; manifests must be plain files"
            elif entry.is_dir(follow_symlinks=False):
                todo.append((rel + "/", entry.path))
            elif not entry.is_file(follow_symlinks=False):
                yield rel, entry.path, "is not a regular file"
            elif not entry.name.endswith(".yaml"):
                yield rel, entry.path, "is not a manifest; manifests are resources/<owner>/<name>.yaml"
            elif not rel.isprintable():
                yield rel, entry.path, "file name has characters that are not printable UTF-8"
            else:
                try:
                    yield rel, entry.path, entry.stat(follow_symlinks=False)
                except OSError as e:
                    yield rel, entry.path, f"cannot read: {e.strerror}"


def _read_manifest(path: Path, file: str, size: int) -> tuple[Resource | None, list[Problem]]:
    """Parse and schema-check one file: its resource, or None and its problems."""
    if size > MAX_MANIFEST_BYTES:  # refuse before reading a huge file into memory
        return None, [Problem(file, "", f"file is {size:,} bytes; a manifest may be at most 256 KiB")]
    try:
        data = path.read_bytes()
        return parse_manifest(load_yaml(data, file), file), []
    except ManifestError as e:
        return None, e.problems
    except OSError as e:
        return None, [Problem(file, "", f"cannot read: {e.strerror}")]
    except (RecursionError, MemoryError, ValueError) as e:  # pathological input the reader did not foresee
        return None, [Problem(file, "", f"cannot read: {type(e).__name__}: {e}")]


def _load_cache(cache_file: Path | None) -> dict[str, list]:
    if cache_file is None:
        return {}
    try:
        data = json.loads(cache_file.read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT or not isinstance(data.get("files"), dict):
        return {}
    return {k: v for k, v in data["files"].items() if isinstance(v, list) and len(v) == 3 and isinstance(v[2], str)}


def printable(text: str) -> str:
    """``text`` with control characters and undecodable bytes escaped, safe for one output line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
