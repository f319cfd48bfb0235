"""``zishu publish CHARACTER``: one of your characters to the community catalog, by release and pull request.

Parses the options, calls ``zishu.publishing.publish`` and renders: the steps and an upload bar on
stderr (rich), every request with ``--dry-run``, then the pull request's URL (or, dry, the manifest).
"""

from __future__ import annotations

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TransferSpeedColumn

from zishu import config
from zishu.resources.versions import VersionStore

err = Console(stderr=True)


@click.command("publish")
@click.argument("character", metavar="CHARACTER")
@click.option("--repo", metavar="OWNER/NAME", help="GitHub repository whose release holds the files "
              "[default: <your login>/<the character's name>, made if missing].")
@click.option("--catalog", "catalog_repo", metavar="OWNER/NAME",
              help="The catalog repository the pull request goes to "
                   "[default: ZISHU_CATALOG_REPO, else zishu-ai/zishu].")
@click.option("--license", "license_", metavar="SPDX", help="The license to publish under, e.g. CC-BY-4.0.")
@click.option("--version", "version", metavar="X.Y.Z", help="The version to publish [default: the character's].")
@click.option("--dry-run", is_flag=True, help="Print every request instead of sending it (no token needed).")
@click.option("--login", metavar="LOGIN", help="With --dry-run: the GitHub login to show [default: your-login].")
def publish_command(character, repo, catalog_repo, license_, version, dry_run, login):
    """Publish your character CHARACTER (local/NAME) to the catalog.

    Uploads its files as assets of a GitHub release, then opens a pull request that adds its manifest
    to the catalog. The token comes from ZISHU_GITHUB_TOKEN or GITHUB_TOKEN, the OS keyring
    (keyring set zishu github), or gh auth token; Zishu never writes it down.
    """
    from zishu.publishing.publish import publish

    home = config.home()
    home.mkdir(parents=True, exist_ok=True)
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=err, transient=True, disable=dry_run) as bar:
        task: TaskID | None = None

        def progress(event: dict) -> None:
            nonlocal task
            if "total" in event:
                if task is None:
                    task = bar.add_task("uploading", total=event["total"])
                bar.update(task, completed=event["done"], description=event["message"])
            elif not dry_run:
                err.print(f"[bold]·[/bold] {event['message']}")

        def show(request) -> None:
            if dry_run:
                click.echo(f"would send: {request}")

        done = publish(VersionStore(home), character, dry_run=dry_run, repo=repo, catalog_repo=catalog_repo,
                       license=license_, version=version, login=login, on_request=show, progress=progress)
    if dry_run:
        click.echo(f"\n{len(done.requests)} requests; nothing was sent. The manifest would be:\n")
        click.echo(done.manifest)
    else:
        click.echo(f"Published {done.id} {done.version}: release {done.release_url}")
        click.echo(f"Pull request: {done.pull_request_url}")
