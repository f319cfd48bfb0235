"""Who this node is: a random id kept in ``ZISHU_HOME/node.id``, made on first use. Processes that
share a ZISHU_HOME (the app and a ``zishu worker`` beside it) are one node: they share its local queue."""

from __future__ import annotations

import secrets
from pathlib import Path

from zishu.files import write_atomic

FILE_NAME = "node.id"


def node_id(home: Path) -> str:
    path = Path(home) / FILE_NAME
    try:
        found = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        found = ""
    if not found:
        found = secrets.token_hex(8)
        write_atomic(path, found + "\n")
    return found
