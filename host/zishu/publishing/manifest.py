"""The catalog manifest of one of the user's own characters (``local/<name>``), ready to publish.

The shape is exactly what ``zishu catalog new`` scaffolds (``zishu_catalog.scaffold.scaffold_data``,
with the same file measuring and asset naming): the id becomes ``<login>/<name>``, each file of the
character's newest version becomes a release asset of ``repo`` at ``tag``, and the character's own
fields (name, summary, tags, spec, requires) replace the scaffold's placeholders. A character that
still names another ``local/`` resource, or states no license, is refused with the field to fix:
the catalog could not resolve the one, and would not accept the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zishu.catalog import dump_manifest, parse_manifest
from zishu.catalog.manifest import CharacterResource
from zishu.errors import NotFound, UsageError
from zishu.ids import parse_id
from zishu.resources.install import manifest_of
from zishu.resources.versions import MANIFEST
from zishu_catalog.rules import REFERENCES
from zishu_catalog.scaffold import SCHEMA_REF, asset_name, check_asset_names, measure_files, scaffold_data

LOCAL = "local"  # the owner of the user's own characters (zishu.companion.characters.LOCAL)
UNSTATED_LICENSES = ("LicenseRef-local", "LicenseRef-TODO-choose-a-license")


@dataclass
class Asset:
    """One file of the version, and the release asset that holds it."""

    name: str  # the path inside the version
    path: Path
    sha256: str
    size: int

    @property
    def asset(self) -> str:
        return asset_name(self.name)


@dataclass
class Draft:
    """A manifest about to be published: its data (URLs filled in as assets are uploaded) and files."""

    data: dict[str, Any]
    assets: list[Asset]

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def version(self) -> str:
        return str(self.data["versions"][0]["version"])

    def set_url(self, name: str, url: str) -> None:
        for entry in self.data["versions"][0]["files"]:
            if entry["name"] == name:
                entry["url"] = url

    def catalog_path(self) -> str:
        """Where the manifest goes in the catalog repository."""
        return f"registry_index/resources/{self.id}.yaml"

    def yaml(self, earlier_versions: list[dict] | None = None) -> str:
        """The manifest's text, checked by the manifest models (with the versions already published)."""
        data = {**self.data, "versions": [*self.data["versions"], *(earlier_versions or [])]}
        return dump_manifest(parse_manifest(data, self.catalog_path()), schema_ref=SCHEMA_REF)


def character_draft(registry, rid: str, *, login: str, repo: str, tag: str | None = None,
                    license: str | None = None, version: str | None = None) -> Draft:
    """The draft manifest of the user's character ``rid`` (its newest version) for GitHub user ``login``."""
    rid = parse_id(rid, what="character id")
    owner, name = rid.split("/")
    if owner != LOCAL:
        raise UsageError(f"{rid} is a catalog character; only your own characters (local/...) are published. "
                         "Edit it first to make your own copy")
    versions = registry.versions(rid)
    if not versions:
        raise NotFound(f"{rid} is not installed")
    folder = registry.path(rid, versions[0])
    resource = manifest_of(folder)
    if not isinstance(resource, CharacterResource):
        raise UsageError(f"{rid} is a {resource.kind}, not a character")
    license = license or resource.license
    if license in UNSTATED_LICENSES:
        raise UsageError("license: this character states no license; choose one with --license "
                         "(an SPDX id, e.g. CC-BY-4.0 or CC-BY-NC-4.0)")
    _check_references(resource)

    version = version or versions[0]
    tag = tag or f"v{version}"
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.relative_to(folder).as_posix() != MANIFEST)
    names = [p.relative_to(folder).as_posix() for p in files]
    check_asset_names(names)
    measured = measure_files(files)
    new_id = f"{login.lower()}/{name}"
    spec = resource.spec.model_dump(mode="json", exclude_defaults=True, by_alias=True)
    data = scaffold_data("character", new_id, version, names, measured, repo, tag, license, spec)
    data["maintainers"] = [login]
    data.update(name=resource.name, summary=resource.summary, tags=list(resource.tags))
    for optional in ("description", "homepage", "preview"):
        if getattr(resource, optional, None):
            data[optional] = getattr(resource, optional)
    mine = resource.version(versions[0]) or resource.latest
    data["versions"][0]["requires"] = [r.model_dump(mode="json") for r in mine.requires]
    if mine.notes:
        data["versions"][0]["notes"] = mine.notes
    assets = [Asset(n, p, digest, size) for n, p, (digest, size) in zip(names, files, measured, strict=True)]
    draft = Draft(data, assets)
    draft.yaml()  # the models refuse now, before anything is sent, what the catalog would refuse
    return draft


def _check_references(resource: CharacterResource) -> None:
    """Every resource the character names must be a catalog one, not another local one."""
    for i, version in enumerate(resource.versions):
        for k, req in enumerate(version.requires):
            if req.id.startswith(f"{LOCAL}/"):
                raise UsageError(f"versions[{i}].requires[{k}]: {req.id} is your own, not in the catalog; "
                                 "publish it first, then name its catalog id")
    for (block, field), _kind in REFERENCES.items():
        section = getattr(resource.spec, block)
        ref = getattr(section, field, None) if section is not None else None
        if isinstance(ref, str) and ref.startswith(f"{LOCAL}/"):
            raise UsageError(f"spec.{block}.{field}: {ref} is your own, not in the catalog; "
                             "publish it first, then choose its catalog id")
