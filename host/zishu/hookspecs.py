"""The hooks plugins implement. Each says when the host calls it and what it returns.

Event hooks follow the life of a download: a logging or telemetry plugin attaches here
without touching the downloader. Registration hooks (engines, routes, job types) arrive with the
issues that need them.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("zishu")
hookimpl = pluggy.HookimplMarker("zishu")


@hookspec
def on_download_start(url: str, name: str, sha256: str | None, size: int | None, resumed_from: int) -> None:
    """A transfer of file ``name`` begins (``resumed_from`` > 0 when a partial file is reused)."""


@hookspec
def on_download_progress(name: str, done: int, total: int | None) -> None:
    """Bytes of ``name`` on disk so far, at most a few times a second. Must return quickly."""


@hookspec
def on_download_error(url: str, name: str, error: BaseException, will_retry: bool) -> None:
    """A transfer of ``name`` from ``url`` failed; ``will_retry`` tells whether another try follows."""


@hookspec
def on_download_complete(name: str, path: str, sha256: str, size: int) -> None:
    """File ``name`` was verified and moved into place at ``path``."""
