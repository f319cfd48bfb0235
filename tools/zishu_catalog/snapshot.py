"""``zishu catalog snapshot``: the catalog's JSON API, bundled with the host as its offline fallback.

The snapshot is the API part of a built catalog (no website), committed under
``host/zishu/catalog/snapshot/`` and shipped as package data::

    api/v1/index.json                        the compact index
    api/v1/resources/<owner>/<name>.json     one detail per resource
    schema/resource.schema.json              the manifest JSON Schema

Refresh it after changing registry_index/ or the manifest models (a test fails until you do)::

    zishu catalog snapshot registry_index
"""

from __future__ import annotations

from pathlib import Path

import click

from zishu.catalog.client import SNAPSHOT


def write_snapshot(src: Path, out: Path) -> int:
    """Write the JSON API of the catalog under ``src`` into ``out``; returns the resource count."""
    from zishu_catalog.build.index import Downloads, index_entries, write_api
    from zishu_catalog.schema import schema_text
    from zishu_catalog.stats import download_totals
    from zishu_catalog.validate import load_catalog

    resources = load_catalog(src)
    totals = download_totals(src / "stats")
    downloads = {rid: Downloads(*totals[rid]) for rid in resources if rid in totals}
    write_api(out, resources, index_entries(resources, downloads), downloads, schema_text())
    return len(resources)


@click.command("snapshot")
@click.argument("src", default="registry_index", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=SNAPSHOT,
              show_default="the snapshot bundled with zishu", help="Output folder.")
def snapshot_command(src: Path, out: Path) -> None:
    """Write the JSON index of SRC (default registry_index) as the host's bundled offline catalog."""
    count = write_snapshot(src, out)
    click.echo(f"wrote the JSON API of {count:,} resources into {out}")
