"""The ``zishu`` command line: one click group; its commands live in ``zishu.commands`` and are
imported only when used.

Errors from the tree in ``zishu.errors`` are printed as one clear message (one line per problem)
and turned into the exit status listed in ``--help``.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from zishu import __version__
from zishu.errors import ZishuError, exit_status, exit_status_help

EXIT_CODES_HELP = exit_status_help()  # made from the classes in zishu.errors


class LazyGroup(click.Group):
    """A click group whose subcommands live in other modules, imported on first use."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module, attr = self.lazy[name].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ZishuError as e:
            click.echo(f"error: {e}", err=True)
            ctx.exit(exit_status(e))


@click.group(
    cls=LazyGroup,
    lazy={
        "catalog": "zishu_catalog.cli:catalog",
        **{
            name: f"zishu.commands.resources:{name}_command"
            for name in ("search", "info", "install", "uninstall", "list", "path", "update", "gc")
        },
        **{name: f"zishu.commands.app:{name}_command" for name in ("app", "serve", "worker", "plugins", "open")},
        "engines": "zishu.commands.engines:engines_command",
        "cluster": "zishu.commands.cluster:cluster_command",
        "run": "zishu.commands.run:run_command",
        "chat": "zishu.commands.chat:chat_command",
        "image": "zishu.commands.image:image_command",
        "live2d": "zishu.commands.live2d:live2d_command",
        "publish": "zishu.commands.publish:publish_command",
        "pack": "zishu.commands.pack:pack_command",
        "mcp": "zishu.commands.mcp:mcp_command",
        "storyboard": "zishu.commands.storyboard:storyboard_command",
    },
    epilog=EXIT_CODES_HELP,
    invoke_without_command=True,
)
@click.version_option(__version__, prog_name="zishu")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Zishu: run AI characters on your own computer, and share them. With no command: zishu app."""
    if ctx.invoked_subcommand is None:
        assert isinstance(ctx.command, LazyGroup)  # the context of this very group
        app = ctx.command.get_command(ctx, "app")
        assert app is not None  # one of the lazy commands above
        ctx.invoke(app)


def main() -> None:
    cli(prog_name="zishu")


if __name__ == "__main__":  # pragma: no cover
    main()  # click exits with the command's status
