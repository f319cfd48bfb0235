"""``zishu catalog``: the maintainers' commands, each defined in the module that does the work (the
card commands, which the app shares, in ``zishu.commands.cards``)."""

from __future__ import annotations

import click

from zishu.cli import EXIT_CODES_HELP, LazyGroup


@click.group(
    cls=LazyGroup,
    lazy={
        "validate": "zishu_catalog.validate:validate_command",
        "build": "zishu_catalog.build:build_command",
        "import-card": "zishu.commands.cards:import_card_command",
        "export-card": "zishu.commands.cards:export_card_command",
        "new": "zishu_catalog.scaffold:new_command",
        "stats": "zishu_catalog.stats:stats_command",
        "schema": "zishu_catalog.schema:schema_command",
        "snapshot": "zishu_catalog.snapshot:snapshot_command",
    },
    epilog=EXIT_CODES_HELP,
)
def catalog() -> None:
    """Validate, build and maintain the community catalog (registry_index/)."""
