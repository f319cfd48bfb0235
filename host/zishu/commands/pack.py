"""``zishu pack CHARACTER`` and ``zishu install FILE.zpkg``: sharing a character as one file
(the work is ``zishu.packaging``'s). Progress goes to stderr with rich."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from zishu.packaging.format import MODES, package_file_name
from zishu.resources.versions import VersionStore

err = Console(stderr=True)


def _store() -> VersionStore:
    """The version store of ZISHU_HOME, with the plugins loaded (their package formats)."""
    from zishu.runtime import Runtime

    runtime = Runtime()  # the database (the disabled plugins are a setting) and the plugins
    runtime.close()
    return runtime.registry


def _bar(show: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    TimeRemainingColumn(), console=err, disable=not show, transient=False)


@click.command("pack")
@click.argument("character")
@click.option("--mode", type=click.Choice(MODES), default="standalone", show_default=True,
              help="standalone: everything but the base model inside; reference: only the character inside, "
                   "the rest named by catalog id, URL and sha256; hybrid: small parts inside, big ones "
                   "referenced with a copy inside as fallback.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="The file to write. Default: <name>-<version>.zpkg here.")
@click.option("--format", "format_", default="zpkg", show_default=True,
              help="A registered package format (zpkg, sillytavern-card, or a plugin's).")
@click.option("--app", "app", is_flag=True, help="Also write a launcher beside the package for this system "
              "(.desktop, .cmd or .command) that installs it if needed and opens Zishu on the character.")
@click.option("--app-for", type=click.Choice(["linux", "windows", "macos"]), multiple=True,
              help="Write the launcher for this system (repeatable); implies --app.")
@click.option("--quiet", "-q", is_flag=True)
def pack_command(character, mode, out, format_, app, app_for, quiet):
    """Pack CHARACTER (an installed id, e.g. local/aria) and what it needs into one file to share."""
    from zishu.catalog.chosen import chosen_catalog
    from zishu.packaging.packages import pack_character

    store = _store()
    rid = character.lower()
    if out is None:
        newest = (store.versions(rid) or ["0.0.0"])[0]
        out = Path(package_file_name(rid, newest))
        if format_ == "sillytavern-card":
            out = out.with_suffix(".png")
    with _bar(not quiet) as bar:
        task = bar.add_task(f"packing {rid}", total=None)
        path = pack_character(store, rid, out, mode=mode, format=format_, catalog=chosen_catalog(store.home),
                              progress=lambda done, total, message: bar.update(task, completed=done, total=total))
    err.print(f"[green]✓[/] wrote {path} ({path.stat().st_size:,} bytes, {mode})", soft_wrap=True)  # paths unbroken
    if app or app_for:
        from zishu.packaging.launchers import write_launcher

        name = _character_name(store, rid)
        for system in app_for or (None,):
            launcher = write_launcher(path, name, system)
            err.print(f"[green]✓[/] wrote {launcher} (opens {name} in Zishu; Zishu must be installed)", soft_wrap=True)


def _character_name(store: VersionStore, rid: str) -> str:
    from zishu.resources.install import manifest_of

    return manifest_of(store.path(rid)).name


def install_package_file(path: Path, quiet: bool, as_json: bool) -> dict:
    """``zishu install FILE``: verify and install a package; prints what landed."""
    from zishu.packaging.packages import install_package_file as install
    from zishu.resources.install import installer_for

    store = _store()
    show = not (quiet or as_json)
    with _bar(show) as bar:
        tasks: dict[str, object] = {}

        def on_download(name: str, done: int, size: int | None) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=size)
            bar.update(tasks[name], completed=done, total=size)  # type: ignore[arg-type]

        result = install(store, path, installer=installer_for(store, progress=on_download),
                         progress=lambda done, total, message: bar.console.print(message) if show else None)
    character = result["character"]
    if as_json:
        click.echo(json.dumps(result, indent=1, ensure_ascii=False))
    elif not quiet:
        for line in result["summary"]["budget"]:  # what it all needs, against this machine and the tiers
            err.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
        for r in result["resources"]:
            err.print(f"[green]✓[/] {r['id']}@{r['version']} ({r['how']})")
        if character.get("new"):
            before = f" (your version {character['previous']} is kept; Undo: zishu uninstall " \
                     f"{character['id']}@{character['version']})" if character.get("previous") else ""
            err.print(f"[green]✓[/] {character['id']}@{character['version']}{before}")
        else:
            err.print(f"{character['id']}@{character['version']} is already installed")
    return result
