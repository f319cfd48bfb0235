"""``zishu catalog import-card`` and ``export-card``: SillyTavern character cards to manifests and
back (``zishu.catalog.cards`` does the mapping; mounted under ``zishu catalog`` by zishu_catalog.cli)."""

from __future__ import annotations

from pathlib import Path

import click

from zishu.catalog import read_manifest
from zishu.catalog.cards import (
    SCHEMA_REF,
    card_json_text,
    card_to_manifest,
    import_notes,
    manifest_text,
    manifest_to_card,
    read_card_file,
    write_card_png,
)
from zishu.errors import UsageError
from zishu.files import SHARED_FILE_MODE, write_atomic
from zishu.ids import is_id

ROOT_OPTION = click.option(
    "--root", type=click.Path(path_type=Path), default=Path("registry_index"), show_default=True,
    help="The catalog source folder.",
)  # fmt: skip


@click.command("import-card")
@click.argument("card_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--owner", required=True, help="Your GitHub login: the manifest's id is <owner>/<name>.")
@click.option("--name", "slug", help="The catalog name (a-z, 0-9, '-'). Default: made from the character's name.")
@click.option("--license", "license_", metavar="SPDX", help="The license the creator chose (required), e.g. CC-BY-4.0.")
@click.option("--out",
              help="Where to write the manifest ('-' prints it). Default: <root>/resources/<owner>/<name>.yaml")
@ROOT_OPTION
@click.option("--force", is_flag=True, help="Overwrite an existing manifest.")
def import_card_command(
    card_file: Path, owner: str, slug: str | None, license_: str | None, out: str | None, root: Path, force: bool
) -> None:
    """Make a character manifest from a SillyTavern character card (PNG or JSON; V1, V2 or V3)."""
    if not license_:
        raise click.UsageError(
            "--license is required: character cards carry no license, so name the one the creator chose "
            "(an SPDX id such as CC-BY-4.0, CC-BY-NC-4.0 or MIT, or LicenseRef-<name>)"
        )
    file = str(card_file)
    card, is_png = read_card_file(card_file)
    resource = card_to_manifest(card, owner=owner, license=license_, slug=slug, file=file)
    path = root / "resources" / f"{resource.id}.yaml" if out is None else Path(out)
    text = manifest_text(resource, file, SCHEMA_REF if out is None else None)
    if out == "-":
        click.echo(text, nl=False)
    else:
        if path.exists() and not force:
            raise UsageError(f"{path} already exists; pass --force to overwrite it")
        write_atomic(path, text, SHARED_FILE_MODE)
        click.echo(f"wrote {path}", err=True)
    for note in import_notes(card, resource, file, is_png):
        click.echo(f"note: {note}", err=True)


@click.command("export-card")
@click.argument("manifest")
@click.option("--out", required=True, help="The card to write: FILE.json, FILE.png, or '-' to print JSON.")
@click.option(
    "--spec", type=click.Choice(["v2", "v3"]), help="Card spec. Default: the one it was imported from, else v2."
)
@click.option("--image", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Picture for a PNG card.")
@ROOT_OPTION
def export_card_command(manifest: str, out: str, spec: str | None, image: Path | None, root: Path) -> None:
    """Make a SillyTavern character card from a character manifest (a path, or an id in <root>/resources/)."""
    path = Path(manifest)
    if not path.exists() and is_id(manifest):
        path = root / "resources" / f"{manifest}.yaml"
    if not path.exists():
        raise UsageError(f"{manifest}: no such manifest (give a path, or an id found in {root}/resources/)")
    card = manifest_to_card(read_manifest(path), spec)
    suffix = Path(out).suffix.lower()
    if out == "-" or suffix == ".json":
        if image is not None:
            raise UsageError("--image is only for PNG cards (--out FILE.png)")
        if out == "-":
            click.echo(card_json_text(card), nl=False)
            return
        write_atomic(Path(out), card_json_text(card), SHARED_FILE_MODE)
    elif suffix == ".png":
        write_card_png(card, Path(out), image)
    else:
        raise UsageError(f"--out {out}: name a .json or .png file (or '-' for JSON on standard output)")
    click.echo(f"wrote {out}", err=True)
