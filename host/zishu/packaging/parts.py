"""What a character is made of, gathered from the version store for a package format to pack.

``gather(store, rid)`` reads the character's newest version and every resource it needs: the
ones its spec names (LLM, LoRA, Live2D, voice, models, image style), the ones it ``requires``,
and what those require in turn. An installed resource is handed over with its folder and
files; one that is not installed is taken from the catalog (when one is given) and can only be
referenced. Formats get this plain view, never the store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from zishu.catalog import CharacterResource, Resource, Version
from zishu.errors import NotFound, UsageError, ZishuError
from zishu.ids import parse_id
from zishu.resources.install import manifest_of
from zishu.resources.versions import MANIFEST, VersionStore


class Catalog(Protocol):
    def resource(self, id: str) -> Resource: ...


@dataclass
class Part:
    """One resource version the character needs. ``folder`` is None when it is not installed."""

    resource: Resource  # its manifest, with this one version
    folder: Path | None

    @property
    def id(self) -> str:
        return self.resource.id

    @property
    def version(self) -> Version:
        return self.resource.versions[0]

    @property
    def installed(self) -> bool:
        return self.folder is not None

    def files(self) -> list[tuple[str, Path | None, Any]]:
        """(name, path on disk or None, the manifest's FileEntry) of every file, by name."""
        return [(f.name, self.folder / f.name if self.folder else None, f)
                for f in sorted(self.version.files, key=lambda f: f.name)]

    @property
    def size(self) -> int:
        return sum(f.size or 0 for f in self.version.files)


@dataclass
class CharacterParts:
    character: CharacterResource  # its manifest, with the packed version only
    folder: Path
    resources: list[Part] = field(default_factory=list)

    @property
    def version(self) -> str:
        return self.character.versions[0].version

    def files(self) -> list[tuple[str, Path]]:
        """The character's own files (avatar, reference audio…), by name, manifest.json left out."""
        return sorted((p.relative_to(self.folder).as_posix(), p) for p in self.folder.rglob("*")
                      if p.is_file() and not p.is_symlink() and p.relative_to(self.folder).as_posix() != MANIFEST)


def one_version(resource: Resource, version: str) -> Resource:
    chosen = [v for v in resource.versions if v.version == version]
    if not chosen:
        raise UsageError(f"{resource.id} has no version {version}")
    return resource.model_copy(update={"versions": chosen})


def named_resources(character: CharacterResource) -> list[str]:
    """The ids the character's spec and its version's requirements name, in a fixed order."""
    spec = character.spec
    named = [
        spec.llm.model if spec.llm else None, spec.llm.lora if spec.llm else None,
        spec.avatar.live2d if spec.avatar else None, spec.voice.voice if spec.voice else None,
        *(getattr(spec.models, role) for role in ("embedding", "asr", "vad") if spec.models),
        spec.image_style.lora if spec.image_style else None,
        *(r.id for r in character.versions[0].requires),
    ]  # fmt: skip
    return list(dict.fromkeys(n for n in named if n))


def gather(store: VersionStore, rid: str, catalog: Catalog | None = None) -> CharacterParts:
    """The character ``rid`` (its newest installed version) and every resource it needs."""
    rid = parse_id(rid, what="character id")
    versions = store.versions(rid)
    if not versions:
        raise NotFound(f"{rid} is not installed")
    folder = store.path(rid, versions[0])
    character = manifest_of(folder)
    if not isinstance(character, CharacterResource):
        raise UsageError(f"{rid} is a {character.kind}, not a character")
    version = character.version(versions[0]) or character.latest
    character = character.model_copy(update={"versions": [version.model_copy(update={"version": versions[0]})]})
    parts = CharacterParts(character, folder)
    seen: set[str] = set()
    wanted: list[tuple[str, str]] = [(n, "*") for n in named_resources(character)]
    wanted += [(r.id, r.version) for r in version.requires]
    while wanted:
        need, span = wanted.pop(0)
        if need in seen:
            continue
        seen.add(need)
        part = _part(store, need, span, catalog, asker=rid)
        parts.resources.append(part)
        wanted += [(r.id, r.version) for r in part.version.requires]
    return parts


def _part(store: VersionStore, rid: str, span: str, catalog: Catalog | None, *, asker: str) -> Part:
    from zishu.catalog import Requirement

    requirement = Requirement(id=rid, version=span)
    for version in store.versions(rid):
        if requirement.admits(version):
            folder = store.path(rid, version)
            return Part(one_version(manifest_of(folder), version), folder)
    if catalog is None:
        raise UsageError(f"{rid} (needed by {asker}) is not installed; install it first: zishu install {rid}")
    try:
        resource = catalog.resource(rid)
    except ZishuError as e:
        raise UsageError(f"{rid} (needed by {asker}) is not installed and not in the catalog: {e}") from None
    fitting = [v for v in resource.versions if requirement.admits(v.version)]
    if not fitting:
        raise UsageError(f"no version of {rid} fits {span} (needed by {asker})")
    best = max(fitting, key=lambda v: _semver(v.version))
    unknown = [f.name for f in best.files if not f.sha256 or f.size is None]
    if unknown:
        raise UsageError(f"{rid}@{best.version} is not installed and the catalog gives no sha256/size for "
                         f"{', '.join(unknown)}; install it first (zishu install {rid}) so the package can "
                         "name what it needs")
    return Part(one_version(resource, best.version), None)


def _semver(text: str):
    import semver

    return semver.Version.parse(text)


def ids_of(parts: Iterable[Part]) -> list[str]:
    return [f"{p.id}@{p.version.version}" for p in parts]
