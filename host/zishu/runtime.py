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
from zishu.cluster import secret as cluster_secret
from zishu.db import open_database
from zishu.engines import Engines, ModelCache
from zishu.jobs import JobQueue
from zishu.jobs.queue import queue_url as queue_env
from zishu.resources.plugin_wheels import plugin_folders
from zishu.resources.versions import VersionStore
from zishu.storyboard.projects import Storyboards
from zishu.studio.service import Studio


class Runtime:
    def __init__(self, home: Path | None = None, *, queue_url: str | None = None,
                 accept: list[str] | None = None) -> None:
        """``queue_url``: the Redis queue (default ``ZISHU_QUEUE``); on Redis the tasks are signed
        with the cluster secret (``zishu.cluster.secret``: ``ZISHU_CLUSTER_SECRET_FILE``, else
        ``ZISHU_HOME/cluster.secret``, made there when missing). ``accept``: the remote job types
        this process takes from other nodes (None: all its plugins registered)."""
        self.home = Path(home or config.home())
        self.home.mkdir(parents=True, exist_ok=True)
        self.stopping = threading.Event()  # set when the app shuts down: live streams end
        self.db = open_database(self.home / "zishu.db")
        plugins.load_plugins(disabled=settings.load().plugins_disabled, folders=plugin_folders(self.home))
        self.registry = VersionStore(self.home)
        url = queue_url if queue_url is not None else queue_env()
        secret = None
        if url:
            found = cluster_secret.find(self.home) or cluster_secret.init(self.home)
            secret = cluster_secret.read(found)
        # "engine_host": what ``zishu.engines.use`` needs (registry, engines, model cache): the voice and text jobs
        self.jobs = JobQueue(self.home, url=url, services={"catalog": self.catalog, "offers": self.offers,
                                       "studio": lambda: self.studio, "storyboards": lambda: self.storyboards,
                                       "engine_host": lambda: self},
                             secret=secret, accept=accept)
        plugins.call_each("register_job_types", register=self.jobs.register)
        self.engines = Engines.from_plugins()
        self.models = ModelCache(config.memory_budget("ram"), config.memory_budget("vram"))
        self.studio = Studio(self.home, self)  # pictures: checks, drawing, the gallery (jobs get it as a service)
        self.storyboards = Storyboards(self.home, self.registry, host=self)  # projects, shots, export

    def catalog(self) -> CatalogClient:
        """The catalog this home uses (``zishu.catalog.chosen``); jobs get it as ``ctx.catalog()``."""
        return chosen_catalog(self.home)

    def offers(self) -> dict:
        """What this node offers the cluster: installed models and voices (id@version), its engines."""
        installed = self.registry.load()
        return {"models": sorted(f"{rid}@{v}" for rid, versions in installed.items() for v, rec in versions.items()
                                 if rec.get("kind") in ("model", "voice", "lora")),
                "engines": sorted(self.engines.engines)}

    def close(self) -> None:
        self.jobs.stop_consumer()
        if not self.db.is_closed():
            self.db.close()
