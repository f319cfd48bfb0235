"""The catalog this ZISHU_HOME uses: ``ZISHU_CATALOG``, else the catalog URL set in the Settings
panel, else the snapshot bundled with the package (works offline).

``zishu search|info|install|update``, the app's Install button (through the job's context) and
the app's catalog pages all ask here, so they always read the same catalog.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from zishu import config
from zishu.db import Setting, database, get_setting

from .client import CatalogClient

CATALOG_SETTING = "catalog_url"


def catalog_source(home: Path | None = None) -> str | None:
    """ZISHU_CATALOG, else the catalog set in the Settings panel, else None (the bundled snapshot)."""
    if config.catalog_source():
        return config.catalog_source()
    return _saved_setting(Path(home or config.home()) / "zishu.db", CATALOG_SETTING) or None


def chosen_catalog(home: Path | None = None) -> CatalogClient:
    """The catalog client for ``home`` (default ZISHU_HOME), caching the index in ``home/cache/catalog``."""
    home = Path(home or config.home())
    return CatalogClient(catalog_source(home), cache_dir=home / "cache" / "catalog")


def _saved_setting(db_file: Path, key: str) -> Any:
    """A setting of the database ``db_file``: through the app's connection when this process has
    that database open, else read from the file without opening it for the process (a command
    run outside the app, or another ZISHU_HOME's database); None when there is none yet."""
    bound = database.obj
    if bound is not None and Path(bound.database).resolve() == db_file.resolve():
        return get_setting(key)
    if not db_file.is_file():
        return None
    try:
        connection = sqlite3.connect(str(db_file), timeout=30)
        try:
            row = connection.execute(f'SELECT value FROM "{Setting._meta.table_name}" WHERE key = ?',
                                     (key,)).fetchone()
        finally:
            connection.close()
    except sqlite3.Error:  # a database from before settings existed, or not a database at all
        return None
    return json.loads(row[0]) if row else None
