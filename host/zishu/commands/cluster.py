"""``zishu cluster``: the several-machines commands (``init`` makes the secret that signs tasks)."""

from __future__ import annotations

import click

from zishu import config


@click.group("cluster")
def cluster_command() -> None:
    """Several machines on one Redis queue: the shared secret, the nodes."""


@cluster_command.command("init")
@click.option("--force", is_flag=True, help="Replace an existing secret (every worker then needs the new copy).")
def init_command(force: bool) -> None:
    """Write the cluster secret (0600) to ZISHU_HOME/cluster.secret and print where it is."""
    from zishu.cluster import secret

    home = config.home()
    existed = secret.default_path(home).exists()
    path = secret.init(home, force=force)
    state = "kept the existing secret" if existed and not force else "wrote a new secret"
    click.echo(f"{state}: {path}")
    click.echo("copy it to each worker machine (mode 0600) and run there: "
               f"zishu worker --join redis://… --secret-file {path.name}")


@cluster_command.command("status")
@click.option("--join", "url", metavar="URL", help="The cluster's Redis; default: ZISHU_QUEUE.")
@click.option("--json", "as_json", is_flag=True)
def status_command(url: str | None, as_json: bool) -> None:
    """The live nodes: their job types, models, running jobs, free memory, GPU, load, last heartbeat."""
    import json
    import os
    import time

    from rich.console import Console
    from rich.table import Table

    from zishu.cluster import nodes
    from zishu.errors import UsageError

    url = url or os.environ.get("ZISHU_QUEUE")
    if not url:
        raise UsageError("no cluster: set ZISHU_QUEUE=redis://… or pass --join URL")
    found = nodes.status(url)
    if as_json:
        click.echo(json.dumps(found, indent=1))
        return
    if not found:
        click.echo("no live nodes (a node shows here while its `zishu worker` runs)")
        return
    table = Table(box=None)
    for col in ("worker", "accepts", "models", "running", "RAM free", "GPU", "load", "heartbeat"):
        table.add_column(col, overflow="fold")
    for n in found:
        gpu = n.get("gpu") or {}
        table.add_row(n["worker"], ", ".join(n.get("accepts", [])) or "-", ", ".join(n.get("models", [])) or "-",
                      str(len(n.get("running", []))), f"{n.get('ram_free', 0) / 2**30:.1f} GiB",
                      f"{gpu.get('name')} ({gpu.get('vram_free', 0) / 2**30:.1f} GiB free)" if gpu else "-",
                      f"{n.get('load') or 0:.2f}", f"{time.time() - n.get('heartbeat', 0):.1f} s ago")
    Console().print(table)
