"""The catalog as the host and the toolchain both see it: manifest models and the safe reader.

Later: the index client and search (issue 3) live here too.
"""

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

__all__ = [
    "KINDS",
    "MAX_MANIFEST_BYTES",
    "RESOURCE",
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
]
