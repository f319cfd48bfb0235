"""The manifest JSON Schema as a file: written into the built site and kept in registry_index/ for editors."""

from __future__ import annotations

import json
from pathlib import Path

import click

from zishu.catalog import json_schema
from zishu.files import write_atomic

SCHEMA_IN_REGISTRY = "resource.schema.json"


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


@click.command("schema")
@click.option("--out", type=click.Path(path_type=Path), help="Write here instead of printing.")
def schema_command(out: Path | None) -> None:
    """Print (or write) the JSON Schema of a manifest, generated from the models."""
    if out is None:
        click.echo(schema_text(), nl=False)
    else:
        write_atomic(out, schema_text())
