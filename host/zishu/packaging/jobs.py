"""The ``pack`` and ``install-package`` job types: what the Characters page's Pack button and a
package dropped on the window run on the job queue (internal plugin, ``trylast``).

``pack``: ``{character, mode, out, format}`` → ``{"path"}``; progress is the bytes written.
``install-package``: ``{path}`` → what landed (the character id and version, the resources).
"""

from __future__ import annotations

from pathlib import Path

from zishu.hookspecs import hookimpl
from zishu.jobs import JobContext
from zishu.resources.versions import VersionStore

from .packages import install_package_file, pack_character


def pack(ctx: JobContext, character: str, out: str, mode: str = "standalone", format: str = "zpkg") -> dict:
    store = VersionStore(ctx.home)

    def progress(done: int, total: int | None, message: str) -> None:
        ctx.check()
        ctx.progress(done, total, message)

    path = pack_character(store, character, Path(out), mode=mode, format=format, catalog=ctx.catalog(),
                          progress=progress)
    return {"path": str(path), "size": path.stat().st_size, "mode": mode, "format": format}


def install_package(ctx: JobContext, path: str) -> dict:
    from zishu.resources.install import installer_for

    store = VersionStore(ctx.home)

    def on_download(name: str, done: int, size: int | None) -> None:
        ctx.progress(done, size, f"downloading {name}")

    installer = installer_for(store, progress=on_download, cancelled=ctx.cancelled)
    return install_package_file(store, Path(path), installer=installer,
                                progress=lambda done, total, message: ctx.progress(done, total, message))


@hookimpl(trylast=True)
def register_job_types(register) -> None:
    register("pack", pack, title=lambda p: f"Pack {p.get('character', '?')} ({p.get('mode', 'standalone')})")
    register("install-package", install_package, title=lambda p: f"Install {Path(str(p.get('path', '?'))).name}")
