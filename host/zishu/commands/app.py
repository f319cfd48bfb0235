"""The app commands: ``zishu app`` (the default), ``serve``, ``worker``, ``plugins``, ``open``."""

from __future__ import annotations

import logging

import click
from rich.console import Console
from rich.table import Table

from zishu import config

err = Console(stderr=True)


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@click.command("serve")
@click.option("--port", type=int, default=0, show_default="a free port", help="Port on 127.0.0.1.")
@click.option("--workers", type=int, default=2, show_default=True, help="Job threads in this process (0: none, "
              "for when `zishu worker` runs them).")
@click.option("--verbose", "-v", is_flag=True)
def serve_command(port, workers, verbose):
    """Run the app without a window and print its URL (with this launch's secret) for a browser."""
    from zishu.web.server import serve_until_stopped, start_app

    _logging(verbose)
    server = start_app(consumer=workers > 0, workers=max(workers, 1), port=port)
    serve_until_stopped(server)


@click.command("app")
@click.option("--port", type=int, default=0, show_default="a free port")
@click.option("--check", "check_path", type=click.Path(dir_okay=False),
              help="Open the window, confirm the app loaded in it, save a screenshot to this PNG, close.")
@click.option("--verbose", "-v", is_flag=True)
def app_command(port, check_path, verbose):
    """Open the Zishu window (serves for a browser instead where no display is available)."""
    from zishu import desktop

    _logging(verbose)
    desktop.main(port=port, check_path=check_path)


@click.command("worker")
@click.option("--workers", type=int, default=2, show_default=True, help="Threads running jobs.")
@click.option("--join", "join_url", metavar="URL",
              help="The cluster's Redis (redis://[:PASSWORD@]host:port/0, rediss:// for TLS); default: ZISHU_QUEUE.")
@click.option("--secret-file", type=click.Path(dir_okay=False, exists=True),
              help="A copy of the cluster secret (`zishu cluster init` made it, mode 0600).")
@click.option("--accept", "accept", multiple=True, metavar="TYPE",
              help="A remote job type this node runs for others (repeat; default: all its plugins offer).")
@click.option("--verbose", "-v", is_flag=True)
def worker_command(workers, join_url, secret_file, accept, verbose):
    """Run queued jobs in this process (with ZISHU_QUEUE=redis://… or --join on any machine that shares it)."""
    import os

    from zishu.cluster import secret
    from zishu.errors import UsageError
    from zishu.runtime import Runtime

    _logging(verbose)
    if secret_file:
        os.environ[secret.SECRET_FILE_ENV] = str(secret_file)
    if join_url and not secret_file and secret.find(config.home()) is None:
        raise UsageError("--join needs the cluster secret: copy ZISHU_HOME/cluster.secret from the app's machine "
                         "(`zishu cluster init` makes it) and pass --secret-file")
    if join_url or os.environ.get("ZISHU_QUEUE"):
        # a cluster's worker runs only what is installed here: the model libraries never fetch from a hub
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    runtime = Runtime(queue_url=join_url, accept=[a for item in accept for a in item.split(",") if a] or None)
    cluster = f"; remote job types it runs for others: {', '.join(runtime.jobs.accepted()) or 'none'}" \
        if runtime.jobs.cluster else ""
    err.print(f"zishu worker: {workers} thread(s) on {runtime.jobs.description}; job types: "
              f"{', '.join(sorted(runtime.jobs.types))}{cluster}. Ctrl+C stops after the running jobs.")
    runtime.jobs.run_worker(workers)


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True)
def plugins_command(as_json):
    """Installed plugins and their status (loaded, failed, disabled), with the error of each failure."""
    import json

    from zishu import plugins
    from zishu.runtime import Runtime

    Runtime()
    listed = plugins.describe()
    if as_json:
        click.echo(json.dumps(listed, indent=1))
        return
    table = Table(box=None)
    for col in ("name", "version", "status", "hooks / error"):
        table.add_column(col, overflow="fold")
    colours = {"loaded": "green", "failed": "red", "disabled": "yellow"}
    for p in listed:
        name = f"{p['name']} [dim](built in)[/]" if p["internal"] else p["name"]
        colour = colours.get(p["status"], "dim")
        table.add_row(name, p["version"] or "", f"[{colour}]{p['status']}[/]", p["error"] or ", ".join(p["hooks"]))
    Console().print(table)


@click.command("open")
@click.argument("url")
@click.option("--install", "install_now", is_flag=True,
              help="With a package file: install it now (if needed) and open the app on its character.")
def open_command(url, install_now):
    """Open a zishu:// link (from the catalog site) or a package file in the running app, or start
    the app on it. A package opens in Characters, where its plan is shown before it installs."""
    import webbrowser
    from pathlib import Path

    from zishu.links import location, package_location
    from zishu.web.server import running_app, show_in_window

    if "://" not in url and Path(url).suffix.lower() == ".zpkg":
        if install_now:
            from zishu.commands.pack import install_package_file

            character = install_package_file(Path(url), quiet=False, as_json=False)["character"]
            path = f"/companion?character={character['id']}"
        else:
            path = package_location(str(Path(url).resolve()))
    elif install_now:
        raise click.UsageError("--install goes with a package file (FILE.zpkg)")
    else:
        path = location(url)
    info = running_app(config.home())
    if info and show_in_window(info, path):
        err.print(f"opened {path} in the Zishu window")
        return
    if info:  # an app without a window (zishu serve): its page in the browser
        target = f"{info['url'].rstrip('/')}{path}{'&' if '?' in path else '?'}token={info['secret']}"
        webbrowser.open(target)
        err.print(f"opened {path} in the running Zishu")
        return
    from zishu import desktop

    desktop.main(path=path)

