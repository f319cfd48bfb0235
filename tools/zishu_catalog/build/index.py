"""The catalog's JSON API: the compact index every client downloads, and one detail file per resource.

    OUT/api/v1/index.json                        one compact entry per resource (see ``entry``)
    OUT/api/v1/resources/<owner>/<name>.json     the whole manifest, plus download counts
    OUT/schema/resource.schema.json              the manifest JSON Schema

Files are written only when their bytes change, so incremental builds and the host's conditional
GETs see stable timestamps.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import semver

from zishu.catalog import RESOURCE, Resource, Version
from zishu.files import write_if_changed

INDEX_FORMAT = 1


@dataclass(frozen=True)
class Downloads:
    total: int = 0
    last_30_days: int = 0


def _stable_first(version: Version) -> tuple[bool, semver.Version]:
    parsed = semver.Version.parse(version.version)
    return not parsed.prerelease, parsed


def install_size(resource: Resource, resources: dict[str, Resource]) -> tuple[int, bool]:
    """What installing the latest version downloads with everything it requires (the highest
    version of each requirement in its range, transitively): the known bytes, and whether every
    file's size is known. A requirement missing from the catalog counts as unknown."""
    known, exact = 0, True
    seen: set[str] = set()
    pending = [(resource.id, resource.latest)]
    while pending:
        rid, version = pending.pop()
        if rid in seen:
            continue
        seen.add(rid)
        known += version.total_size
        exact = exact and version.size_exact
        for req in version.requires:
            dep = resources.get(req.id)
            fitting = [v for v in dep.versions if req.admits(v.version)] if dep else []
            if not dep or not fitting:
                exact = False
                continue
            pending.append((req.id, max(fitting, key=_stable_first)))
    return known, exact


def entry(resource: Resource, downloads: Downloads, resources: dict[str, Resource] | None = None) -> dict:
    """The compact index entry: enough to search, filter, sort and show a result list.

    ``size`` is the known bytes of the latest version's own files (``size_exact``: all known);
    ``install_size``/``install_size_exact`` count what it requires too (a character's models)."""
    latest = resource.latest
    total, total_exact = install_size(resource, resources if resources is not None else {resource.id: resource})
    base_model = getattr(resource.spec, "base_model", None)  # models and LoRAs name one
    return {
        "id": resource.id,
        "kind": resource.kind,
        "name": resource.name,
        "summary": resource.summary,
        "tags": resource.tags,
        "license": resource.license,
        "latest": latest.version,
        "size": latest.total_size,
        "size_exact": latest.size_exact,
        "install_size": total,
        "install_size_exact": total_exact,
        "downloads": downloads.total,
        "downloads_30d": downloads.last_30_days,
        "updated": max(v.released for v in resource.versions).isoformat(),
        **({"base_model": base_model} if base_model else {}),
    }


def detail(resource: Resource, downloads: Downloads) -> dict:
    data = RESOURCE.dump_python(resource, mode="json", by_alias=True, exclude_none=True)
    data["latest"] = resource.latest.version
    data["downloads"] = {"total": downloads.total, "last_30_days": downloads.last_30_days}
    return data


def _compact(data) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=False)


def index_entries(resources: dict[str, Resource], downloads: dict[str, Downloads]) -> list[dict]:
    return [entry(resources[rid], downloads.get(rid, Downloads()), resources) for rid in sorted(resources)]


def write_api(
    out: Path,
    resources: dict[str, Resource],
    entries: list[dict],
    downloads: dict[str, Downloads],
    schema_text: str,
) -> None:
    """Write index, details and schemas (a manifest's, a package's) under ``out``; remove details of
    resources that are gone."""
    api = out / "api" / "v1"
    keep: set[Path] = set()
    for rid, res in resources.items():
        path = api / "resources" / f"{rid}.json"
        keep.add(path)
        write_if_changed(path, _compact(detail(res, downloads.get(rid, Downloads()))))
    for stale in (api / "resources").glob("*/*.json"):
        if stale not in keep:
            stale.unlink()
    index = {"format": INDEX_FORMAT, "count": len(entries), "resources": entries}
    write_if_changed(api / "index.json", _compact(index))
    write_if_changed(out / "schema" / "resource.schema.json", schema_text)
    from zishu_catalog.schema import package_schema_text

    write_if_changed(out / "schema" / "package.schema.json", package_schema_text())  # the .zpkg manifest

