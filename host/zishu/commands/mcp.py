"""``zishu mcp``: Zishu's MCP server over stdio, for Claude Desktop and other MCP clients that start
it themselves (the same tools as /mcp on the local API port; ``zishu.web.mcp_tools``)."""

from __future__ import annotations

import logging

import click


@click.command("mcp")
@click.option("--verbose", "-v", is_flag=True, help="Log to stderr (stdout carries the protocol).")
def mcp_command(verbose):
    """Serve Zishu's MCP tools over stdin/stdout (an MCP client starts this command)."""
    from zishu.companion.sessions import CompanionSessions
    from zishu.runtime import Runtime
    from zishu.web.mcp_tools import build_server

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # stderr
    runtime = Runtime()
    sessions = CompanionSessions(runtime)
    try:
        build_server(runtime, sessions).run("stdio")
    finally:
        sessions.close_all()
        runtime.models.unload()
        runtime.close()
