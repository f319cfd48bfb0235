"""SillyTavern character cards in and out of manifests, for ``zishu catalog import-card`` and
``export-card`` (``zishu.commands.cards``) and the app's card import (``zishu.companion.characters``).

This module owns reading cards (JSON files, or PNG images carrying base64 JSON in a ``tEXt`` chunk
named ``chara`` (Character Card V2) or ``ccv3`` (V3, preferred when both are there); flat V1 JSON
is accepted too), turning them into a character manifest, turning a manifest back into a card, and
the card's JSON and PNG forms. The PNG chunks themselves are ``zishu.catalog.card_png``'s.

How card data fields become manifest fields::

    name                                      → name
    system_prompt, description, personality   → spec.persona (joined by blank lines; personality as
                                                "{{char}}'s personality: …"; "You are {{char}}." if all are empty)
    first_mes + alternate_greetings           → spec.greetings (first_mes first, when not empty)
    mes_example                               → spec.example_dialogue
    scenario, creator_notes,
    post_history_instructions                 → the spec fields of the same name
    character_book.entries                    → spec.lorebook (name or comment → name, insertion_order
                                                → priority unless the entry has a priority, secondary_keys
                                                only when the entry is selective)
    tags                                      → tags (made into catalog tags: lowercase, a-z 0-9 -)
    character_version                         → versions[0].version (semantic; 1.0.0 when it cannot be)
    creator                                   → kept as credit in spec.extensions.sillytavern (and
                                                exported back), never made a maintainer: the
                                                maintainers are --owner alone
    anything else (extensions, V3 fields, …)  → spec.extensions.sillytavern

Nothing is lost: whatever the manifest cannot hold exactly is kept verbatim in
``spec.extensions.sillytavern`` (and in ``extensions.sillytavern`` of each lorebook entry):
``fields`` holds card fields the manifest lacks or holds in another form, ``absent`` the fields the
card did not have, ``character_book`` the lorebook's own settings, ``keyless_entries`` lorebook
entries without keywords (a manifest entry needs one; the constant ones are still injected into
prompts, as SillyTavern does: ``keyless_constant_entries``), ``root``/``root_mirrors`` the card's
top-level extras. Fields the card lacked stay out of its export, except those V2 requires
(``V2_REQUIRED``): a V1 card (flat JSON) exports as a complete V2 card, ``extensions`` as ``{}``.
Export gives the card back field for field. A kept original is used only while the manifest
still says what the card said; once a creator edits a manifest field (the persona, a greeting, a
lorebook entry), the manifest wins for that field.

Limits (a CardError naming the limit, each checked before the step it keeps cheap): a PNG card
file at most 20 MiB and a JSON one 5 MiB (checked before the file is read); a card chunk at most
the base64 of 5 MiB (before it is copied or decoded); at most 2,000 lorebook entries (before any
entry is looked at); a text field at most 100,000 characters and a list at most 1,000 items.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import semver

from zishu.catalog import (
    MAX_MANIFEST_BYTES,
    CharacterResource,
    dump_manifest,
    load_yaml,
    parse_manifest,
)
from zishu.catalog.manifest import LoreEntry
from zishu.errors import CardError, UsageError
from zishu.files import SHARED_FILE_MODE, write_atomic

from .card_png import MAX_PNG_BYTES, PNG_SIGNATURE, base_png, card_text, placeholder_png, with_card_texts

# What a card may hold, checked before the expensive step each guards (reading the file, decoding
# the PNG chunk, json.loads, building the manifest): a card over one is refused with the limit named.
MAX_JSON_BYTES = 5 * 1024 * 1024  # the card's JSON (a JSON file, or decoded from a PNG chunk)
MAX_CHUNK_TEXT = -(-MAX_JSON_BYTES // 3) * 4 + MAX_JSON_BYTES // 32  # its base64 in a PNG chunk, line breaks allowed
MAX_LORE_ENTRIES = 2_000  # entries of the card's lorebook (character_book.entries)
MAX_FIELD_CHARS = 100_000  # characters in one text field (a description, a greeting, a lorebook entry)
MAX_LIST_ITEMS = 1_000  # items of one list (alternate_greetings, tags, an entry's keys)

SPECS = {"v2": ("chara_card_v2", "2.0"), "v3": ("chara_card_v3", "3.0")}
SPEC_NAMES = {name: short for short, (name, _) in SPECS.items()}

EXTENSION_KEY = "sillytavern"

TEXT_FIELDS = (
    "name", "description", "personality", "scenario", "first_mes", "mes_example", "creator_notes",
    "system_prompt", "post_history_instructions", "creator",
)  # fmt: skip
TEXT_LIST_FIELDS = ("alternate_greetings", "tags")

_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?$")


def _fail(file: str, problem: str) -> CardError:
    return CardError(f"{file}: {problem}")


# ---- reading cards ---------------------------------------------------------------------------


def read_card(path: Path) -> dict:
    """Read a card file (PNG or JSON, V1/V2/V3) and return it as ``{"spec", "spec_version", "data", ...}``.

    V1 cards come back wrapped as V2; V2 and V3 cards come back as they were written.
    """
    return read_card_file(Path(path))[0]


def read_card_file(path: Path) -> tuple[dict, bool]:
    """The card in ``path`` and whether the file was a PNG image."""
    file = str(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(16)
    except OSError as e:
        raise _fail(file, f"cannot read: {e.strerror}") from None
    _check_size(head, size, file)  # before reading a huge file into memory
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise _fail(file, f"cannot read: {e.strerror}") from None
    return read_card_bytes(raw, file)


def read_card_bytes(raw: bytes, file: str = "<card>") -> tuple[dict, bool]:
    """The card in ``raw`` (a PNG or JSON card file's bytes) and whether it was a PNG image;
    ``file`` names it in error messages (CardError)."""
    is_png = _check_size(raw[:16], len(raw), file)
    if is_png:
        keyword, text = card_text(raw, file, MAX_CHUNK_TEXT)
        where = f"the '{keyword}' chunk"
        json_text = _utf8(_base64(text, file, where), file, where)
    else:
        where = "the file"
        json_text = _utf8(raw, file, where)
    card = normalize_card(_parse_json(json_text, file, where), file)  # the limits, before a walk over it all
    _check_unicode(card, file, where)
    return card, is_png


def _check_size(head: bytes, size: int, file: str) -> bool:
    """Refuse a file too big for a card, or neither PNG nor JSON; True when it is a PNG."""
    is_png = head.startswith(PNG_SIGNATURE)
    limit, what = (MAX_PNG_BYTES, "a PNG card") if is_png else (MAX_JSON_BYTES, "a JSON card")
    if size > limit:
        raise _fail(file, f"the file is {size:,} bytes; {what} may be at most {limit // 2**20} MiB")
    if not is_png and not _looks_like_json(head):
        raise _fail(file, "not a character card: expected a PNG image with a card in it, or a JSON file")
    return is_png


def _looks_like_json(head: bytes) -> bool:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16: JSON, but not UTF-8 (refused later)
        return True
    return head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")[:1] in (b"{", b"[", b"")


def _base64(text: str, file: str, where: str) -> bytes:
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise _fail(file, f"{where} is not valid base64") from None
    if len(data) > MAX_JSON_BYTES:
        raise _fail(file, f"{where} holds {len(data):,} bytes of JSON; a card may be at most "
                          f"{MAX_JSON_BYTES // 2**20} MiB")
    return data


def _utf8(data: bytes, file: str, where: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise _fail(file, f"{where} is not UTF-8 text (byte {e.start})") from None


def _parse_json(text: str, file: str, where: str) -> Any:
    try:
        card = json.loads(text)
    except json.JSONDecodeError as e:
        raise _fail(file, f"{where} holds invalid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None
    except RecursionError:
        raise _fail(file, f"{where} holds JSON nested too deeply") from None
    return card


def _check_unicode(card: dict, file: str, where: str) -> None:
    try:
        json.dumps(card, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise _fail(file, f"{where} holds text that is not valid Unicode (a lone surrogate escape)") from None


def normalize_card(card: Any, file: str = "<card>") -> dict:
    """Check a parsed card and return it with ``spec``, ``spec_version`` and ``data`` (V1 is wrapped as V2)."""
    if not isinstance(card, dict):
        raise _fail(file, "a character card must be a JSON object")
    spec = card.get("spec")
    if spec is None and "data" not in card:
        if "name" not in card:
            raise _fail(file, "not a character card: no 'spec' field and no character 'name'")
        card = {"spec": "chara_card_v2", "spec_version": "2.0", "data": dict(card)}
    elif spec not in SPEC_NAMES:
        found = "has no 'spec' field" if spec is None else f"has an unknown spec {spec!r}"
        raise _fail(file, f"the card {found}; expected 'chara_card_v2' or 'chara_card_v3'")
    data = card.get("data")
    if not isinstance(data, dict):
        raise _fail(file, "the card's 'data' must be an object")
    _check_data(data, file)
    return card


def _check_data(data: dict, file: str) -> None:
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _fail(file, "the card has no character name (data.name is missing or empty)")
    for field in TEXT_FIELDS:
        _expect_text(data.get(field), file, f"data.{field}")
    for field in TEXT_LIST_FIELDS:
        _expect_text_list(data.get(field), file, f"data.{field}")
    _check_lengths(data, TEXT_FIELDS + TEXT_LIST_FIELDS, file, "data")
    version = data.get("character_version")
    if not (version is None or isinstance(version, (str, int, float))) or isinstance(version, bool):
        raise _fail(file, "data.character_version must be text")
    if data.get("extensions") is not None and not isinstance(data["extensions"], dict):
        raise _fail(file, "data.extensions must be an object")
    book = data.get("character_book")
    if book is None:
        return
    if not isinstance(book, dict):
        raise _fail(file, "data.character_book must be an object")
    entries = book.get("entries", [])
    if not isinstance(entries, list):
        raise _fail(file, "data.character_book.entries must be a list")
    if len(entries) > MAX_LORE_ENTRIES:  # before a single entry is looked at
        raise _fail(file, f"the lorebook has {len(entries):,} entries; a card may have at most {MAX_LORE_ENTRIES:,}")
    for i, entry in enumerate(entries):
        where = f"data.character_book.entries[{i}]"
        if not isinstance(entry, dict):
            raise _fail(file, f"{where} must be an object")
        for field in ("content", "name", "comment"):
            _expect_text(entry.get(field), file, f"{where}.{field}")
        for field in ("keys", "secondary_keys"):
            if not isinstance(entry.get(field), str):
                _expect_text_list(entry.get(field), file, f"{where}.{field}")
        _check_lengths(entry, ("content", "name", "comment", "keys", "secondary_keys"), file, where)


def _check_lengths(fields: dict, names: tuple[str, ...], file: str, where: str) -> None:
    """Refuse a text over ``MAX_FIELD_CHARS`` or a list over ``MAX_LIST_ITEMS`` (types already checked)."""
    for name in names:
        value = fields.get(name)
        if isinstance(value, list) and len(value) > MAX_LIST_ITEMS:
            raise _fail(file, f"{where}.{name} has {len(value):,} items; a card's list may have at most "
                              f"{MAX_LIST_ITEMS:,}")
        for i, text in enumerate(value if isinstance(value, list) else [value]):
            if isinstance(text, str) and len(text) > MAX_FIELD_CHARS:
                at = f"{where}.{name}[{i}]" if isinstance(value, list) else f"{where}.{name}"
                raise _fail(file, f"{at} is {len(text):,} characters long; a card's text field may be at most "
                                  f"{MAX_FIELD_CHARS:,}")


def _expect_text(value: Any, file: str, where: str) -> None:
    if value is not None and not isinstance(value, str):
        raise _fail(file, f"{where} must be text, not {type(value).__name__}")


def _expect_text_list(value: Any, file: str, where: str) -> None:
    if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise _fail(file, f"{where} must be a list of text")


# ---- lenses: card fields ↔ one manifest value ------------------------------------------------


@dataclass(frozen=True)
class _Lens:
    """Some card fields ↔ one manifest value. ``read`` takes a card dict (fields may be missing),
    ``write`` gives card fields back; both are pure, so an import can be checked against an export."""

    fields: tuple[str, ...]
    read: Callable[[dict], Any]
    write: Callable[[Any], dict]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _text_lens(field: str) -> _Lens:
    return _Lens((field,), lambda d: _text(d.get(field)), lambda v: {field: v})


def _fit_name(value: Any) -> str:
    return _text(value).strip()[:100].strip()


def _persona_from(d: dict) -> str:
    personality = _text(d.get("personality"))
    parts = [_text(d.get("system_prompt")), _text(d.get("description"))]
    if personality.strip():
        parts.append(f"{{{{char}}}}'s personality: {personality}")
    return "\n\n".join(p for p in parts if p.strip()) or "You are {{char}}."


def _greetings_from(d: dict) -> list[str]:
    first = _text(d.get("first_mes"))
    return ([first] if first.strip() else []) + list(d.get("alternate_greetings") or [])


def slugify(text: str, max_length: int = 64) -> str:
    """Lowercase ``a-z0-9-`` made from ``text`` (accents dropped), at most ``max_length`` long; may be empty."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:max_length].strip("-")


def _tags_from(d: dict) -> list[str]:
    tags: list[str] = []
    for tag in d.get("tags") or []:
        slug = slugify(tag, 32)
        if slug and slug not in tags:
            tags.append(slug)
    return tags[:20]


def _semver_from(d: dict) -> str:
    value = d.get("character_version")
    text = str(value).strip().removeprefix("v").removeprefix("V") if value is not None else ""
    if re.fullmatch(r"\d+(\.\d+){0,2}", text):
        text = ".".join([*text.split("."), "0", "0"][:3])
    return text if semver.Version.is_valid(text) else "1.0.0"


CARD_LENSES: dict[str, _Lens] = {
    "name": _Lens(("name",), lambda d: _fit_name(d.get("name")), lambda v: {"name": v}),
    "persona": _Lens(
        ("system_prompt", "description", "personality"),
        _persona_from,
        lambda v: {"system_prompt": "", "description": v, "personality": ""},
    ),
    "greetings": _Lens(
        ("first_mes", "alternate_greetings"),
        _greetings_from,
        lambda v: {"first_mes": v[0] if v else "", "alternate_greetings": list(v[1:])},
    ),
    "example_dialogue": _text_lens("mes_example"),
    "scenario": _text_lens("scenario"),
    "creator_notes": _text_lens("creator_notes"),
    "post_history_instructions": _text_lens("post_history_instructions"),
    "tags": _Lens(("tags",), _tags_from, lambda v: {"tags": list(v)}),
    "version": _Lens(("character_version",), _semver_from, lambda v: {"character_version": v}),
}


def _key_list(value: Any) -> list[str]:
    """Keywords without the empty ones (some editors write "a, b" instead of a list)."""
    if isinstance(value, str):
        return [k.strip() for k in value.split(",") if k.strip()]
    return [k for k in value or [] if k.strip()]


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        return None
    return int(value)


def _flag(field: str, default: bool) -> _Lens:
    return _Lens((field,), lambda e: e[field] if isinstance(e.get(field), bool) else default, lambda v: {field: v})


ENTRY_LENSES: dict[str, _Lens] = {
    "keys": _Lens(("keys",), lambda e: _key_list(e.get("keys")), lambda v: {"keys": list(v)}),
    "content": _text_lens("content"),
    "secondary_keys": _Lens(
        ("secondary_keys", "selective"),
        lambda e: _key_list(e.get("secondary_keys")) if e.get("selective") is True else [],
        lambda v: {"secondary_keys": list(v), "selective": bool(v)},
    ),
    "name": _Lens(
        ("name", "comment"),
        lambda e: _text(e.get("name")) or _text(e.get("comment")) or None,
        lambda v: {"comment": v or ""},
    ),
    "enabled": _flag("enabled", True),
    "constant": _flag("constant", False),
    "case_sensitive": _flag("case_sensitive", False),
    "priority": _Lens(
        ("priority", "insertion_order"),
        lambda e: next((n for n in (_int(e.get("priority")), _int(e.get("insertion_order"))) if n is not None), 0),
        lambda v: {"insertion_order": v},
    ),
}


# Fields an export writes besides the lens fields, with the value it writes when nothing was kept.
NO_DEFAULT = object()  # a value the export works out (e.g. creator from the maintainers)
V2_DEFAULTS = {"creator": NO_DEFAULT, "extensions": {}}
V3_DEFAULTS = {**V2_DEFAULTS, "group_only_greetings": []}
V2_REQUIRED = frozenset({  # the data fields the V2 spec requires (V3 requires them too)
    "name", "description", "personality", "scenario", "first_mes", "mes_example", "creator_notes",
    "system_prompt", "post_history_instructions", "alternate_greetings", "tags", "creator",
    "character_version", "extensions",
})  # fmt: skip
ENTRY_DEFAULTS = {"extensions": {}, "use_regex": False}


def _lens_fields(lenses: dict[str, _Lens]) -> set[str]:
    return {f for lens in lenses.values() for f in lens.fields}


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON (so 1, 1.0 and true differ)."""
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def _split(card: dict, lenses: dict[str, _Lens], defaults: dict) -> tuple[dict, dict, list[str]]:
    """Card fields → (manifest values, card fields to keep verbatim, fields the card lacks that an
    export would otherwise write: those in ``defaults`` and those the lenses write)."""
    values: dict[str, Any] = {}
    kept = {
        f: v
        for f, v in card.items()
        if f not in _lens_fields(lenses) and (defaults.get(f, NO_DEFAULT) is NO_DEFAULT or not _same(defaults[f], v))
    }
    absent = [f for f in defaults if f not in card]
    for key, lens in lenses.items():
        values[key] = lens.read(card)
        written = lens.write(values[key])
        for f in lens.fields:
            if f in card and (f not in written or not _same(written[f], card[f])):
                kept[f] = card[f]
        absent += [f for f in written if f not in card and f not in absent]
    return values, kept, absent


def _join(values: dict, lenses: dict[str, _Lens], kept: dict, absent: list[str]) -> dict:
    """Manifest values → card fields, using the kept originals of each lens while they still read the same."""
    card: dict[str, Any] = {}
    for key, lens in lenses.items():
        written = lens.write(values[key])
        original = {**written, **{f: kept[f] for f in lens.fields if f in kept}}
        for f in lens.fields:
            if f in absent:
                original.pop(f, None)
        card.update(original if _same(lens.read(original), values[key]) else written)
    return card


def _non_empty(**items: Any) -> dict:
    """The items whose value is not an empty dict or list (keeps manifests short)."""
    return {k: v for k, v in items.items() if not (isinstance(v, (dict, list)) and not v)}


# ---- card → manifest -------------------------------------------------------------------------


def card_to_manifest(
    card: dict,
    *,
    owner: str,
    license: str,
    slug: str | None = None,
    file: str = "<card>",
    today: dt.date | None = None,
) -> CharacterResource:
    """A valid character manifest for ``card`` (as ``read_card`` returns it), owned by GitHub login ``owner``.

    ``slug`` is the catalog name (default: made from the character's name), ``file`` names the card
    in error messages, ``today`` is the release date of the one version.
    """
    card = copy.deepcopy(normalize_card(card, file))  # the manifest must not share objects with the caller
    data = card["data"]
    if not _LOGIN.match(owner or ""):
        raise UsageError(f"--owner {owner!r} is not a GitHub login")
    slug = slug if slug is not None else slugify(_fit_name(data["name"]))
    if not _SLUG.match(slug):
        raise UsageError(
            f"{file}: cannot make a catalog name from {data['name']!r}; pass --name with lowercase letters, "
            "digits and '-' (e.g. --name my-character)"
            if not slug
            else f"--name {slug!r} must be lowercase letters, digits and '-' (at most 64, no '-' at either end)"
        )
    defaults = V3_DEFAULTS if card["spec"] == "chara_card_v3" else V2_DEFAULTS
    values, kept, absent = _split({k: v for k, v in data.items() if k != "character_book"}, CARD_LENSES, defaults)
    absent = [f for f in absent if f not in V2_REQUIRED]  # a V1 card lacks them; every V2 export has them
    book = data.get("character_book")
    if "character_book" in data and not (isinstance(book, dict) and "entries" in book):
        kept["character_book"] = book  # null, or a book without entries: nothing for the lorebook
        book = None
    lorebook, book, keyless = _lore_from(book)
    block = {"spec": card["spec"], "spec_version": card.get("spec_version")}
    block.update(_non_empty(fields=kept, absent=absent, keyless_entries=keyless, **_root_block(card, data)))
    if book is not None:
        block["character_book"] = book  # even when empty: the card had a book
    manifest = {
        "id": f"{owner.lower()}/{slug}",
        "kind": "character",
        "name": values["name"],
        "summary": summary_for(data),
        "license": license,
        "maintainers": [owner],  # the card's creator is credit (kept in fields), not a maintainer
        "tags": values["tags"],
        "versions": [
            {"version": values["version"], "released": today or dt.datetime.now().astimezone().date(), "files": []}
        ],
        "spec": {
            "persona": values["persona"],
            "scenario": values["scenario"],
            "greetings": values["greetings"],
            "example_dialogue": values["example_dialogue"],
            "creator_notes": values["creator_notes"],
            "post_history_instructions": values["post_history_instructions"],
            "lorebook": lorebook,
            "extensions": {EXTENSION_KEY: block},
        },
    }
    return parse_manifest(manifest, file)  # type: ignore[return-value]


def _root_block(card: dict, data: dict) -> dict:
    """Top-level fields beside spec/spec_version/data; copies of data fields (V1 mirrors) by name only."""
    root, mirrors = {}, []
    for key, value in card.items():
        if key in ("spec", "spec_version", "data"):
            continue
        if key in data and _same(data[key], value):
            mirrors.append(key)
        else:
            root[key] = value
    return {"root": root, "root_mirrors": mirrors}


def _lore_from(book: Any) -> tuple[list[dict], dict | None, list[dict]]:
    """(lorebook entries, the book's own fields, entries the manifest cannot hold) of a character_book."""
    if not isinstance(book, dict):
        return [], None, []
    lorebook, keyless = [], []
    for index, entry in enumerate(book.get("entries") or []):
        values, kept, absent = _split(entry, ENTRY_LENSES, ENTRY_DEFAULTS)
        if not values["keys"]:
            keyless.append({"index": index, "entry": entry})
            continue
        block = _non_empty(fields=kept, absent=absent)
        lorebook.append({**values, "extensions": {EXTENSION_KEY: block} if block else {}})
    meta = {k: v for k, v in book.items() if k != "entries"}
    return lorebook, meta, keyless


def keyless_constant_entries(spec: Any) -> list[LoreEntry]:
    """The enabled, constant lorebook entries without keywords that an imported card kept aside
    (``keyless_entries``): SillyTavern injects a constant entry whatever its keys, so these are
    always in the prompt too. Built without validation, since a manifest entry needs a keyword."""
    st = _mapping(spec.extensions.get(EXTENSION_KEY))
    found = []
    for item in st.get("keyless_entries") or []:
        entry = _mapping(_mapping(item).get("entry"))
        values = {key: lens.read(entry) for key, lens in ENTRY_LENSES.items()}
        if values["constant"] and values["enabled"] and values["content"].strip():
            found.append(LoreEntry.model_construct(**values, extensions={}))
    return found


def summary_for(data: dict) -> str:
    """The first sentence of the creator's notes (else the description), as plain text, at most 300 characters."""
    name = _fit_name(data.get("name"))
    notes = _mapping(data.get("creator_notes_multilingual"))
    for source in (data.get("creator_notes"), notes.get("en"), data.get("description")):
        text = _plain(_text(source)).replace("{{char}}", name).replace("{{user}}", "you")
        if text:
            match = re.match(r"(.+?(?:[.!?](?=\s|$)|[。！？]))", text)
            sentence = match.group(1) if match else text
            return sentence if len(sentence) <= 300 else sentence[:299].rstrip() + "…"
    return f"{name}, a character imported from a SillyTavern card."[:300]


def _plain(text: str) -> str:
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", " ", text)  # markdown images
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # markdown links → their text
    text = re.sub(r"<[^>]*>", " ", text)  # HTML tags
    text = re.sub(r"^[#>*\-\s]+", "", text)  # a heading or list marker at the start
    return " ".join(text.split())


# ---- manifest → card -------------------------------------------------------------------------


def manifest_to_card(resource: Any, spec: str | None = None) -> dict:
    """The card for a character manifest, as a dict ready for JSON.

    ``spec`` is "v2" or "v3"; by default the spec the card was imported from, else v2.
    """
    if not isinstance(resource, CharacterResource):
        kind = getattr(resource, "kind", type(resource).__name__)
        raise CardError(f"{getattr(resource, 'id', 'manifest')}: a {kind} manifest cannot become a character card")
    st = _mapping(resource.spec.extensions.get(EXTENSION_KEY))
    spec = spec or SPEC_NAMES.get(str(st.get("spec")), "v2")
    if spec not in SPECS:
        raise UsageError(f"unknown card spec {spec!r}; use 'v2' or 'v3'")
    spec_name, default_version = SPECS[spec]
    kept, absent = _mapping(st.get("fields")), list(st.get("absent") or [])
    data = {f: v for f, v in kept.items() if f not in _lens_fields(CARD_LENSES)}
    data.update(_join(_manifest_values(resource), CARD_LENSES, kept, absent))
    defaults = {
        **(V3_DEFAULTS if spec == "v3" else V2_DEFAULTS),
        "creator": ", ".join(resource.maintainers),
        "extensions": _foreign_extensions(resource.spec.extensions),
    }
    _fill(data, defaults, absent)
    book = _book_from(resource, st)
    if book is not None:
        data["character_book"] = book
    version = st.get("spec_version") if st.get("spec") == spec_name and st.get("spec_version") else default_version
    card = {"spec": spec_name, "spec_version": version, "data": data}
    for key in st.get("root_mirrors") or []:
        if key in data:
            card[key] = data[key]
    card.update(st.get("root") or {})
    return copy.deepcopy(card)  # kept originals are the manifest's own objects


def _mapping(value: Any) -> dict:
    return dict(value) if isinstance(value, dict) else {}


def _foreign_extensions(extensions: dict) -> dict:
    """A manifest's extensions other than the kept card, for the card's own ``extensions``."""
    return {k: v for k, v in extensions.items() if k != EXTENSION_KEY}


def _fill(fields: dict, defaults: dict, absent: list[str]) -> dict:
    """Add the defaults for fields that are missing, except those the original card did not have."""
    for field, value in defaults.items():
        if field not in fields and field not in absent:
            fields[field] = value
    return fields


def _manifest_values(resource: CharacterResource) -> dict:
    spec = resource.spec
    return {
        "name": resource.name,
        "persona": spec.persona,
        "greetings": list(spec.greetings),
        "example_dialogue": spec.example_dialogue,
        "scenario": spec.scenario,
        "creator_notes": spec.creator_notes,
        "post_history_instructions": spec.post_history_instructions,
        "tags": list(resource.tags),
        "version": resource.latest.version,
    }


def _book_from(resource: CharacterResource, st: dict) -> dict | None:
    meta, keyless = st.get("character_book"), list(st.get("keyless_entries") or [])
    lorebook = resource.spec.lorebook
    if meta is None and not lorebook and not keyless:
        return None
    entries = [_entry_from(lore) for lore in lorebook]
    for item in sorted(keyless, key=lambda k: k.get("index", 0)):
        entries.insert(min(int(item.get("index", len(entries))), len(entries)), item.get("entry"))
    return {**(meta if isinstance(meta, dict) else {"extensions": {}}), "entries": entries}


def _entry_from(lore: LoreEntry) -> dict:
    st = _mapping(lore.extensions.get(EXTENSION_KEY))
    kept, absent = _mapping(st.get("fields")), list(st.get("absent") or [])
    values = lore.model_dump(exclude={"extensions"})
    entry = {f: v for f, v in kept.items() if f not in _lens_fields(ENTRY_LENSES)}
    entry.update(_join(values, ENTRY_LENSES, kept, absent))
    return _fill(entry, {**ENTRY_DEFAULTS, "extensions": _foreign_extensions(lore.extensions)}, absent)


# ---- the card as JSON and as a PNG image ---------------------------------------------------


def _card_text(card: dict) -> bytes:
    return base64.b64encode(json.dumps(card, ensure_ascii=False).encode("utf-8"))


def card_png_bytes(card: dict, image: Path | None = None) -> bytes:
    """PNG bytes: ``image`` (or a plain placeholder) with the card in ``chara`` (V2) and, for V3, ``ccv3``."""
    card = normalize_card(card, "card")
    base = base_png(image) if image is not None else placeholder_png(card["data"].get("name", ""))
    if card["spec"] == "chara_card_v3":
        v2 = {**card, "spec": SPECS["v2"][0], "spec_version": SPECS["v2"][1]}
        texts = [("chara", _card_text(v2)), ("ccv3", _card_text(card))]
    else:
        texts = [("chara", _card_text(card))]
    return with_card_texts(base, texts, str(image) if image is not None else "placeholder")


def write_card_png(card: dict, out: Path, image: Path | None = None) -> None:
    """Write ``card`` as a PNG card at ``out`` (atomically), into ``image`` or a placeholder picture."""
    write_atomic(Path(out), card_png_bytes(card, image), SHARED_FILE_MODE)


def card_json_text(card: dict) -> str:
    return json.dumps(card, ensure_ascii=False, indent=2) + "\n"


# ---- importing a card into the catalog ---------------------------------------------------------


SCHEMA_REF = "../../resource.schema.json"  # from <root>/resources/<owner>/<name>.yaml


def manifest_text(resource: CharacterResource, file: str, schema_ref: str | None = None) -> str:
    """The manifest's YAML as the catalog takes it: within the catalog's size limit and reading
    back as the same manifest (a CardError naming the card ``file`` otherwise)."""
    text = dump_manifest(resource, schema_ref)
    size = len(text.encode("utf-8"))
    if size > MAX_MANIFEST_BYTES:
        raise _fail(file, f"the manifest would be {size:,} bytes; the catalog takes at most 256 KiB (a huge lorebook?)")
    parse_manifest(load_yaml(text.encode("utf-8"), file), file)  # what we write must read back
    return text


def import_notes(card: dict, resource: CharacterResource, file: str, is_png: bool) -> list[str]:
    """What the creator should know about an import: what the manifest could not take as it was."""
    data, st = card["data"], resource.spec.extensions[EXTENSION_KEY]
    notes = []
    if is_png:
        notes.append(
            f"the manifest cannot embed the card's picture (files need real URLs). Upload {file} as a "
            "release asset, list it under versions[0].files, and name it in spec.avatar.image."
        )
    version = data.get("character_version")
    if version not in (None, "") and str(version) != resource.versions[0].version:
        notes.append(
            f"character_version {version!r} is not a semantic version; the manifest says "
            f"{resource.versions[0].version} (the original is kept for export)"
        )
    if len(resource.tags) < len(data.get("tags") or []):
        notes.append("some tags could not become catalog tags (a-z, 0-9, '-'); the originals are kept for export")
    keyless = len(st.get("keyless_entries", []))
    if keyless:
        notes.append(
            f"{keyless} lorebook {'entry has' if keyless == 1 else 'entries have'} no keywords; the manifest's "
            "lorebook needs at least one per entry, so they are kept in spec.extensions.sillytavern.keyless_entries "
            "(exported back; the constant ones are always in the prompt, as in SillyTavern)"
        )
    creator = _text(data.get("creator")).strip()
    if creator:
        notes.append(f"creator {creator!r} is kept as credit (exported back), not made a maintainer")
    return notes


__all__ = [
    "MAX_CHUNK_TEXT",
    "MAX_FIELD_CHARS",
    "MAX_JSON_BYTES",
    "MAX_LIST_ITEMS",
    "MAX_LORE_ENTRIES",
    "MAX_PNG_BYTES",
    "card_json_text",
    "card_png_bytes",
    "card_to_manifest",
    "import_notes",
    "keyless_constant_entries",
    "manifest_text",
    "manifest_to_card",
    "normalize_card",
    "read_card",
    "read_card_bytes",
    "read_card_file",
    "slugify",
    "summary_for",
    "write_card_png",
]
