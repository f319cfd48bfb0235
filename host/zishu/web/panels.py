"""The built-in panels and the API, registered like any plugin's routes (internal, ``trylast``)."""

from __future__ import annotations

from zishu.hookspecs import hookimpl


@hookimpl(trylast=True)
def register_routes(register) -> None:
    from .api import api
    from .avatar import avatar
    from .characters import characters
    from .cluster import cluster
    from .companion import companion
    from .engines import engines
    from .mcp_http import mcp_http
    from .metrics import metrics
    from .openai_api import openai_api
    from .openapi import openapi
    from .packages import packages
    from .pages import pages
    from .safety import safety
    from .sdapi import sdapi
    from .storyboard import storyboard
    from .studio import studio
    from .styles import styles

    register(api)
    register(openai_api)
    register(mcp_http)
    register(openapi)
    register(sdapi)
    register(metrics)
    register(companion, nav=("Companion", "/companion"))
    register(characters, nav=("Characters", "/characters"))
    register(avatar)
    register(packages)
    register(engines)
    register(safety)
    register(styles)
    register(studio, nav=("Studio", "/studio"))  # the page itself is in pages.py
    register(storyboard, nav=("Storyboard", "/storyboard"))
    register(cluster)
    register(pages, nav=[("Discover", "/discover"), ("Library", "/library"), ("Jobs", "/jobs"),
                         ("Nodes", "/nodes"), ("Engines", "/engines"), ("Plugins", "/plugins"),
                         ("Settings", "/settings")])
