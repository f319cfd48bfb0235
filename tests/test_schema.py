"""The manifest JSON Schema that editors use is the one generated from the models."""

from __future__ import annotations

import json
from pathlib import Path

from zishu_catalog.schema import schema_text

REPO = Path(__file__).resolve().parent.parent


def test_committed_schema_matches_the_models():
    committed = (REPO / "registry_index" / "resource.schema.json").read_text()
    assert committed == schema_text(), "run: zishu catalog schema --out registry_index/resource.schema.json"


def test_every_manifest_points_editors_at_the_schema():
    for path in (REPO / "registry_index" / "resources").rglob("*.yaml"):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first == "# yaml-language-server: $schema=../../resource.schema.json", path


def test_schema_describes_every_kind():
    schema = json.loads(schema_text())
    assert set(schema["discriminator"]["mapping"]) == {"character", "live2d", "lora", "model", "voice", "plugin"}


def test_resource_names_may_carry_dots_as_model_names_do_but_owners_may_not():
    import re

    from zishu.catalog.manifest import ID_PATTERN

    for good in ("qwen/qwen2.5-0.5b-instruct-gguf", "alice/hero", "a/b"):
        assert re.match(ID_PATTERN, good), good
    for bad in ("qwen.ai/model", "qwen/.hidden", "qwen/model.", "qwen/..", "Qwen/model", "qwen/a/b"):
        assert not re.match(ID_PATTERN, bad), bad
