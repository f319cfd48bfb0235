"""The catalog as the host and the toolchain both see it: manifest models, the safe reader, and
the client that reads a built catalog's JSON index (cached for offline use) and searches it.
"""

from .client import SNAPSHOT, CatalogClient
from .manifest import (
    KINDS,
    RESOURCE,
    CharacterResource,
    CharacterSpec,
    FileEntry,
    Requirement,
    Resource,
    ResourceBase,
    Version,
    json_schema,
)
from .reading import MAX_MANIFEST_BYTES, dump_manifest, load_yaml, parse_manifest, read_manifest
from .search import search_entries

__all__ = [
    "KINDS",
    "MAX_MANIFEST_BYTES",
    "RESOURCE",
    "SNAPSHOT",
    "CatalogClient",
    "CharacterResource",
    "CharacterSpec",
    "FileEntry",
    "Requirement",
    "Resource",
    "ResourceBase",
    "Version",
    "dump_manifest",
    "json_schema",
    "load_yaml",
    "parse_manifest",
    "read_manifest",
    "search_entries",
]
