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
@click.option("--json", "as_json", is_flag=True, help="Print the nodes as JSON (as GET /api/cluster/nodes lists them).")
def status_command(url: str | None, as_json: bool) -> None:
    """The live nodes: their models, running jobs, free memory, GPU, load and last heartbeat."""
    import json
    import os
    import time

    from rich.console import Console

    from zishu.cluster import nodes
    from zishu.cluster.redisqueue import redacted

    url = _cluster_url(url, os.environ.get("ZISHU_QUEUE"))
    now = time.time()
    found = [nodes.public(n, now) for n in nodes.status(url)]
    if as_json:
        click.echo(json.dumps(found, indent=1))
        return
    out = Console(highlight=False)
    if not found:
        out.print(f"no live nodes on {redacted(url)}: a node shows here while its `zishu worker --join URL "
                  "--secret-file cluster.secret` runs", markup=False)
        return
    out.print(f"{len(found)} node{'' if len(found) == 1 else 's'} on {redacted(url)}", markup=False)
    out.print(status_table(found, nodes.EXPIRES_AFTER))


def _cluster_url(given: str | None, environ: str | None) -> str:
    """The Redis URL from --join, else ZISHU_QUEUE; refused when neither names a Redis."""
    from zishu.errors import UsageError

    url, where = (given, "--join") if given else (environ, "ZISHU_QUEUE")
    if not url:
        raise UsageError("no cluster: set ZISHU_QUEUE=redis://… or pass --join URL")
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise UsageError(f"{where} {url!r}: expected a Redis URL like redis://HOST:6379/0 (rediss:// for TLS)")
    return url


def status_table(found: list[dict], stale_after: float):
    """A rich table of nodes as ``nodes.public`` gives them: one row a node, its heartbeat's age in
    red once it is older than ``stale_after`` seconds (a node whose clock lags)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from zishu.sizes import byte_size

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_lines=True)
    for col in ("node", "models", "running", "RAM free", "GPU", "load", "heartbeat"):
        table.add_column(col, overflow="fold", no_wrap=col in ("RAM free", "load", "heartbeat"))
    for n in found:
        age = float(n.get("age_seconds") or 0)
        heartbeat = Text(f"{age:.0f} s ago" if age < 120 else f"{age / 60:.0f} min ago",
                         style="bold red" if age > stale_after else "green")
        if age > stale_after:
            heartbeat.append(" (stale)")
        node = Text(str(n.get("name") or n.get("id")), style="bold")
        node.append(f"\n{n.get('id')}", style="dim")
        if n.get("accepts"):
            node.append(f"\ntakes {', '.join(n['accepts'])}", style="dim")
        load = n.get("load")
        running = [" ".join(str(p) for p in (r.get("kind") or "job", r.get("model"),
                                             None if r.get("job") is None else f"#{r['job']}") if p)
                   for r in n.get("running") or []]
        table.add_row(node, Text("\n".join(n.get("models") or []) or "-"), Text("\n".join(running) or "idle"),
                      byte_size(n.get("ram_free")),
                      Text(f"{n['gpu']}\n{byte_size(n.get('vram_free'))} free") if n.get("gpu") else "-",
                      f"{load:.2f}" if isinstance(load, (int, float)) else "-", heartbeat)
    return table
