"""The built-in panels and the API, registered like any plugin's routes (internal, ``trylast``)."""

from __future__ import annotations

from zishu.hookspecs import hookimpl


@hookimpl(trylast=True)
def register_routes(register) -> None:
    from .api import api
    from .engines import engines
    from .pages import pages

    register(api)
    register(engines)
    register(pages, nav=[("Discover", "/discover"), ("Library", "/library"), ("Jobs", "/jobs"),
                         ("Engines", "/engines"), ("Plugins", "/plugins"), ("Settings", "/settings")])
