"""The manifest JSON Schema (and the .zpkg package manifest's) as a file: written into the built site
and kept in registry_index/ for editors."""

from __future__ import annotations

import json
from pathlib import Path

import click

from zishu.catalog import json_schema
from zishu.files import write_atomic

SCHEMA_IN_REGISTRY = "resource.schema.json"
PACKAGE_SCHEMA_IN_REGISTRY = "package.schema.json"


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def package_schema_text() -> str:
    """The JSON Schema of a .zpkg's manifest.json (``zishu.packaging.format``)."""
    from zishu.packaging.format import json_schema as package_schema

    return json.dumps(package_schema(), indent=2, ensure_ascii=False) + "\n"


@click.command("schema")
@click.option("--out", type=click.Path(path_type=Path), help="Write here instead of printing.")
@click.option("--package", is_flag=True, help="The schema of a .zpkg package's manifest.json instead.")
def schema_command(out: Path | None, package: bool) -> None:
    """Print (or write) the JSON Schema of a manifest (or a package's), generated from the models."""
    text = package_schema_text() if package else schema_text()
    if out is None:
        click.echo(text, nl=False)
    else:
        write_atomic(out, text)
