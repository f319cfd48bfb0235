"""Download statistics: a daily snapshot of GitHub Releases download counts, and the totals the
index build shows.

**Counting.** One file per version counts as one install: ``Version.counted_file`` (the file
marked ``primary: true``, else the first). Only counted files hosted on GitHub Releases count;
files on Hugging Face, ModelScope or elsewhere have no public download counts. GitHub's counts are
cumulative, so a snapshot holds the running totals as of its day.

**Snapshot** ``registry_index/stats/YYYY-MM-DD.json`` (written whole or not at all)::

    {
      "date": "2026-11-21",
      "downloads": {
        "alice/example": {"1.0.0": 12, "1.1.0": 3},
        "bob/voice": {"0.1.0": 0}
      }
    }

Keys are sorted and each resource takes one line, so the daily commit's diff shows what moved.
A resource appears when at least one of its counted files was found on GitHub; a repository that
is gone (404) is skipped with a warning for that day.

**Retention.** Every daily file is kept: each is a few bytes per resource, a year is 365 small
files. ``download_totals`` only reads the newest snapshot and the one about 30 days older, so
older snapshots may be thinned (e.g. to one per month) without changing any figure, as long as
the last 31 days are kept.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

import click

from zishu.catalog import Resource, read_manifest
from zishu.errors import CatalogBuildError, UsageError
from zishu.files import write_atomic

from .github_releases import DEFAULT_API_URL, GitHubReleases, ReleaseAsset

WINDOW_DAYS = 30
SNAPSHOT_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})\.json$")

Downloads = dict[str, dict[str, int]]  # resource id → version → download count


# ---- collecting counts -----------------------------------------------------------------------


def read_resources(root: Path) -> list[Resource]:
    """Every manifest under ``root/resources``, validated."""
    return [read_manifest(p) for p in sorted((root / "resources").glob("*/*.yaml"))]


def counted_assets(resources: Iterable[Resource]) -> dict[tuple[str, str], ReleaseAsset]:
    """``(resource id, version) → the GitHub Releases asset counted as its installs``."""
    assets = {}
    for resource in resources:
        for version in resource.versions:
            counted = version.counted_file
            asset = ReleaseAsset.from_url(counted.url) if counted else None
            if asset:
                assets[(resource.id, version.version)] = asset
    return assets


def collect_downloads(resources: Iterable[Resource], client: GitHubReleases, warn=click.echo) -> Downloads:
    """Ask GitHub for the download count of each version's counted file (one listing per repository)."""
    assets = counted_assets(resources)
    by_repo: dict[str, dict[tuple[str, str], int] | None] = {}
    downloads: Downloads = {}
    for (resource_id, version), asset in sorted(assets.items()):
        repo = asset.repo.lower()
        if repo not in by_repo:
            by_repo[repo] = client.download_counts(asset.repo)
            if by_repo[repo] is None:
                warn(f"warning: GitHub repository {asset.repo} not found (404); skipping its downloads")
        counts = by_repo[repo]
        if counts is None:
            continue
        count = counts.get((asset.tag, asset.name))
        if count is None:
            warn(f"warning: {resource_id} {version}: {asset.name} "
                 f"is not an asset of release {asset.tag} of {asset.repo}")
            continue
        downloads.setdefault(resource_id, {})[version] = count
    return downloads


# ---- snapshots -------------------------------------------------------------------------------


def snapshot_text(date: dt.date, downloads: Downloads) -> str:
    """The snapshot as JSON: sorted keys, one line per resource."""
    lines = [
        f"    {json.dumps(rid)}: {json.dumps(dict(sorted(versions.items())), separators=(', ', ': '))}"
        for rid, versions in sorted(downloads.items())
    ]
    body = "{\n" + ",\n".join(lines) + "\n  }" if lines else "{}"
    return f'{{\n  "date": "{date.isoformat()}",\n  "downloads": {body}\n}}\n'


def write_snapshot(stats_dir: Path, date: dt.date, downloads: Downloads) -> Path:
    """Write ``stats_dir/YYYY-MM-DD.json`` atomically (a reader sees the old file or the new one)."""
    path = stats_dir / f"{date.isoformat()}.json"
    write_atomic(path, snapshot_text(date, downloads))
    return path


def read_snapshot(path: Path) -> Downloads:
    """The downloads of one snapshot; CatalogBuildError if the file is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        downloads = data["downloads"]
        return {
            str(rid): {str(v): int(n) for v, n in versions.items()}
            for rid, versions in downloads.items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise CatalogBuildError(f"{path} is not a download snapshot ({type(e).__name__}: {e})") from None


def snapshots(stats_dir: Path, today: dt.date | None = None) -> list[tuple[dt.date, Path]]:
    """The snapshot files in ``stats_dir``, oldest first (none dated after ``today``)."""
    found = []
    if stats_dir.is_dir():
        for path in stats_dir.iterdir():
            match = SNAPSHOT_NAME.match(path.name)
            if not match:
                continue
            try:
                date = dt.date.fromisoformat(match[1])
            except ValueError:
                continue
            if today is None or date <= today:
                found.append((date, path))
    return sorted(found)


def download_totals(stats_dir: Path, today: dt.date | None = None) -> dict[str, tuple[int, int]]:
    """``resource id → (all-time downloads, downloads over the last 30 days)``.

    The all-time figure is the sum over versions in the newest snapshot (ignoring snapshots dated
    after ``today``, when given). The 30-day figure is that sum minus the same sum in the newest
    snapshot dated at least 30 days before the newest one; when no snapshot is that old, minus the
    oldest snapshot (so with a single snapshot it is 0). A resource missing from that older
    snapshot counts from 0. The result is kept between 0 and the all-time figure (counts restart
    when an asset is replaced). No snapshots: an empty dict.
    """
    found = snapshots(stats_dir, today)
    if not found:
        return {}
    latest_date, latest_path = found[-1]
    cutoff = latest_date - dt.timedelta(days=WINDOW_DAYS)
    older = [s for s in found if s[0] <= cutoff]
    base_path = older[-1][1] if older else found[0][1]
    latest = read_snapshot(latest_path)
    base = read_snapshot(base_path) if base_path != latest_path else latest
    totals = {}
    for rid, versions in latest.items():
        total = sum(versions.values())
        before = sum(base.get(rid, {}).values())
        totals[rid] = (total, min(total, max(0, total - before)))
    return totals


# ---- the command -----------------------------------------------------------------------------


def _parse_date(ctx, param, value: str | None) -> dt.date:
    if value is None:
        return dt.datetime.now(dt.timezone.utc).date()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


@click.command("stats")
@click.option("--root", type=click.Path(path_type=Path), default=Path("registry_index"), show_default=True,
              help="The catalog source folder.")
@click.option("--date", "date", callback=_parse_date, metavar="YYYY-MM-DD",
              help="Date of the snapshot [default: today, UTC].")
@click.option("--api-url", envvar="GITHUB_API_URL", default=DEFAULT_API_URL, show_default=True,
              help="GitHub REST API base URL [env: GITHUB_API_URL].")
def stats_command(root: Path, date: dt.date, api_url: str) -> None:
    """Write today's download snapshot <root>/stats/YYYY-MM-DD.json from GitHub Releases.

    Counts one designated file per version (the primary one, else the first) when it is on
    GitHub Releases. Uses GITHUB_TOKEN when set. Nothing is written when GitHub fails.
    """
    if not (root / "resources").is_dir():
        raise UsageError(f"{root} has no resources/ folder; pass --root registry_index")
    client = GitHubReleases(api_url, token=os.environ.get("GITHUB_TOKEN") or None)
    warn = lambda message: click.echo(message, err=True)  # noqa: E731
    downloads = collect_downloads(read_resources(root), client, warn=warn)
    path = write_snapshot(root / "stats", date, downloads)
    total = sum(sum(v.values()) for v in downloads.values())
    click.echo(f"Wrote {path}: {len(downloads)} resources, {total:,} downloads in all")
