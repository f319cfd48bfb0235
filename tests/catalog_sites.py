"""Building small catalogs and serving them on 127.0.0.1, for the build and browser tests."""

from __future__ import annotations

import functools
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

from conftest import LoopbackServer, make_manifest, write_manifest

REPO = Path(__file__).resolve().parent.parent
SITE = REPO / "catalog_site"
KINDS = ("character", "live2d", "lora", "model", "voice", "plugin")


def populate(registry: Path, count: int) -> list[dict]:
    """Write ``count`` valid manifests of every kind; a few have names and tags tests look for."""
    written = []
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        data = make_manifest(
            f"owner{i % 7}/item-{i:04d}",
            kind,
            name=f"Item {i:04d}",
            summary=f"Synthetic {kind} number {i}.",
            tags=["test", f"group-{i % 5}"],
        )
        data["versions"][0]["released"] = f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}"
        data["versions"][0]["files"][0]["sha256"] = f"{i:064x}"
        data["versions"][0]["files"][0]["size"] = 1000 + i
        written.append(data)
    star = make_manifest(
        "zishu/moonlit-violinist",
        "character",
        name="Moonlit Violinist",
        summary="A quiet musician who plays at night.",
        tags=["music", "night"],
        description="Plays the **violin**.\n\n<script>alert('x')</script>",
    )
    star["versions"][0]["files"][0].update(name="portrait.png", size=123456, sha256="ab" * 32)
    star["versions"][0]["files"][0]["url"] = "https://github.com/zishu/moonlit/releases/download/v1.0.0/portrait.png"
    written.append(star)
    for data in written:
        write_manifest(registry, data)
    return written


class SiteServer(LoopbackServer):
    """A static server for a built site."""

    def __init__(self, root: Path) -> None:
        super().__init__(functools.partial(_QuietHandler, directory=str(root)))

    @property
    def url(self) -> str:
        return super().url + "/"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass
