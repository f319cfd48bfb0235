"""Running mkdocs-material over the hand-written site plus the generated pages, fast at 10,000 resources.

Two choices keep the site small and the build quick:

- generated pages are listed under ``not_in_nav``: with them in the navigation every page would
  embed every other page's link (2,000 resources already make a 1.1 GB site);
- Material's built-in search is off (its lunr index reaches ~28 MB at 10,000 pages); the catalog's
  own search reads the compact ``api/v1/index.json`` instead.

A work folder keeps the Markdown sources between builds. Unchanged sources keep their mtime, so
the next build runs mkdocs with ``dirty=True`` and renders only what changed; whenever the site
configuration changes, or there is no previous output, the build is full, goes to a staging folder
and replaces the output in one rename.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import yaml

from zishu.errors import CatalogBuildError
from zishu.files import write_atomic, write_if_changed

from .pages import Page

ASSETS = Path(__file__).parent / "assets"
GENERATED_DIRS = ("r", "browse", "tags", "search")
STATE_FILE = "state.json"


def _read_site_config(site: Path) -> dict:
    path = site / "mkdocs.yml"
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise CatalogBuildError(f"{path}: cannot read the site configuration: {e}") from None
    if not isinstance(config, dict):
        raise CatalogBuildError(f"{path}: the site configuration must be a mapping")
    return config


def site_config(site: Path, docs: Path) -> dict:
    """The mkdocs configuration: the hand-written one, plus the generated sections and our assets."""
    config = _read_site_config(site)
    config["docs_dir"] = str(docs)
    theme = dict(config.get("theme") or {"name": "material"})
    if (site / "overrides").is_dir():
        theme["custom_dir"] = str((site / "overrides").resolve())
    config["theme"] = theme
    config["plugins"] = [p for p in config.get("plugins", []) if p != "search"]
    config["extra_css"] = [*config.get("extra_css", []), "assets/zishu-catalog.css"]
    config["extra_javascript"] = [*config.get("extra_javascript", []), "assets/zishu-catalog.js"]
    config["not_in_nav"] = "".join(f"/{d}/\n" for d in GENERATED_DIRS)
    return config


def _fingerprint(config: dict, site: Path) -> str:
    """Changes whenever something every page depends on changes (config, theme overrides, assets)."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for folder in (site / "overrides", ASSETS, Path(__file__).parent / "templates"):
        for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if path.is_file():
                digest.update(str(path.relative_to(folder)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def sync_sources(site: Path, docs: Path, generated: Iterable[Page], keys_file: Path) -> list[Path]:
    """Make ``docs`` hold exactly the hand-written docs plus the generated pages.

    A generated page is rendered only when its key (a digest of everything it shows) differs from
    the last build's, and written only when its bytes change, so unchanged sources keep their
    mtime. Files no longer produced are removed; returns their paths.
    """
    try:
        old_keys = json.loads(keys_file.read_text())
    except (OSError, ValueError):
        old_keys = {}
    keys: dict[str, str] = {}
    wanted: set[Path] = set()
    hand = site / "docs"
    for path in sorted(hand.rglob("*")) if hand.is_dir() else []:
        if path.is_file():
            target = docs / path.relative_to(hand)
            wanted.add(target)
            write_if_changed(target, path.read_bytes())
    for asset in ASSETS.iterdir():
        target = docs / "assets" / asset.name
        wanted.add(target)
        write_if_changed(target, asset.read_bytes())
    for page in generated:
        target = docs / page.path
        wanted.add(target)
        keys[page.path] = page.key
        if old_keys.get(page.path) != page.key or not target.exists():
            write_if_changed(target, page.render())
    removed = [p for p in docs.rglob("*") if p.is_file() and p not in wanted]
    for path in removed:
        path.unlink()
    write_atomic(keys_file, json.dumps(keys, separators=(",", ":")))
    return removed


def _remove_output_of(removed: list[Path], docs: Path, out: Path) -> None:
    """After an incremental build, drop the rendered pages of sources that are gone."""
    for src in removed:
        if src.name != "index.md":
            continue
        html = out / src.parent.relative_to(docs) / "index.html"
        html.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # the folder still holds other pages, or is gone
            html.parent.rmdir()


def run_mkdocs(site: Path, work: Path, out: Path, generated: Iterable[Page], write_extra) -> bool:
    """Build the site into ``out``; returns True when the build was incremental.

    ``write_extra(folder)`` writes the non-mkdocs files (JSON API, schema) into the folder that
    becomes ``out``, before it is published.
    """
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import MkDocsException

    from .generated_html import GeneratedPagesAreHtml

    docs = work / "docs"
    config = site_config(site, docs)
    fingerprint = _fingerprint(config, site)
    state_path = work / STATE_FILE
    try:
        state = json.loads(state_path.read_text())
    except (OSError, ValueError):
        state = {}
    incremental = (
        state.get("fingerprint") == fingerprint
        and state.get("out") == str(out.resolve())
        and (out / "index.html").exists()
    )
    keys_file = work / "page-keys.json"
    if not incremental:
        shutil.rmtree(docs, ignore_errors=True)
        keys_file.unlink(missing_ok=True)
    removed = sync_sources(site, docs, generated, keys_file)
    config_path = work / "mkdocs.yml"
    write_atomic(config_path, yaml.safe_dump(config, allow_unicode=True, sort_keys=False))

    target = out if incremental else out.with_name(f".{out.name}.staging")
    if not incremental:
        shutil.rmtree(target, ignore_errors=True)
    logging.getLogger("mkdocs").setLevel(logging.WARNING)
    # Its "dirty build may leave navigation stale" warning does not apply: the navigation is fixed,
    # and any change to configuration, theme or templates makes the next build a full one.
    logging.getLogger("mkdocs.commands.build").setLevel(logging.ERROR)
    try:
        cfg = load_config(config_file=str(config_path), site_dir=str(target))
        cfg.plugins["zishu-generated-html"] = GeneratedPagesAreHtml(GENERATED_DIRS)
        build(cfg, dirty=incremental)
    except (MkDocsException, OSError) as e:
        raise CatalogBuildError(f"mkdocs failed: {e}") from None
    write_extra(target)
    if incremental:
        _remove_output_of(removed, docs, out)
    else:
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if out.exists():
            os.replace(out, old)
        os.replace(target, out)
        shutil.rmtree(old, ignore_errors=True)
    write_atomic(state_path, json.dumps({"fingerprint": fingerprint, "out": str(out.resolve())}))
    return incremental
