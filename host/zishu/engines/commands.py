"""``zishu engines``: the engines installed, what each loads, and the installed models it can run."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table


def installed_models(runtime, engine) -> list[str]:
    """Installed catalog models whose format and role this engine takes, and the voices that name it."""
    from zishu.resources.install import manifest_of

    found = []
    for rid, versions in sorted(runtime.registry.load().items()):
        for version in versions:
            try:
                manifest = manifest_of(runtime.registry.version_dir(rid, version))
            except (OSError, ValueError):
                continue
            spec = getattr(manifest, "spec", None)
            takes_model = (manifest.kind == "model" and spec.role == engine.info.kind
                           and spec.format in engine.info.formats)
            takes_voice = manifest.kind == "voice" and spec.engine == engine.info.name
            if takes_model or takes_voice:
                found.append(f"{rid}@{version}")
    return found


def describe(runtime) -> list[dict]:
    listed = []
    for engine in runtime.engines.engines.values():
        info = engine.info
        listed.append({"name": info.name, "kind": info.kind, "formats": list(info.formats),
                       "capabilities": sorted(info.capabilities), "languages": list(info.languages),
                       "description": info.description, "needs_model": info.needs_model,
                       "unavailable": _unavailable(engine),
                       "models": installed_models(runtime, engine)})
    return sorted(listed, key=lambda e: (e["kind"], e["name"]))


def _unavailable(engine) -> str | None:
    """Why the engine cannot run here; a plugin that raises while answering is reported, not fatal."""
    check = getattr(engine, "unavailable", None)
    if not callable(check):
        return None
    try:
        return check()
    except Exception as e:  # noqa: BLE001 - a third party's check failing must not hide the others
        return f"its availability check failed: {type(e).__name__}: {e}"


@click.command("engines")
@click.option("--json", "as_json", is_flag=True)
def engines_command(as_json):
    """Inference engines from plugins: kind, formats, capabilities, and the installed models each runs."""
    from zishu import plugins
    from zishu.runtime import Runtime

    runtime = Runtime()
    listed = describe(runtime)
    failed = dict(plugins.errors)
    if as_json:
        click.echo(json.dumps({"engines": listed, "failed_plugins": failed}, indent=1, ensure_ascii=False))
        return
    out, err = Console(), Console(stderr=True)
    if not listed:
        err.print("no engines installed: engines come from plugins (see zishu plugins)")
    else:
        table = Table(box=None)
        for col in ("kind", "name", "formats", "capabilities", "installed models"):
            table.add_column(col, overflow="fold")
        for e in listed:
            models = ", ".join(e["models"]) or ("no model needed" if not e["needs_model"] else "[dim]none installed[/]")
            if e["unavailable"]:
                models = f"[yellow]cannot run here: {e['unavailable']}[/]"
            table.add_row(e["kind"], e["name"], ", ".join(e["formats"]) or "-", ", ".join(e["capabilities"]) or "-", models)
        out.print(table)
    for name, error in failed.items():
        err.print(f"[red]plugin {name} failed[/]: {error}")
