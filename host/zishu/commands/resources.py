"""The resource commands: ``zishu search|info|install|uninstall|list|path|update|gc``.

Each builds what it needs for ZISHU_HOME (``zishu.config``): the catalog the app uses too
(``zishu.catalog.chosen``: ZISHU_CATALOG, else the Settings catalog URL, else the bundled
snapshot), the registry and the installer. Progress goes to stderr with rich; ``--json`` prints
machine-readable results on stdout.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from zishu import config
from zishu.catalog.chosen import chosen_catalog
from zishu.catalog.client import CatalogClient
from zishu.errors import UsageError
from zishu.resources.plan import make_plan
from zishu.resources.versions import VersionStore
from zishu.sizes import SIZE_UNKNOWN, byte_size, download_size

err = Console(stderr=True)
out = Console()


def _client() -> CatalogClient:
    return chosen_catalog(config.home())


def _registry() -> VersionStore:
    home = config.home()
    home.mkdir(parents=True, exist_ok=True)
    return VersionStore(home)


@click.command("search")
@click.argument("text", nargs=-1)
@click.option("--kind", type=click.Choice(["character", "live2d", "lora", "model", "voice", "plugin"]))
@click.option("--tag")
@click.option("--license", "license_")
@click.option("--base-model")
@click.option("--sort", type=click.Choice(["popular", "trending", "new", "name"]), default="popular", show_default=True)
@click.option("--limit", type=int, default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the matching index entries as JSON.")
def search_command(text, kind, tag, license_, base_model, sort, limit, as_json):
    """Search the catalog (works offline from the cached index)."""
    found = _client().search(" ".join(text), kind=kind, tag=tag, license=license_, base_model=base_model, sort=sort,
                             limit=limit)
    if as_json:
        click.echo(json.dumps(found, ensure_ascii=False, indent=1))
        return
    if not found:
        err.print("nothing found")
        return
    table = Table(box=None)
    for col in ("id", "kind", "latest", "size", "downloads", "summary"):
        table.add_column(col, overflow="fold" if col == "summary" else "ellipsis")
    for e in found:
        table.add_row(e["id"], e["kind"], e["latest"], _entry_size(e), f"{e['downloads']:,}", e["summary"])
    out.print(table)


def _entry_size(entry: dict) -> str:
    """An index entry's download with what it requires; older indexes have only ``size``."""
    if "install_size" in entry:
        return download_size(entry["install_size"], exact=entry.get("install_size_exact", False))
    return download_size(entry.get("size"), exact=entry.get("size_exact", False))


@click.command("info")
@click.argument("resource_id")
@click.option("--json", "as_json", is_flag=True)
def info_command(resource_id, as_json):
    """Show a resource: versions, files, sizes, dependencies, license, what is installed."""
    from zishu.catalog import RESOURCE

    res = _client().resource(resource_id.lower())
    registry = _registry()
    installed = registry.versions(res.id)
    records = registry.load().get(res.id, {})
    if as_json:
        data = RESOURCE.dump_python(res, mode="json", exclude_none=True)
        data["installed"] = installed
        click.echo(json.dumps(data, ensure_ascii=False, indent=1))
        return
    out.print(f"[bold]{res.name}[/] ({res.id}, {res.kind}) — {res.summary}")
    out.print(f"license {res.license} · maintainers {', '.join(res.maintainers)} · tags {', '.join(res.tags) or '-'}")
    for v in sorted(res.versions, key=lambda v: v.released, reverse=True):
        mark = " [green](installed)[/]" if v.version in installed else ""
        measured = records.get(v.version, {}).get("files", {}) if v.version in installed else {}
        out.print(f"\n[bold]{v.version}[/] released {v.released}{mark}  "
                  f"{download_size(v.total_size, exact=v.size_exact)}")
        for f in v.files:
            seen = measured.get(f.name, {})
            size = f.size if f.size is not None else seen.get("size")
            sha = f.sha256 or seen.get("sha256")
            note = "" if f.sha256 or not sha else "  (measured at install)"
            sha_text = sha or "sha256 not published: checked against the hub's hash at download"
            out.print(f"  {f.name}  {byte_size(size) if size is not None else SIZE_UNKNOWN}  {sha_text}{note}")
        for r in v.requires:
            out.print(f"  requires {r.id} {r.version}")


@click.command("install")
@click.argument("requests", nargs=-1, required=True)
@click.option("--no-deps", is_flag=True, help="Install only what is named, not its requirements.")
@click.option("--from", "source", type=click.Path(exists=True, path_type=Path),
              help="Adopt files you already have (a file, or a folder holding the version's files).")
@click.option("--trust-unverified", is_flag=True,
              help="With --from: adopt files whose sha256 the catalog does not give (they cannot be verified).")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
@click.option("--json", "as_json", is_flag=True, help="Print what was installed as JSON.")
@click.option("--yes", "-y", is_flag=True, help="Approve installing plugins without asking (they run code in Zishu).")
def install_command(requests, no_deps, source, trust_unverified, quiet, as_json, yes):
    """Install resources (id, id@version or id@range) and what they require, or a package (FILE.zpkg).

    Downloads resume after an interruption, are verified (size and sha256) before they are put in
    place, and never run twice for the same file. A hub file whose sha256 the catalog does not
    give is checked against the hash the hub publishes; its measured sha256 and size are recorded.
    ``--from`` refuses a file that does not match, and one it cannot verify unless
    ``--trust-unverified`` is given. A plugin's wheel is installed for loading at the next start
    only after you approve what it declares (asked here, or ``--yes``).
    """
    if trust_unverified and source is None:
        raise UsageError("--trust-unverified goes with --from (downloads are always verified)")
    if len(requests) == 1 and Path(requests[0]).suffix.lower() == ".zpkg":  # a package file, not an id
        from zishu.commands.pack import install_package_file

        install_package_file(Path(requests[0]), quiet, as_json)
        return
    registry = _registry()
    plan = make_plan(_client(), list(requests), registry, with_deps=not no_deps and source is None)
    if source is not None and len(plan.steps) != 1:
        raise UsageError("--from adopts files for one resource at a time")
    plan.check_space(registry.home)
    show = not (quiet or as_json)
    if show:
        for s in plan.steps:
            state = "installed" if s.installed else download_size(s.download_size, exact=s.version.size_exact)
            err.print(f"  {s.id}@{s.version.version}  {state}")
        if len(plan.to_install) > 1:
            err.print(f"  total  {download_size(plan.download_size, exact=plan.size_exact)}")
        _print_budget(plan, registry.home)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
        console=err, disable=not show, transient=False,
    ) as progress:
        total = progress.add_task("total", total=plan.download_size or None)
        tasks: dict[str, tuple[TaskID, int]] = {}
        lock = threading.Lock()

        def on_progress(name: str, done: int, size: int | None) -> None:
            with lock:
                task, before = tasks.get(name, (None, 0))
                if task is None:
                    task = progress.add_task(name, total=size)
                progress.update(task, completed=done, total=size)
                progress.advance(total, done - before)
                tasks[name] = (task, done)

        from zishu.resources.install import installer_for

        installer = installer_for(registry, progress=on_progress)
        if source is not None:
            step = plan.steps[0]
            results = [installer.install_version(step.resource, step.version, source=source,
                                                 trust_unverified=trust_unverified)]
        else:
            results = installer.install(plan, approve_plugin=lambda res, info: _approve(res, info, yes))
    if as_json:
        click.echo(json.dumps([{"id": r.id, "version": r.version, "path": str(r.path), "downloaded": r.transferred,
                                "reused": r.reused} for r in results], indent=1))
    elif not quiet:
        for r in results:
            err.print(f"[green]✓[/] {r.id}@{r.version} → {r.path}")


def _approve(resource, info, yes: bool) -> bool:
    """Show what a plugin declares and ask the user (``--yes`` approves)."""
    from zishu.resources.plugin_wheels import consent_lines

    for line in consent_lines(resource, info):
        err.print(line, markup=False, highlight=False, soft_wrap=True)
    if yes:
        return True
    try:
        return click.confirm("Install this plugin?", default=False, err=True)
    except click.Abort:
        return False


def _print_budget(plan, home: Path) -> None:
    """What the whole thing needs (disk, RAM, VRAM), against the tiers and this machine."""
    from zishu import system
    from zishu.resources.budget import against_machine, budget_lines, plan_budget

    budget = plan_budget(plan)
    if not budget.ram and not budget.vram and len(plan.steps) == 1:
        return  # one file-only resource: its size above says it all
    machine = against_machine(budget, system.summary(home), plan.download_size)
    for line in budget_lines(budget, machine):
        err.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)


@click.command("uninstall")
@click.argument("request")
def uninstall_command(request):
    """Remove an installed resource (every version, or id@version for one)."""
    rid, _, version = request.partition("@")
    registry = _registry()
    from zishu.resources.install import Installer

    removed = Installer(registry, fetcher=None).uninstall(rid.lower(), version or None)  # type: ignore[arg-type]
    if not removed:
        raise UsageError(f"{rid} is not installed")
    err.print(f"removed {rid} {', '.join(removed)}")


@click.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_command(as_json):
    """Installed resources, their versions and disk use."""
    installed = _registry().load()
    if as_json:
        click.echo(json.dumps(installed, indent=1))
        return
    if not installed:
        err.print("nothing installed yet: try  zishu search  then  zishu install ID")
        return
    table = Table(box=None)
    for col in ("id", "version", "kind", "size", "installed"):
        table.add_column(col)
    for rid, versions in installed.items():
        for version, rec in versions.items():
            table.add_row(rid, version, rec.get("kind") or "", byte_size(rec["size_bytes"]), rec["installed_at"])
    out.print(table)


@click.command("path")
@click.argument("request")
def path_command(request):
    """Print the folder of an installed resource (exit 3, MODEL_NOT_AVAILABLE, when it is not)."""
    rid, _, version = request.partition("@")
    click.echo(_registry().path(rid.lower(), version or None))


@click.command("update")
def update_command():
    """Refresh the catalog index (a conditional request: nothing is downloaded when unchanged)."""
    client = _client()
    changed = client.update()
    if client.offline:
        err.print(f"[yellow]{client.warning}[/]")
    else:
        err.print("catalog updated" if changed else "catalog already up to date")


@click.command("gc")
def gc_command():
    """Remove partial downloads, half-installed versions and leftovers."""
    registry = _registry()
    from zishu.resources.install import Installer

    freed = Installer(registry, fetcher=None).gc(registry.home / "partials")  # type: ignore[arg-type]
    err.print(f"freed {byte_size(freed)}")
