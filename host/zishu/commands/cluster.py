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
