"""The ``.zpkg`` format, registered through ``register_package_formats`` as an internal plugin
(``trylast``: a third party registering ``zpkg`` first replaces it)."""

from __future__ import annotations

from zishu.hookspecs import hookimpl

from .format import MODES, SUFFIX
from .pack import write_zpkg
from .unpack import open_zpkg


@hookimpl(trylast=True)
def register_package_formats(register) -> None:
    register("zpkg", (SUFFIX,), write_zpkg, open_zpkg, modes=MODES, title="Zishu package (.zpkg)")
