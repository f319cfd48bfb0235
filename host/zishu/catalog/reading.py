"""Reading manifests safely: bytes in, a validated ``Resource`` out, or problems that name file and field.

Manifests arrive from strangers' pull requests, so the reader refuses, with a precise message and
without crashing: files over 256 KiB, bytes that are not UTF-8, malformed YAML, YAML aliases
(the "billion laughs" bomb needs them and manifests never do), nesting deeper than 100 levels
(libyaml's composer would crash on it), duplicate keys, a document that is
not a mapping, and anything the models reject.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from zishu.errors import ManifestError, Problem

from .manifest import RESOURCE, Resource

MAX_MANIFEST_BYTES = 256 * 1024
MAX_NESTING = 100

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_Loader):  # type: ignore[misc, valid-type]
    """Safe loading, plus: a key that appears twice in one mapping is an error."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    mapping: dict = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark
            ) from None
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _construct_timestamp(loader: _StrictLoader, node: yaml.ScalarNode):
    """A date that looks like one but is not (2026-13-45) is an error at its line, not a crash."""
    try:
        return yaml.constructor.SafeConstructor.construct_yaml_timestamp(loader, node)
    except ValueError as e:
        raise yaml.constructor.ConstructorError(
            None, None, f"{node.value!r} is not a date: {e}", node.start_mark
        ) from None


_StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


def _mark(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "document"


def load_yaml(data: bytes, file: str) -> Any:
    """Parse untrusted manifest bytes; raise ManifestError naming the file and the place."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError([Problem(file, "", f"file is {len(data):,} bytes; a manifest may be at most 256 KiB")])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ManifestError([Problem(file, f"byte {e.start}", "file is not UTF-8 text")]) from None
    try:
        depth = 0
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.AliasEvent):
                message = f"YAML aliases (*{event.anchor}) are not allowed in manifests"
                raise ManifestError([Problem(file, _mark(event.start_mark), message)])
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_NESTING:  # libyaml's composer recurses: very deep nesting crashes the process
                    raise ManifestError(
                        [Problem(file, _mark(event.start_mark), f"YAML is nested more than {MAX_NESTING} levels deep")]
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        docs = list(yaml.load_all(text, Loader=_StrictLoader))
    except yaml.MarkedYAMLError as e:
        where = _mark(e.problem_mark or e.context_mark)
        what = " ".join(filter(None, [e.context, e.problem]))
        raise ManifestError([Problem(file, where, f"invalid YAML: {what}")]) from None
    except yaml.YAMLError as e:
        raise ManifestError([Problem(file, "", f"invalid YAML: {e}")]) from None
    except (ValueError, TypeError, KeyError, OverflowError) as e:  # a constructor choking on a tagged value (!!bool x)
        raise ManifestError([Problem(file, "", f"invalid YAML value: {e}")]) from None
    if len(docs) != 1:
        raise ManifestError([Problem(file, "", f"expected one YAML document, found {len(docs)}")])
    if not isinstance(docs[0], dict):
        raise ManifestError([Problem(file, "", "a manifest must be a mapping of fields (id, kind, name, ...)")])
    return docs[0]


def field_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def model_problems(error: ValidationError, file: str, data: Any) -> list[Problem]:
    """Turn pydantic's errors into Problems whose field reads like the YAML (versions[0].files[1].name)."""
    kind = data.get("kind") if isinstance(data, dict) else None
    problems = []
    for err in error.errors(include_url=False):
        loc = tuple(err["loc"])
        if loc and loc[0] == kind:
            loc = loc[1:]
        # Drop the "function-after[...]" steps pydantic adds for annotated validators.
        loc = tuple(p for p in loc if not (isinstance(p, str) and p.startswith("function-")))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc, msg = ("kind",), f"must be one of: character, live2d, lora, model, voice, plugin (got {kind!r})"
        elif err["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling; see the schema)"
        problems.append(Problem(file, field_path(loc) or "(top level)", msg))
    return problems


def parse_manifest(data: Any, file: str) -> Resource:
    """Validate already-loaded data against the models."""
    try:
        return RESOURCE.validate_python(data)
    except ValidationError as e:
        raise ManifestError(model_problems(e, file, data)) from None


def read_manifest(path: Path, *, display: str | None = None) -> Resource:
    """Read and validate one manifest file."""
    file = display or str(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ManifestError([Problem(file, "", f"cannot read: {e.strerror}")]) from None
    return parse_manifest(load_yaml(data, file), file)


def dump_manifest(resource: Resource, schema_ref: str | None = None) -> str:
    """YAML text for a manifest: fields in model order, defaults left out, readable Unicode."""
    data = RESOURCE.dump_python(resource, mode="python", exclude_defaults=True, by_alias=True)
    data = {"id": data.pop("id"), "kind": data.pop("kind"), **data}
    head = f"# yaml-language-server: $schema={schema_ref}\n" if schema_ref else ""
    return head + yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)
