"""SillyTavern world-info files (lorebooks such as ``Eldoria.json``) imported into a character.

A world-info file is ``{"entries": {"<uid>": {"key": [...], "keysecondary": [...], "comment",
"content", "constant", "selective", "order", "disable", "caseSensitive", ...}}}`` (the fields of
``newWorldInfoEntryDefinition`` in SillyTavern's public/scripts/world-info.js). Each entry is first
shaped as a card's ``character_book`` entry the way SillyTavern itself does it when it embeds a
world in a card (``convertWorldInfoToCharacterBook`` in src/endpoints/characters.js), then read
with the card importer's lenses, so a world and a card's book become the same lorebook entries.

``read_world_info(data, filename)``  → (lorebook entries as manifest data, keyless entries kept aside)
``import_lorebook(runtime, rid, data, filename)``  adds them to character ``rid`` as a new version
(``undo_character_edit`` takes it back); returns ``update_character``'s answer plus ``added``.

The card limits apply: at most ``MAX_LORE_ENTRIES`` entries in the file and in the character's
lorebook after the import, a file of at most ``MAX_JSON_BYTES``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from zishu.catalog.cards import ENTRY_LENSES, EXTENSION_KEY, MAX_FIELD_CHARS, MAX_JSON_BYTES, MAX_LORE_ENTRIES
from zishu.errors import UsageError

from .characters import get_character, update_character

# world-info field → character_book field, as SillyTavern converts them
MAPPED = {"uid": "id", "key": "keys", "keysecondary": "secondary_keys", "comment": "comment", "content": "content",
          "constant": "constant", "selective": "selective", "order": "insertion_order"}
HANDLED = {*MAPPED, "disable", "caseSensitive"}


def _shown(filename: str) -> str:
    return Path(str(filename or "").replace("\\", "/")).name[:200] or "the world-info file"


def _book_entry(entry: dict) -> dict:
    """A world-info entry as a character_book entry (SillyTavern's own conversion)."""
    book = {MAPPED[k]: v for k, v in entry.items() if k in MAPPED}
    book["enabled"] = entry.get("disable") is not True
    book["case_sensitive"] = entry.get("caseSensitive") is True
    book.setdefault("selective", True)  # SillyTavern's default: secondary keys count
    if "insertion_order" not in book and "priority" in entry:
        book["insertion_order"] = entry["priority"]
    return book


def read_world_info(data: bytes, filename: str) -> tuple[list[dict], list[dict]]:
    """The lorebook entries (manifest data) of a world-info file, and its entries without keywords
    as ``{"index", "entry"}`` (a constant one is always injected, as SillyTavern does). Raises
    UsageError saying what is wrong with the file."""
    shown = _shown(filename)
    if len(data) > MAX_JSON_BYTES:
        raise UsageError(f"{shown}: is {len(data) / 2**20:.1f} MiB; a world-info file may be at most "
                         f"{MAX_JSON_BYTES // 2**20} MiB")
    try:
        world = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        raise UsageError(f"{shown}: is not a JSON file; choose a SillyTavern world-info (lorebook) .json") from None
    entries = world.get("entries") if isinstance(world, dict) else None
    if isinstance(entries, dict):
        entries = list(entries.values())
    if not isinstance(entries, list):
        raise UsageError(f'{shown}: has no "entries" object; it is not a SillyTavern world-info file')
    if len(entries) > MAX_LORE_ENTRIES:
        raise UsageError(f"{shown}: has {len(entries):,} entries; a lorebook may have at most {MAX_LORE_ENTRIES:,}")
    lorebook: list[dict] = []
    keyless: list[dict] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise UsageError(f"{shown}: entry {index + 1} must be an object")
        content = entry.get("content", "")
        if not isinstance(content, str):
            raise UsageError(f"{shown}: entry {index + 1}'s content must be text")
        if len(content) > MAX_FIELD_CHARS:
            raise UsageError(f"{shown}: entry {index + 1}'s content is {len(content):,} characters long; "
                             f"at most {MAX_FIELD_CHARS:,}")
        for field in ("key", "keysecondary"):
            keys = entry.get(field, [])
            if not (isinstance(keys, str) or (isinstance(keys, list) and all(isinstance(k, str) for k in keys))):
                raise UsageError(f"{shown}: entry {index + 1}'s {field} must be a list of words")
        book = _book_entry(entry)
        values = {key: lens.read(book) for key, lens in ENTRY_LENSES.items()}
        if not values["keys"]:
            keyless.append({"index": index, "entry": book})
            continue
        rest = {k: v for k, v in entry.items() if k not in HANDLED}
        lorebook.append({**values, "extensions": {EXTENSION_KEY: {"world_info": rest}} if rest else {}})
    return lorebook, keyless


def import_lorebook(runtime: Any, rid: str, data: bytes, filename: str) -> dict:
    """Add the entries of a world-info file to character ``rid``'s lorebook as a new version (a
    catalog character becomes a local copy, as any edit does). Returns ``{"id", "version",
    "changed", "forked_from", "added"}``."""
    shown = _shown(filename)
    lorebook, keyless = read_world_info(data, filename)
    if not lorebook and not keyless:
        raise UsageError(f"{shown}: has no entries to import")
    current = get_character(runtime, rid)
    existing = [_entry_data(e) for e in current.get("lorebook") or []]
    if len(existing) + len(lorebook) > MAX_LORE_ENTRIES:
        raise UsageError(f"{shown}: its {len(lorebook):,} entries would give {current.get('name') or rid} "
                         f"{len(existing) + len(lorebook):,}; a lorebook may have at most {MAX_LORE_ENTRIES:,}")
    result = update_character(runtime, rid, {"lorebook": [*existing, *lorebook]}, keyless_lore=keyless)
    return {**result, "added": len(lorebook) + len(keyless)}


def _entry_data(entry: Any) -> dict:
    return entry.model_dump(mode="json") if hasattr(entry, "model_dump") else dict(entry)
