"""What a running Zishu holds for one ZISHU_HOME: the database, the plugins, the job queue, the
registry of installed resources, and the catalog the user chose.

``zishu app``, ``zishu serve`` and ``zishu worker`` each build one ``Runtime``; the web app and
the job types reach everything through it.
"""

from __future__ import annotations

import threading
from pathlib import Path

from zishu import config, plugins
from zishu.db import database, get_setting, open_database
from zishu.engines import Engines, ModelCache
from zishu.jobs import JobQueue
from zishu.resources.registry import Registry


def catalog_source(home: Path | None = None) -> str | None:
    """ZISHU_CATALOG, else the catalog set in the Settings panel, else None (the bundled snapshot)."""
    if config.catalog_source():
        return config.catalog_source()
    db_file = Path(home or config.home()) / "zishu.db"
    if database.obj is None:
        if not db_file.exists():
            return None
        open_database(db_file)
    return get_setting("catalog_url") or None


def catalog_client(home: Path | None = None):
    from zishu.catalog.client import CatalogClient

    home = Path(home or config.home())
    return CatalogClient(catalog_source(home), cache_dir=home / "cache" / "catalog")


class Runtime:
    def __init__(self, home: Path | None = None, *, queue_url: str | None = None) -> None:
        self.home = Path(home or config.home())
        self.home.mkdir(parents=True, exist_ok=True)
        self.stopping = threading.Event()  # set when the app shuts down: live streams end
        self.db = open_database(self.home / "zishu.db")
        plugins.load_plugins(disabled=get_setting("plugins.disabled", []))
        self.registry = Registry(self.home)
        self.jobs = JobQueue(self.home, url=queue_url)
        plugins.call_each("register_job_types", register=self.jobs.register)
        self.engines = Engines.from_plugins()
        self.models = ModelCache(config.memory_budget("ram"), config.memory_budget("vram"))

    def catalog(self):
        return catalog_client(self.home)

    def close(self) -> None:
        self.jobs.stop_consumer()
        if not self.db.is_closed():
            self.db.close()
