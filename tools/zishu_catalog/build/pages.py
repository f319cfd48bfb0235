"""The generated Markdown sources of the catalog site: a page per resource, paginated listings per
kind and per tag in three orders (popular, trending, new), a tag index, a browse overview and the
search page. Hand-written pages live in catalog_site/docs; these are made from the index.

Everything a creator wrote is escaped (Jinja autoescape); descriptions are Markdown rendered here
and cleaned with nh3, so a manifest cannot put a script on the site.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from jinja2 import Environment, FileSystemLoader

from zishu.catalog import KINDS, RESOURCE, Resource
from zishu.catalog.markup import description_html
from zishu.resources.budget import TIERS
from zishu.sizes import byte_size, download_size

from .index import Downloads
from .needs import Needs, needs_of

PAGE_SIZE = 100
MAX_VERSIONS_SHOWN = 20
SORTS = (("popular", "Popular"), ("trending", "Trending"), ("new", "New"))
TAG_SORTS = (("popular", "Popular"), ("new", "New"))  # tags are many: two orders keep the site small
KIND_TITLES = {
    "character": "Characters",
    "live2d": "Live2D models",
    "lora": "LoRA adapters",
    "model": "Models",
    "voice": "Voices",
    "plugin": "Plugins",
}

@dataclass(frozen=True)
class Page:
    """A generated page: where it goes, a digest of what it shows, and how to render it.

    The build renders a page only when its key changed since the last build.
    """

    path: str
    key: str
    render: Callable[[], str]


def _key(*parts) -> str:
    digest = hashlib.sha1()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else json.dumps(part, sort_keys=True, default=str).encode())
    return digest.hexdigest()


_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    keep_trailing_newline=True,
    trim_blocks=False,
)


def _render(template: str, **context) -> str:
    return _ENV.get_template(template).render(
        human_size=byte_size, download_size=download_size, kind_title=lambda k: KIND_TITLES.get(k, k), **context
    )


def _root(url: str) -> str:
    """Relative prefix from a page at ``url`` (directory URL, e.g. 'r/a/b/') back to the site root."""
    return "../" * url.count("/")


def _spec_text(value) -> list[str]:
    """A spec value as lines of plain text (the template escapes them)."""
    if isinstance(value, dict):
        return [f"{k} → {' / '.join(map(str, v.values())) if isinstance(v, dict) else v}" for k, v in value.items()]
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def _spec_rows(resource: Resource) -> list[tuple[str, list[str]]]:
    """The kind-specific fields worth showing, as (label, lines) rows; long prose stays in the JSON."""
    spec = resource.spec.model_dump(exclude_defaults=True, exclude_none=True)
    hidden = {"persona", "extensions", "lorebook", "example_dialogue", "creator_notes",
              "post_history_instructions", "scenario"}
    return [(key.replace("_", " ").capitalize(), _spec_text(value)) for key, value in spec.items() if key not in hidden]


def resource_page(resource: Resource, downloads: Downloads, install: tuple[int, bool] | None = None,
                  needs: Needs | None = None) -> str:
    """A resource's page; ``install`` is what installing it downloads with what it requires
    (known bytes, whether exact), from its index entry; ``needs`` the full download list and the
    hardware budget (``needs.py``), shown when it pulls other resources or runs a model."""
    url = f"r/{resource.id}/"
    versions = sorted(resource.versions, key=lambda v: v.released, reverse=True)
    return _render(
        "resource.md",
        r=resource,
        latest=resource.latest,
        dl=downloads,
        root=_root(url),
        description=description_html(resource.description),
        spec_rows=_spec_rows(resource),
        versions=versions[:MAX_VERSIONS_SHOWN],
        older=max(0, len(versions) - MAX_VERSIONS_SHOWN),
        install=install or (resource.latest.total_size, resource.latest.size_exact),
        needs=needs if needs and (len(needs.downloads) > 1 or needs.budget.ram) else None,
        tiers=TIERS,
    )


def _sorted(entries: list[dict], sort: str) -> list[dict]:
    if sort == "popular":
        key = lambda e: (-e["downloads"], -e["downloads_30d"], e["id"])  # noqa: E731
    elif sort == "trending":
        key = lambda e: (-e["downloads_30d"], -e["downloads"], e["id"])  # noqa: E731
    else:
        return sorted(sorted(entries, key=lambda e: e["id"]), key=lambda e: e["updated"], reverse=True)
    return sorted(entries, key=key)


def _page_numbers(page: int, pages: int) -> list[int | None]:
    """1 … 4 5 [6] 7 8 … 20: first, last and two either side; None marks a gap."""
    shown = sorted({1, pages, *range(max(1, page - 2), min(pages, page + 2) + 1)})
    out: list[int | None] = []
    for n in shown:
        if out and n - out[-1] > 1:
            out.append(None)
        out.append(n)
    return out


def _page_url(base: str, n: int) -> str:
    return base if n == 1 else f"{base}{n}/"


def _listing(title: str, scope: str, sort: str, sorts, chunk: list[dict], total: int, page: int, pages: int) -> str:
    base = f"browse/{scope}/{sort}/"
    url = _page_url(base, page)
    return _render(
        "listing.md",
        title=title,
        scope=scope,
        sort=sort,
        sorts=sorts,
        entries=chunk,
        total=total,
        page=page,
        pages=pages,
        first=(page - 1) * PAGE_SIZE + 1,
        page_numbers=_page_numbers(page, pages),
        page_url=lambda n: _root(url) + _page_url(base, n),
        root=_root(url),
    )


def listing_pages(scope: str, title: str, entries: list[dict], sorts=SORTS) -> Iterator[Page]:
    """Every page of every order of one listing scope (all, kind/x, tag/y)."""
    pages = max(1, -(-len(entries) // PAGE_SIZE))
    for sort, _label in sorts:
        ordered = _sorted(entries, sort)
        for page in range(1, pages + 1):
            chunk = ordered[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
            args = (title, scope, sort, sorts, chunk, len(entries), page, pages)
            path = _page_url(f"browse/{scope}/{sort}/", page) + "index.md"
            yield Page(path, _key(args), partial(_listing, *args))


def site_pages(resources: dict[str, Resource], entries: list[dict], downloads: dict[str, Downloads]) -> Iterator[Page]:
    """Every generated page (paths inside docs/)."""
    installs = {e["id"]: (e["install_size"], e["install_size_exact"]) for e in entries if "install_size" in e}
    for rid, res in resources.items():
        dl = downloads.get(rid, Downloads())
        install = installs.get(rid)
        needs = needs_of(res, resources)
        key = _key(RESOURCE.dump_json(res), [dl.total, dl.last_30_days], list(install or ()),
                   needs.key() if needs else None)
        yield Page(f"r/{rid}/index.md", key, partial(resource_page, res, dl, install, needs))
    yield from listing_pages("all", "All resources", entries)
    by_kind: dict[str, list[dict]] = defaultdict(list)
    by_tag: dict[str, list[dict]] = defaultdict(list)
    for e in entries:
        by_kind[e["kind"]].append(e)
        for tag in e["tags"]:
            by_tag[tag].append(e)
    for kind in KINDS:
        yield from listing_pages(f"kind/{kind}", KIND_TITLES[kind], by_kind[kind])
    for tag in sorted(by_tag):
        yield from listing_pages(f"tag/{tag}", f"Tagged “{tag}”", by_tag[tag], TAG_SORTS)
    tags = sorted(((t, len(es)) for t, es in by_tag.items()), key=lambda t: (-t[1], t[0]))
    kinds = [(k, len(by_kind[k])) for k in KINDS]
    yield Page("tags/index.md", _key(tags), partial(_render, "tags.md", tags=tags, root=_root("tags/")))
    yield Page("browse/index.md", _key(len(entries), kinds),
               partial(_render, "browse.md", total=len(entries), kinds=kinds, root=_root("browse/")))
    yield Page("search/index.md", "", partial(_render, "search.md", root=_root("search/")))
