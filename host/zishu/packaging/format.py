"""The ``.zpkg`` format: a zip holding ``manifest.json`` and the embedded files.

``manifest.json`` (``PackageManifest``; its JSON Schema is published with the catalog's as
``schema/package.schema.json``)::

    {"format_version": 1,
     "mode": "standalone" | "reference" | "hybrid",
     "character": {...the character's manifest, with the one packed version...},
     "resources": [{...the manifest of each resource it needs, one version each...}],
     "files": [{"path": "character/avatar.png", "sha256": "…", "size": 123,
                "source": {"embedded": true}},
               {"path": "resources/qwen/qwen2.5-0.5b/1.0.0/model.gguf", "sha256": "…", "size": 456,
                "source": {"catalog": "qwen/qwen2.5-0.5b@1.0.0", "url": "https://…", "sha256": "…",
                           "fallback": null}}]}

Paths: ``character/<file>`` for the character's own files and
``resources/<owner>/<name>/<version>/<file>`` for a resource's. A file whose source is
``embedded`` is in the zip at its path; a ``catalog`` file is fetched through the normal
installer, and in a hybrid package its ``fallback`` (a path in the zip) is used when the catalog
cannot serve it. Base models (a ``model`` of role ``llm`` or ``image``) are never embedded.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from zishu.catalog import CharacterResource, Resource

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SUFFIX = ".zpkg"
MODES = ("standalone", "reference", "hybrid")
Mode = Literal["standalone", "reference", "hybrid"]
BASE_MODEL_ROLES = ("llm", "image")  # never embedded: referenced by their catalog id and hub URL
SCHEMA_ID = "package.schema.json"

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
_PATH = r"^(character|resources/[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._-]*/[0-9A-Za-z.+-]+)/[^\\:*?\"<>|\x00]+$"
PackagePath = Annotated[str, Field(pattern=_PATH, max_length=1024)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Embedded(_Strict):
    embedded: Literal[True] = True


class FromCatalog(_Strict):
    catalog: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9._-]*@[0-9A-Za-z.+-]+$",
                         description="The resource version that holds this file: owner/name@version.")
    url: str = Field(pattern=r"^https?://[^\s]+$", max_length=2048)
    sha256: Sha256 | None = None
    fallback: PackagePath | None = Field(None, description="Hybrid packages: the copy in the zip used "
                                                           "when the catalog cannot serve the file.")


class PackageFile(_Strict):
    path: PackagePath
    sha256: Sha256
    size: int = Field(ge=0)
    source: Embedded | FromCatalog


class PackageManifest(_Strict):
    format_version: Literal[1]
    mode: Mode
    character: CharacterResource
    resources: list[Resource] = Field(default_factory=list)
    files: list[PackageFile] = Field(default_factory=list)

    def embedded_paths(self) -> set[str]:
        """Every path the zip must hold besides manifest.json: embedded files and fallbacks."""
        paths = {f.path for f in self.files if isinstance(f.source, Embedded)}
        return paths | {f.source.fallback for f in self.files
                        if isinstance(f.source, FromCatalog) and f.source.fallback}


PACKAGE = TypeAdapter(PackageManifest)


def character_path(name: str) -> str:
    return f"character/{name}"


def resource_path(rid: str, version: str, name: str) -> str:
    return f"resources/{rid}/{version}/{name}"


def is_base_model(resource) -> bool:
    """A base model (an LLM or image model): packages reference it, never embed it."""
    return resource.kind == "model" and resource.spec.role in BASE_MODEL_ROLES


def json_schema() -> dict:
    """The JSON Schema of a package's manifest.json (published with the catalog's schema)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Zishu character package (.zpkg) manifest",
        **PACKAGE.json_schema(mode="validation"),
    }


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def package_file_name(rid: str, version: str) -> str:
    """The default file name of a package: ``<name>-<version>.zpkg``."""
    return f"{_SAFE_NAME.sub('-', rid.split('/', 1)[-1])}-{version}{SUFFIX}"
