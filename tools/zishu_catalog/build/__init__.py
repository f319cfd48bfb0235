"""``zishu catalog build SRC --out OUT``: the JSON API and the website, from registry_index/.

    OUT/index.html                               the mkdocs-material site (see site.py)
    OUT/api/v1/index.json                        compact index (see index.py)
    OUT/api/v1/resources/<owner>/<name>.json     full detail per resource
    OUT/schema/resource.schema.json              the manifest JSON Schema

The build refuses a catalog with any problem (the same offline checks as ``validate``), so a broken
manifest never reaches the published index.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import click
from platformdirs import user_cache_dir

from zishu.errors import CatalogBuildError

from .index import Downloads, index_entries, write_api
from .pages import site_pages
from .site import run_mkdocs


@dataclass
class BuildReport:
    resources: int
    incremental: bool
    seconds: float


def default_work_dir(out: Path) -> Path:
    """Where the Markdown sources and caches live between builds of ``out``."""
    key = hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:16]
    return Path(user_cache_dir("zishu")) / "catalog-build" / key


def build_catalog(
    src: Path,
    out: Path,
    *,
    site: Path | None = None,
    work: Path | None = None,
    allow_local_urls: bool = False,
) -> BuildReport:
    """Validate the catalog under ``src`` and write the API and the site to ``out``."""
    from zishu_catalog.schema import schema_text
    from zishu_catalog.stats import download_totals
    from zishu_catalog.validate import load_catalog

    started = time.perf_counter()
    site = site or src.resolve().parent / "catalog_site"
    if not (site / "mkdocs.yml").is_file():
        raise CatalogBuildError(f"{site}: no mkdocs.yml here; pass --site with the catalog_site folder")
    work = work or default_work_dir(out)
    work.mkdir(parents=True, exist_ok=True)

    resources = load_catalog(src, allow_local_urls=allow_local_urls, cache_file=work / "manifests.json")
    totals = download_totals(src / "stats")
    downloads = {rid: Downloads(*totals[rid]) for rid in resources if rid in totals}

    entries = index_entries(resources, downloads)
    incremental = run_mkdocs(
        site, work, out, site_pages(resources, entries, downloads),
        write_extra=lambda folder: write_api(folder, resources, entries, downloads, schema_text()),
    )
    return BuildReport(len(resources), incremental, time.perf_counter() - started)


@click.command("build")
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("--site", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The mkdocs project (default: catalog_site/ beside SRC).")
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Sources and caches kept between builds (default: in the user cache).")
@click.option("--allow-local-urls", is_flag=True, help="Admit http://127.0.0.1 and http://localhost file URLs.")
def build_command(src: Path, out: Path, site: Path | None, work_dir: Path | None, allow_local_urls: bool) -> None:
    """Build the JSON index and the website from the manifests in SRC."""
    report = build_catalog(src, out, site=site, work=work_dir, allow_local_urls=allow_local_urls)
    how = "incremental" if report.incremental else "full"
    click.echo(f"built {report.resources:,} resources into {out} ({how}, {report.seconds:.1f} s)")
