"""``zishu mcp``: Zishu's MCP server over stdio, for Claude Desktop and other MCP clients that start
it themselves (the same tools as /mcp on the local API port; ``zishu.web.mcp_tools``).

The jobs its tools start (generate_image, create_storyboard, export_video) run in this process, on
the queue of ZISHU_HOME (a running app or ``zishu worker`` may take them too: they share it).
"""

from __future__ import annotations

import logging

import click


@click.command("mcp")
@click.option("--verbose", "-v", is_flag=True, help="Log to stderr (stdout carries the protocol).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(0, 8),
              help="Threads running the jobs the tools start (0: leave them to a running app or zishu worker).")
def mcp_command(verbose, workers):
    """Serve Zishu's MCP tools over stdin/stdout (an MCP client starts this command)."""
    from zishu.companion.sessions import CompanionSessions
    from zishu.runtime import Runtime
    from zishu.web.mcp_tools import build_server

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # stderr
    runtime = Runtime()
    sessions = CompanionSessions(runtime)
    if workers:
        runtime.jobs.start_consumer(workers)
    try:
        build_server(runtime, sessions, local_files=True).run("stdio")
    finally:
        if workers:
            runtime.jobs.stop_consumer()
        sessions.close_all()
        runtime.models.unload()
        runtime.close()
