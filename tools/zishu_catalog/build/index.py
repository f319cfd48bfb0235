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

from zishu.catalog import RESOURCE, Resource
from zishu.files import write_if_changed

INDEX_FORMAT = 1


@dataclass(frozen=True)
class Downloads:
    total: int = 0
    last_30_days: int = 0


def entry(resource: Resource, downloads: Downloads) -> dict:
    """The compact index entry: enough to search, filter, sort and show a result list."""
    latest = resource.latest
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
    return [entry(resources[rid], downloads.get(rid, Downloads())) for rid in sorted(resources)]


def write_api(
    out: Path,
    resources: dict[str, Resource],
    entries: list[dict],
    downloads: dict[str, Downloads],
    schema_text: str,
) -> None:
    """Write index, details and schema under ``out``; remove details of resources that are gone."""
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

