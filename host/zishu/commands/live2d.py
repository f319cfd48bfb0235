"""``zishu live2d core [PATH_OR_URL]``: put the Live2D Cubism Core where the app finds it, or say
whether it is there (``zishu.companion.live2d_core`` does the work)."""

from __future__ import annotations

import click

from zishu.companion.cubism_core import describe, installed_core_version
from zishu.companion.live2d_core import CORE_NAME, DOWNLOAD_PAGE, NOTICE, core_path, install_core


@click.group("live2d")
def live2d_command() -> None:
    """Live2D avatars: the Cubism Core they need."""


@live2d_command.command("core")
@click.argument("source", required=False)
def core_command(source: str | None) -> None:
    """Put the Cubism Core (live2dcubismcore.min.js) where the app finds it.

    SOURCE is the file (from Live2D's Cubism SDK for Web, Core/live2dcubismcore.min.js) or an
    https:// URL of it. Without SOURCE: say whether it is installed.
    """
    click.echo(NOTICE)
    click.echo("")
    if source is None:
        where = core_path()
        if where.is_file():
            click.echo(f"Installed: {where}")
            click.echo(describe(installed_core_version(where)))
        else:
            click.echo(f"Not installed. Get the Cubism SDK for Web from {DOWNLOAD_PAGE}, then run:\n"
                       f"  zishu live2d core PATH/TO/{CORE_NAME}")
        return
    dest = install_core(source)
    click.echo(f"Installed the Cubism Core at {dest}: Live2D avatars work in the app now.")
    click.echo(describe(installed_core_version(dest)))
