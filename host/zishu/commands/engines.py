"""``zishu engines``: the engines installed, what each loads, and the installed models it can run."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table


@click.command("engines")
@click.option("--json", "as_json", is_flag=True)
def engines_command(as_json):
    """Inference engines from plugins: kind, formats, capabilities, and the installed models each runs."""
    from zishu import plugins
    from zishu.resources.engine_models import describe_engines
    from zishu.runtime import Runtime

    runtime = Runtime()
    listed = describe_engines(runtime.engines, runtime.registry)
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
            table.add_row(e["kind"], e["name"], ", ".join(e["formats"]) or "-", ", ".join(e["capabilities"]) or "-",
                          models)
        out.print(table)
    for name, error in failed.items():
        err.print(f"[red]plugin {name} failed[/]: {error}")
