"""The character list's index: a small summary of every installed character in one file, so that
listing characters reads that file and the registry, never the manifests (a card's manifest may be
megabytes; a list of 1,000 characters must stay quick)::

    ZISHU_HOME/characters.json
    {"format": 1,
     "characters": {"owner/name": {"key": ["1.0.2", 1733300000123456789, 2048],
                                   "summary": {"id", "name", "summary", "version", "local", "greeting_emotion",
                                               "greeting", "avatar", "derived_from", "imported_from"}}}}

The index is a cache of the version store, never the truth: an entry counts only while its
``key`` (the newest version, and the modification time and size of that version's
``manifest.json``) still matches the disk. A missing, corrupt or stale entry is rebuilt from the
manifest at the next listing, which then writes the index back; the character saves of
``zishu.companion.characters`` write their entry at once. So a catalog character the installer put
in place, a manifest edited by hand, a character deleted or restored are all seen, whoever did it.
The file is written whole (atomically) under the version store's lock.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from filelock import Timeout

from zishu.files import write_atomic
from zishu.resources.versions import MANIFEST, VersionStore

FILE = "characters.json"
FORMAT = 1
SUMMARY_FIELDS = ("id", "name", "summary", "version", "local", "greeting", "greeting_emotion", "avatar", "derived_from",
                  "imported_from")

Key = list[Any]  # [version, mtime_ns, size] of the version's manifest.json, as JSON keeps it


def index_file(store: VersionStore) -> Path:
    return store.home / FILE


def manifest_key(store: VersionStore, rid: str, version: str) -> Key | None:
    """What an entry for ``rid@version`` must carry to count; None when its manifest is gone."""
    try:  # os.stat on a joined string: a listing does this for every character, pathlib costs 4x more
        stat = os.stat(os.path.join(store.root, rid, version, MANIFEST))
    except (OSError, ValueError):
        return None
    return [version, stat.st_mtime_ns, stat.st_size]


def read_index(store: VersionStore) -> dict[str, dict[str, Any]]:
    """id → {"key", "summary"} for every well-formed entry; {} when the file is missing or corrupt."""
    try:
        data = json.loads(index_file(store).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    entries = data.get("characters") if isinstance(data, dict) and data.get("format") == FORMAT else None
    if not isinstance(entries, dict):
        return {}
    return {rid: entry for rid, entry in entries.items() if _well_formed(rid, entry)}


def _well_formed(rid: str, entry: Any) -> bool:
    if not isinstance(entry, dict) or not isinstance(entry.get("key"), list) or len(entry["key"]) != 3:
        return False
    summary = entry.get("summary")
    return (isinstance(summary, dict) and set(summary) == set(SUMMARY_FIELDS) and summary["id"] == rid
            and isinstance(summary["name"], str) and isinstance(summary["version"], str)
            and isinstance(summary["avatar"], dict))


def write_index(store: VersionStore, entries: dict[str, dict[str, Any]], *, wait: bool = True) -> None:
    """Replace the index with ``entries`` under the version store's lock. With ``wait=False`` (a
    listing refreshing the cache) nothing is written while someone else holds the lock: the next
    listing will."""
    body = {"format": FORMAT, "characters": {rid: entries[rid] for rid in sorted(entries)}}
    try:
        with store.lock.acquire(timeout=-1 if wait else 0):
            write_atomic(index_file(store), json.dumps(body, ensure_ascii=False, separators=(",", ":")) + "\n")
    except Timeout:
        pass


def put_entry(store: VersionStore, rid: str, key: Key, summary: dict[str, Any]) -> None:
    """Write one character's entry (a save), leaving the others as they are."""
    with store.lock:
        entries = read_index(store)
        entries[rid] = {"key": key, "summary": summary}
        write_index(store, entries)
