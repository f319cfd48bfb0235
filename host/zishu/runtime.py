"""What a running Zishu holds for one ZISHU_HOME: the database, the plugins, the job queue, the
registry of installed resources, and the catalog the user chose.

``zishu app``, ``zishu serve`` and ``zishu worker`` each build one ``Runtime``; the web app and
the commands reach everything through it. Services never import it: what a job needs is handed
to the job queue here (``services``) and reaches the job through its ``JobContext``.
"""

from __future__ import annotations

import threading
from pathlib import Path

from zishu import config, plugins, settings
from zishu.catalog.chosen import chosen_catalog
from zishu.catalog.client import CatalogClient
from zishu.db import open_database
from zishu.engines import Engines, ModelCache
from zishu.jobs import JobQueue
from zishu.resources.plugin_wheels import plugin_folders
from zishu.resources.versions import VersionStore
from zishu.storyboard.projects import Storyboards
from zishu.studio.service import Studio


class Runtime:
    def __init__(self, home: Path | None = None, *, queue_url: str | None = None) -> None:
        self.home = Path(home or config.home())
        self.home.mkdir(parents=True, exist_ok=True)
        self.stopping = threading.Event()  # set when the app shuts down: live streams end
        self.db = open_database(self.home / "zishu.db")
        plugins.load_plugins(disabled=settings.load().plugins_disabled, folders=plugin_folders(self.home))
        self.registry = VersionStore(self.home)
        self.jobs = JobQueue(self.home, url=queue_url,
                             services={"catalog": self.catalog, "studio": lambda: self.studio,
                                       "storyboards": lambda: self.storyboards})
        plugins.call_each("register_job_types", register=self.jobs.register)
        self.engines = Engines.from_plugins()
        self.models = ModelCache(config.memory_budget("ram"), config.memory_budget("vram"))
        self.studio = Studio(self.home, self)  # pictures: checks, drawing, the gallery (jobs get it as a service)
        self.storyboards = Storyboards(self.home, self.registry, host=self)  # projects, shots, export

    def catalog(self) -> CatalogClient:
        """The catalog this home uses (``zishu.catalog.chosen``); jobs get it as ``ctx.catalog()``."""
        return chosen_catalog(self.home)

    def close(self) -> None:
        self.jobs.stop_consumer()
        if not self.db.is_closed():
            self.db.close()
