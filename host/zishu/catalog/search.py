"""Searching the compact index (``api/v1/index.json`` entries) the way the catalog site does.

The ranking is the one in ``zishu_catalog/build/assets/zishu-catalog.js``, so the desktop and the
website find the same things in the same order:

- the text is split into lowercase words; ``kind:``, ``tag:``, ``license:`` and ``base:`` words
  are filters, the others must *all* match the entry;
- each word scores where it matches first: exact name 100, name prefix 50, name contains 30,
  a tag 25, the id 20, the summary 10 (a word that matches nowhere drops the entry);
- filters: kind and tag exact, license exact but case-insensitive, base model a case-insensitive
  substring (entries with no ``base_model`` never pass it).

Results rank by score (when there is text), then by ``sort``, then by id. ``facets`` lists what the
filters can offer for a set of entries.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from zishu.errors import UsageError, field_problem

from .manifest import KINDS

MAX_RESULTS = 10_000  # results one search answers at most

SORTS = {
    # name: (key, descending)
    "popular": (lambda e: e.get("downloads", 0), True),
    "trending": (lambda e: e.get("downloads_30d", 0), True),
    "new": (lambda e: e.get("updated", ""), True),
    "name": (lambda e: e.get("name", "").casefold(), False),
}

_FILTER_WORD = re.compile(r"^(kind|tag|license|base):(.+)$")


def parse_query(text: str) -> tuple[dict[str, str], list[str]]:
    """``"kind:model tag:anime qwen"`` → ``({"kind": "model", "tag": "anime"}, ["qwen"])``."""
    filters: dict[str, str] = {}
    words: list[str] = []
    for part in text.lower().split():
        match = _FILTER_WORD.match(part)
        if match:
            filters[match[1]] = match[2]
        else:
            words.append(part)
    return filters, words


def score(entry: dict, words: list[str]) -> int:
    """How well ``entry`` matches every one of ``words``; 0 when one of them matches nothing."""
    name, rid, summary = entry["name"].lower(), entry["id"].lower(), entry.get("summary", "").lower()
    tags = entry.get("tags", [])
    total = 0
    for word in words:
        if name == word:
            total += 100
        elif name.startswith(word):
            total += 50
        elif word in name:
            total += 30
        elif word in tags:
            total += 25
        elif word in rid:
            total += 20
        elif word in summary:
            total += 10
        else:
            return 0
    return total


def _passes(entry: dict, filters: dict[str, str]) -> bool:
    if "kind" in filters and entry["kind"] != filters["kind"]:
        return False
    if "tag" in filters and filters["tag"] not in entry.get("tags", []):
        return False
    if "license" in filters and entry.get("license", "").lower() != filters["license"]:
        return False
    return not ("base" in filters and filters["base"] not in (entry.get("base_model") or "").lower())


def search_entries(
    entries: Iterable[dict],
    text: str = "",
    *,
    kind: str | None = None,
    tag: str | None = None,
    license: str | None = None,
    base_model: str | None = None,
    sort: str = "popular",
    limit: int | None = None,
) -> list[dict]:
    """The entries that match ``text`` and the filters, best first (see the module docstring).

    Keyword filters take precedence over the same filter written in the text.
    """
    if sort not in SORTS:
        raise UsageError(f"unknown sort {sort!r}; choose one of: {', '.join(SORTS)}")
    if kind is not None and kind not in KINDS:
        raise UsageError(f"unknown kind {kind!r}; choose one of: {', '.join(KINDS)}")
    filters, words = parse_query(text)
    given = {"kind": kind, "tag": tag, "license": license, "base": base_model}
    filters.update({k: v.lower() for k, v in given.items() if v is not None})

    scored = []
    for entry in entries:
        if not _passes(entry, filters):
            continue
        points = score(entry, words) if words else 1
        if points:
            scored.append((points, entry))

    # Stable sorts, least important key first: id, then the chosen order, then the score.
    key, descending = SORTS[sort]
    scored.sort(key=lambda p: p[1]["id"])
    scored.sort(key=lambda p: key(p[1]), reverse=descending)
    scored.sort(key=lambda p: p[0], reverse=True)
    found = [entry for _, entry in scored]
    return found if limit is None else found[: max(0, limit)]


def facets(entries: Iterable[dict], top_tags: int = 60) -> dict[str, list[str]]:
    """What Discover's filters offer: every kind, license and base model in ``entries`` (sorted) and
    the ``top_tags`` most used tags (most used first)."""
    entries = list(entries)
    tags = Counter(t for e in entries for t in e.get("tags", []))
    return {
        "kinds": sorted({e["kind"] for e in entries}),
        "tags": [t for t, _ in tags.most_common(top_tags)],
        "licenses": sorted({e.get("license", "") for e in entries} - {""}),
        "base_models": sorted({e.get("base_model") or "" for e in entries} - {""}),
    }


class CatalogQuery(BaseModel):
    """One catalog search, as ``GET /api/catalog/search`` (``?q=``) and the MCP tool
    ``search_catalog`` take it: the same checks and the same refusals for both."""

    model_config = ConfigDict(extra="forbid")
    query: str = Field("", max_length=500, description="words to look for, with kind:/tag:/license:/base: "
                                                      "filters; empty: everything")
    kind: str | None = Field(None, description=f"one of: {', '.join(KINDS)}")
    tag: str | None = Field(None, max_length=100)
    license: str | None = Field(None, max_length=100)
    base_model: str | None = Field(None, max_length=200)
    sort: str = Field("popular", description=f"one of: {', '.join(SORTS)}")
    limit: int = Field(60, ge=0, le=MAX_RESULTS, description="results at most")

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str | None) -> str | None:
        if value is not None and value not in KINDS:
            raise ValueError(f"unknown kind {value!r}; choose one of: {', '.join(KINDS)}")
        return value

    @field_validator("sort")
    @classmethod
    def _known_sort(cls, value: str) -> str:
        if value not in SORTS:
            raise ValueError(f"unknown sort {value!r}; choose one of: {', '.join(SORTS)}")
        return value

    @classmethod
    def parse(cls, values: Any) -> CatalogQuery:
        """``values`` checked; a UsageError naming the field otherwise."""
        try:
            return cls.model_validate(values)
        except ValidationError as e:
            raise field_problem(e) from None
