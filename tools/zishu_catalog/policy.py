"""The catalog's policy files, read into plain objects: where files may be hosted and which ids are gone.

``registry_index/policy.yaml`` lists the allowed file sources (a regex each, an optional size
limit, an optional ``hub`` whose ``revision`` group pins a commit) and the licenses that forbid
commercial use. ``registry_index/retired.yaml`` lists ids that may never be used again. Both are
read with the same safe YAML reader as manifests; anything malformed becomes a ``Problem`` naming
the policy file and the field, raised as one ``ManifestError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from zishu.catalog.manifest import FileEntry, _spdx
from zishu.catalog.reading import load_yaml, model_problems
from zishu.errors import ManifestError, Problem

COMMIT = re.compile(r"[0-9a-f]{40}")


class Source(BaseModel):
    """One place files may be hosted: a URL pattern, an optional size limit, an optional hub."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    pattern: str
    max_size: Annotated[int, Field(gt=0)] | None = None
    hub: str | None = None

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as e:
            raise ValueError(f"not a regular expression: {e}") from None
        return value

    @property
    def regex(self) -> re.Pattern:
        return _compiled(self.pattern)

    def revision(self, url: str) -> str | None:
        """The hub revision ``url`` names (its ``revision`` group), or None."""
        match = self.regex.match(url)
        if match and "revision" in match.re.groupindex:
            return match.group("revision")
        return None

    def pinned_commit(self, url: str) -> str | None:
        """The full 40-hex commit a hub URL is pinned to, or None (not a hub, or a branch or tag)."""
        revision = self.revision(url) if self.hub else None
        return revision if revision and COMMIT.fullmatch(revision) else None


@cache
def _compiled(pattern: str) -> re.Pattern:
    return re.compile(pattern)


class _PolicyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: list[Source] = Field(min_length=1)
    local_sources: list[Source] = Field(default_factory=list)
    non_commercial: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class Policy:
    """What ``policy.yaml`` allows, ready to answer questions about URLs and licenses."""

    sources: tuple[Source, ...]
    local_sources: tuple[Source, ...] = ()
    non_commercial: frozenset[str] = field(default_factory=frozenset)

    def source_for(self, url: str) -> Source | None:
        """The first public source whose pattern matches ``url``."""
        return next((s for s in self.sources if s.regex.match(url)), None)

    def local_source_for(self, url: str) -> Source | None:
        """The first local source (accepted only with --allow-local-urls) whose pattern matches ``url``."""
        return next((s for s in self.local_sources if s.regex.match(url)), None)

    def url_source(self, url: str, *, allow_local: bool = False) -> tuple[Source, None] | tuple[None, str]:
        """The source serving ``url``, or None and a message saying why the URL is refused."""
        source = self.source_for(url)
        if source is not None:
            if not url.startswith("https://"):
                return None, "files must be served over https://"
            return source, None
        local = self.local_source_for(url)
        if local is not None:
            if allow_local:
                return local, None
            return None, "local URLs are accepted only with --allow-local-urls (local mirrors and tests)"
        if url.lower().startswith("http://"):
            return None, "uses http://; files must be served over https:// from an allowed host"
        try:
            host = urlsplit(url).hostname or "this URL"
        except ValueError:  # e.g. an unclosed IPv6 bracket
            host = "this URL"
        return None, (
            f"{host} is not an allowed file source; host files on one of: {self.source_names()} "
            "(see registry_index/policy.yaml for the URL forms)"
        )

    def forbids_commercial_use(self, license: str) -> bool:
        """True when the SPDX expression names any license from ``non_commercial``."""
        return bool(license_ids(license) & self.non_commercial)

    def source_names(self) -> str:
        """The public sources' names, for messages."""
        return ", ".join(s.name for s in self.sources)


def file_urls(entry: FileEntry, where: str) -> list[tuple[str, str]]:
    """(field, url) for a file's URL and each of its mirrors: the policy applies to all of them."""
    return [(f"{where}.url", entry.url)] + [(f"{where}.mirrors[{k}]", u) for k, u in enumerate(entry.mirrors)]


@lru_cache(maxsize=4096)
def license_ids(expression: str) -> frozenset[str]:
    """The license ids an SPDX expression mentions (``MIT OR CC-BY-NC-4.0`` → both)."""
    try:
        return frozenset(_spdx().license_keys(expression))
    except Exception:  # noqa: BLE001 - license_expression raises assorted errors on input it cannot parse;
        # an expression the models accepted should parse, but never crash on one that does not
        return frozenset(re.findall(r"[A-Za-z0-9.+-]+", expression))


def load_policy(root: Path) -> Policy:
    """Read ``root/policy.yaml``; raise ManifestError naming the field when it is malformed."""
    path = root / "policy.yaml"
    return parse_policy(_read(path, str(path)), str(path))


def parse_policy(data: bytes, file: str) -> Policy:
    """The policy in ``data`` (the bytes of a policy.yaml, named ``file`` in problems)."""
    raw = load_yaml(data, file)
    try:
        parsed = _PolicyFile.model_validate(raw)
    except ValidationError as e:
        raise ManifestError(model_problems(e, file, raw)) from None
    problems = [
        Problem(file, f"{group}[{i}].pattern", "a hub source needs a (?P<revision>...) group")
        for group, sources in (("sources", parsed.sources), ("local_sources", parsed.local_sources))
        for i, s in enumerate(sources)
        if s.hub and "revision" not in s.regex.groupindex
    ]
    if problems:
        raise ManifestError(problems)
    return Policy(
        sources=tuple(parsed.sources),
        local_sources=tuple(parsed.local_sources),
        non_commercial=frozenset(parsed.non_commercial),
    )


def load_retired(root: Path) -> dict[str, str]:
    """Read ``root/retired.yaml`` (a missing file means nothing was retired yet)."""
    path = root / "retired.yaml"
    return parse_retired(_read(path, str(path)), str(path)) if path.exists() else {}


def parse_retired(data: bytes, file: str) -> dict[str, str]:
    """Retired id (lowercase) → reason, from ``retired: [owner/name, {id: ..., reason: ...}, ...]``."""
    raw = load_yaml(data, file)
    entries = raw.get("retired")
    if entries is None:
        return {}
    if not isinstance(entries, list):
        raise ManifestError([Problem(file, "retired", "must be a list of ids")])
    retired: dict[str, str] = {}
    problems = []
    for i, entry in enumerate(entries):
        if isinstance(entry, str):
            retired[entry.lower()] = "retired"
        elif isinstance(entry, dict) and isinstance(entry.get("id"), str):
            retired[entry["id"].lower()] = str(entry.get("reason") or "retired")
        else:
            problems.append(Problem(file, f"retired[{i}]", "must be an id (owner/name) or {id: ..., reason: ...}"))
    if problems:
        raise ManifestError(problems)
    return retired


def _read(path: Path, file: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise ManifestError([Problem(file, "", f"cannot read: {e.strerror}")]) from None
