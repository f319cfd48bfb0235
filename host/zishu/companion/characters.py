"""The user's own characters: made in the app, edited, imported from SillyTavern cards, deleted
and restored. They are stored exactly like installed catalog characters (a registry record and a
version folder holding ``manifest.json``), so ``Character.installed`` and everything else reads
them the same way::

    ZISHU_HOME/resources/local/<name>/<version>/   manifest.json (+ avatar.png, files kept from a fork)
    ZISHU_HOME/trash/characters/local/<name>/      a deleted character's version folders + deleted.json

Ids are ``local/<slug>``, the slug made from the character's name and made unique (a name with
no Latin letters becomes ``character``, ``character-2``, …). Every edit writes a NEW version (the
patch number bumped) beside the old ones, so ``undo_character_edit`` removes the newest and the
previous one is current again; undoing a character's only version moves it to the trash, like
``delete_character``. Editing a catalog character never touches its installed files: it makes a
local copy whose ``spec.extensions.zishu.derived_from`` names the original (``owner/name@version``),
with the original's files linked into it. A version is assembled in a hidden staging folder and
renamed into place with ``manifest.json`` already in it: a crash leaves no half-written character.
Every change goes through the version store (``zishu.resources.versions``) holding its one lock
from the first read to the last write, the lock the installer and ``zishu gc`` take too, so gc
never takes a save in progress for a leftover.

Every input is checked by the manifest model itself; what it refuses comes back as a UsageError
naming the field (``persona: must not be empty``, ``lorebook entry 2.keys: must not be empty``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import semver
from filelock import BaseFileLock
from pydantic import ValidationError

from zishu.catalog import RESOURCE
from zishu.catalog.cards import EXTENSION_KEY as CARD_EXTENSION
from zishu.catalog.cards import MAX_LORE_ENTRIES, card_to_manifest, read_card_bytes, slugify, summary_for
from zishu.catalog.manifest import CharacterResource
from zishu.errors import CardError, ManifestError, NotFound, UsageError, ZishuError
from zishu.files import write_atomic
from zishu.ids import parse_id
from zishu.resources.install import link_or_copy, manifest_of, sha256_of
from zishu.resources.versions import MANIFEST, discard, file_inside

from . import character_index
from .stream_text import shown_greeting

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

LOCAL = "local"  # the owner of the user's own characters
LOCAL_LICENSE = "LicenseRef-local"  # made or imported here, never published: no license stated
EXTENSION = "zishu"  # spec.extensions["zishu"]: derived_from, imported_from
AVATAR_FILE = "avatar.png"  # a PNG card's picture, kept as the character's avatar
DELETED = "deleted.json"
FIRST_VERSION = "1.0.0"
MAX_PICTURE_BYTES = 10 * 2**20  # an avatar picture uploaded in the editor
PICTURE_MAGIC = ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpg"), (b"GIF87a", "gif"), (b"GIF89a", "gif"),
                 (b"RIFF", "webp"))
MAX_LISTED_GREETING = 500  # characters of the first greeting the list shows (and the index keeps)

TOP_FIELDS = ("name", "summary", "tags")
SPEC_FIELDS = (
    "persona", "scenario", "greetings", "example_dialogue", "creator_notes", "post_history_instructions",
    "lorebook", "emotions", "voice", "llm", "models", "image_style", "avatar", "audience",
)  # fmt: skip
FIELDS = TOP_FIELDS + SPEC_FIELDS

_PLACEHOLDER = re.compile(r"\{\{\s*(char|user)\s*\}\}", re.I)


# ---- reading ---------------------------------------------------------------------------------


def list_characters(runtime) -> list[dict]:
    """Every installed character, the catalog's and the user's own, by name: id, name, summary,
    version, local or not, first greeting, avatar, where it came from.

    Reads the registry and the index of summaries (``zishu.companion.character_index``), not the
    manifests: only a character whose entry is missing or stale has its manifest read (and its
    entry written back)."""
    store = runtime.registry
    registry = store.load()
    index = character_index.read_index(store)
    fresh: dict[str, dict] = {}
    found, rebuilt = [], False
    for rid, records in registry.items():
        if not isinstance(records, dict) or not any(
                isinstance(rec, dict) and rec.get("kind") == "character" for rec in records.values()):
            continue
        try:
            versions = list(records) if len(records) == 1 else sorted(records, key=semver.Version.parse, reverse=True)
            key = character_index.manifest_key(store, rid, versions[0])
            if key is None:
                continue  # registered, but its folder is gone: the Library shows it
            entry = index.get(rid)
            if entry is None or entry["key"] != key:
                resource = manifest_of(store.version_dir(_checked_id(rid), versions[0]))
                if not isinstance(resource, CharacterResource):
                    continue
                entry, rebuilt = {"key": key, "summary": _summary_of(resource, versions[0])}, True
        except (ZishuError, OSError, ValueError, TypeError):
            continue  # a broken install: the Library shows it, the character list cannot use it
        fresh[rid] = entry
        found.append({**entry["summary"], "versions": versions})
    if rebuilt or len(fresh) != len(index):  # an entry made, or one for a character that is gone
        character_index.write_index(store, fresh, wait=False)
    return sorted(found, key=lambda c: (c["name"].casefold(), c["id"]))


def get_character(runtime, rid: str) -> dict:
    """One installed character with every field the editor shows (its newest version)."""
    resource, folder = _newest(runtime, rid)
    spec = resource.spec.model_dump(mode="json", include=set(SPEC_FIELDS) - {"avatar"})  # avatar: in the summary
    return {**_summary(runtime, resource, folder.name), "tags": list(resource.tags), **spec}


def avatar_file(runtime, rid: str) -> Path | None:
    """The avatar image of the character's newest version, when it has one on disk."""
    resource, folder = _newest(runtime, rid)
    avatar = resource.spec.avatar
    if avatar is None or avatar.image is None:
        return None
    return file_inside(folder, avatar.image)  # never through a symbolic link, never outside the folder


def _newest(runtime, rid: str) -> tuple[CharacterResource, Path]:
    rid = _checked_id(rid)
    versions = runtime.registry.versions(rid)
    if not versions:
        raise NotFound(f"{rid} is not installed")
    folder = runtime.registry.path(rid, versions[0])
    resource = manifest_of(folder)
    if not isinstance(resource, CharacterResource):
        raise UsageError(f"{rid} is a {resource.kind}, not a character")
    return resource, folder


def _summary(runtime, resource: CharacterResource, version: str) -> dict:
    return {**_summary_of(resource, version), "versions": runtime.registry.versions(resource.id)}


def _summary_of(resource: CharacterResource, version: str) -> dict:
    """What the character list shows of a version (the index keeps it): everything but ``versions``."""
    spec, own = resource.spec, resource.spec.extensions.get(EXTENSION) or {}
    greeting, emotion = shown_greeting(spec.greetings[0] if spec.greetings else "", spec.emotions)
    greeting = _PLACEHOLDER.sub(lambda m: resource.name if m.group(1).lower() == "char" else "you", greeting)
    if len(greeting) > MAX_LISTED_GREETING:
        greeting = greeting[: MAX_LISTED_GREETING - 1].rstrip() + "…"
    avatar = spec.avatar
    return {
        "id": resource.id,
        "name": resource.name,
        "summary": resource.summary,
        "version": version,
        "local": resource.owner == LOCAL,
        "greeting": greeting,
        "greeting_emotion": {"name": emotion.name, "tag": emotion.tag} if emotion else None,
        "avatar": {"image": avatar.image if avatar else None, "live2d": avatar.live2d if avatar else None},
        "derived_from": own.get("derived_from") if isinstance(own, dict) else None,
        "imported_from": own.get("imported_from") if isinstance(own, dict) else None,
    }


# ---- creating and editing --------------------------------------------------------------------


def create_character(runtime, fields: dict) -> str:
    """A new local character from ``fields`` (``name`` and ``persona`` at least); returns its id."""
    _check_fields(fields)
    if "name" not in fields:
        raise UsageError("name: is required")
    if "persona" not in fields:
        raise UsageError("persona: is required")
    with _lock(runtime):
        rid = f"{LOCAL}/{_unique_slug(runtime, _name_slug(fields['name']))}"
        base = {
            "id": rid, "kind": "character", "name": "", "summary": "-", "license": LOCAL_LICENSE,
            "maintainers": [LOCAL], "versions": [_version_entry(FIRST_VERSION, notes="Made in Zishu.")],
            "spec": {"persona": "-"},
        }  # fmt: skip
        resource = _validated(_apply(base, fields, auto_summary=True))
        _write_version(runtime, resource, FIRST_VERSION)
    return rid


def update_character(runtime, rid: str, fields: dict, *, picture: tuple[bytes, str] | None = None,
                     keyless_lore: list[dict] | None = None, files: dict[str, bytes] | None = None) -> dict:
    """Save ``fields`` (the ones given; the rest stay) as a new version of ``rid``.

    ``picture``: an image's bytes and file name, saved with the version and made the avatar (in
    place of a Live2D model). A catalog character is never changed: the edit becomes a local copy,
    ``derived_from`` it. Returns ``{"id", "version", "changed", "forked_from"}``; nothing is
    written when nothing changed. ``keyless_lore``: lorebook entries without keywords (card-book
    shaped ``{"index", "entry"}``) to keep beside the lorebook, where a constant one is injected.
    ``files``: more files (name → bytes) saved with the version, such as an avatar sheet's pictures.
    An avatar given with the same picture as before and no ``sheet`` keeps the sheet it had.
    """
    _check_fields(fields)
    new_files = dict(files or {})
    if picture is not None:
        name = picture_name(*picture)
        fields, new_files = {**fields, "avatar": {"image": name}}, {**new_files, name: picture[0]}
    with _lock(runtime):
        old, folder = _newest(runtime, rid)
        fields = _sheet_kept(old, fields)
        previous = old.model_dump(mode="json")
        current = folder.name  # the installed version (a catalog manifest lists others too)
        auto = old.summary == _auto_summary(old.name, old.spec.persona)
        if old.owner == LOCAL:
            version = str(semver.Version.parse(current).bump_patch())
            edited = _carried(old, current, version, "Edited in Zishu.", adds_files=bool(new_files))
            base = {**previous, "versions": [*previous["versions"], edited]}
            resource = _validated(_with_keyless(_apply(base, fields, auto_summary=auto), keyless_lore))
            if _same_content(old, resource):
                return {"id": old.id, "version": current, "changed": False, "forked_from": None}
            _write_version(runtime, resource, version, copy_from=folder, record=_record(runtime, old.id, current),
                           new_files=new_files)
            return {"id": old.id, "version": version, "changed": True, "forked_from": None}
        # a catalog character: a local copy with the edit, the original left as it is
        version = str(semver.Version.parse(current).bump_patch())
        slug = _unique_slug(runtime, old.id.split("/", 1)[1])
        spec = previous["spec"]
        spec["extensions"] = {**spec.get("extensions", {}), EXTENSION: {
            **(spec.get("extensions", {}).get(EXTENSION) or {}), "derived_from": f"{old.id}@{current}"}}
        base = {**previous, "id": f"{LOCAL}/{slug}",
                "versions": [_carried(old, current, version, f"Edited from {old.id}.", adds_files=bool(new_files))]}
        resource = _validated(_with_keyless(_apply(base, fields, auto_summary=auto), keyless_lore))
        _write_version(runtime, resource, version, copy_from=folder, record=_record(runtime, old.id, current),
                       new_files=new_files)
        return {"id": resource.id, "version": version, "changed": True, "forked_from": old.id}


def picture_name(data: bytes, filename: str) -> str:
    """The file name a picture is kept under (``picture-<hash>.<ext>``: a new picture is a new
    file, so a version's files never change), once its bytes are checked to be a PNG, JPEG, WebP
    or GIF image of at most ``MAX_PICTURE_BYTES``."""
    shown = Path(str(filename or "").replace("\\", "/")).name[:200] or "the picture"
    if not data:
        raise UsageError(f"{shown}: the file is empty; choose a PNG, JPEG, WebP or GIF picture")
    if len(data) > MAX_PICTURE_BYTES:
        raise UsageError(f"{shown}: is {len(data) / 2**20:.1f} MiB; a picture may be at most "
                         f"{MAX_PICTURE_BYTES // 2**20} MiB")
    ext = next((ext for magic, ext in PICTURE_MAGIC if data.startswith(magic)), None)
    if ext == "webp" and data[8:12] != b"WEBP":
        ext = None
    if ext is None:
        raise UsageError(f"{shown}: is not a PNG, JPEG, WebP or GIF picture")
    return f"picture-{hashlib.sha256(data).hexdigest()[:12]}.{ext}"


def undo_character_edit(runtime, rid: str) -> dict:
    """Remove the newest version of a local character: the one before is current again. A
    character's only version goes to the trash (``restore_character`` brings it back).

    Returns ``{"id", "removed", "version" (now current, None when trashed), "deleted"}``.
    """
    rid = _local_id(rid)
    with _lock(runtime):
        versions = runtime.registry.versions(rid)
        if not versions:
            raise NotFound(f"{rid} is not installed")
        if len(versions) == 1:
            _trash(runtime, rid)
            return {"id": rid, "removed": versions[0], "version": None, "deleted": True}
        runtime.registry.remove(rid, versions[0])
        return {"id": rid, "removed": versions[0], "version": versions[1], "deleted": False}


# ---- importing cards -------------------------------------------------------------------------


def import_card(runtime, data: bytes, filename: str) -> str:
    """A local character from a SillyTavern card (PNG or JSON; V1, V2 or V3); returns its id.

    A PNG card's picture becomes the character's avatar. A file that is not a readable card, or
    whose fields make no valid character, is refused with a CardError (CARD_INVALID) that names the
    file and says what is wrong with it.
    """
    file = Path(str(filename or "").replace("\\", "/")).name[:200] or "card"
    try:
        card, is_png = read_card_bytes(bytes(data), file)
        with _lock(runtime):
            slug = _unique_slug(runtime, _name_slug(card["data"]["name"]))
            resource = card_to_manifest(card, owner=LOCAL, license=LOCAL_LICENSE, slug=slug, file=file)
            manifest = resource.model_dump(mode="json")
            manifest["versions"][0]["notes"] = f"Imported from {file}."
            extensions = manifest["spec"]["extensions"]
            extensions[EXTENSION] = {"imported_from": file}
            if is_png:
                manifest["spec"]["avatar"] = {"image": AVATAR_FILE}
            try:
                resource = _validated(manifest)
            except UsageError as e:
                raise CardError(f"{file}: {e}") from None
            _write_version(runtime, resource, resource.latest.version,
                           new_files={AVATAR_FILE: bytes(data)} if is_png else None)
    except ManifestError as e:
        raise CardError(str(e)) from None
    return resource.id


# ---- deleting and restoring ------------------------------------------------------------------


def is_own_character(runtime, rid: str) -> bool:
    """True when ``rid`` is one of the user's own characters (``local/…``) and is installed."""
    if not str(rid).startswith(f"{LOCAL}/"):
        return False
    records = runtime.registry.load().get(rid) or {}
    return any(isinstance(rec, dict) and rec.get("kind") == "character" for rec in records.values())


def delete_character(runtime, rid: str) -> dict:
    """Move a local character (every version) to the trash; ``restore_character`` undoes it."""
    rid = _local_id(rid)
    with _lock(runtime):
        if not runtime.registry.versions(rid):
            raise NotFound(f"{rid} is not installed")
        return {"id": rid, "versions": _trash(runtime, rid), "deleted": True}


def restore_character(runtime, rid: str) -> str:
    """Bring back a character ``delete_character`` (or undoing its only version) moved to the trash."""
    rid = _local_id(rid)
    with _lock(runtime):
        trashed = _trash_dir(runtime, rid)
        if not trashed.is_dir():
            raise NotFound(f"{rid} is not in the trash: there is nothing to restore")
        if runtime.registry.versions(rid):
            raise UsageError(f"{rid} exists again; delete it first to restore the one in the trash")
        try:
            records = json.loads((trashed / DELETED).read_text(encoding="utf-8")).get("records", {})
        except (OSError, ValueError, AttributeError):
            records = {}  # deleted.json lost in a crash: the files say the same, more slowly
        versions = {}
        for version_dir in sorted(trashed.iterdir()):
            if not (version_dir / MANIFEST).is_file() or version_dir.name.startswith("."):
                continue
            record = records.get(version_dir.name) or {}
            versions[version_dir.name] = {"files": record.get("files") or _files_of(version_dir, {}),
                                          "extra": record.get("extra")}
        runtime.registry.bring_back(trashed, rid, kind="character", records=versions)
        (runtime.registry.root / rid / DELETED).unlink(missing_ok=True)
    return rid


def _trash(runtime, rid: str) -> list[str]:
    """Move every version of ``rid`` to the trash in one rename, then forget them; the versions moved."""
    trashed = _trash_dir(runtime, rid)
    if trashed.exists():
        discard(trashed)  # an older deletion of the same id: only the newest can be restored
    records = runtime.registry.take_out(rid, trashed)
    stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    write_atomic(trashed / DELETED, json.dumps({"id": rid, "deleted_at": stamp, "records": records}, indent=1))
    return sorted(records, key=semver.Version.parse, reverse=True)


def _trash_dir(runtime, rid: str) -> Path:
    return runtime.home / "trash" / "characters" / rid


# ---- fields → a valid manifest ---------------------------------------------------------------


def _check_fields(fields: Any) -> None:
    if not isinstance(fields, dict):
        raise UsageError("a character's fields must be an object")
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise UsageError(f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                         f"(known: {', '.join(FIELDS)})")
    for key in ("name", "persona"):
        value = fields.get(key)
        if key in fields and isinstance(value, str) and not value.strip():
            raise UsageError(f"{key}: must not be empty")
    lorebook = fields.get("lorebook")
    if isinstance(lorebook, list) and len(lorebook) > MAX_LORE_ENTRIES:
        raise UsageError(f"lorebook: has {len(lorebook):,} entries; a character may have at most {MAX_LORE_ENTRIES:,}")
    voice = fields.get("voice")
    if isinstance(voice, dict) and isinstance(voice.get("engine"), str) and not voice["engine"].strip():
        raise UsageError("voice.engine: must not be empty (or leave out the voice)")


def _apply(base: dict, fields: dict, *, auto_summary: bool) -> dict:
    """``base`` (a manifest as JSON data) with ``fields`` put in; the summary follows the persona
    while it is the one Zishu made (``auto_summary``) and the fields name none."""
    manifest = {**base, "spec": dict(base["spec"])}
    for key, value in fields.items():
        value = value.strip() if key == "name" and isinstance(value, str) else value
        if key in TOP_FIELDS:
            manifest[key] = value
        else:
            manifest["spec"][key] = value
    if "summary" not in fields and auto_summary:
        name, persona = manifest.get("name"), manifest["spec"].get("persona")
        if isinstance(name, str) and isinstance(persona, str):
            manifest["summary"] = _auto_summary(name, persona)
    return manifest


def _with_keyless(manifest: dict, keyless: list[dict] | None) -> dict:
    """``manifest`` with ``keyless`` added to the keyless lorebook entries its card import kept."""
    if not keyless:
        return manifest
    extensions = dict(manifest["spec"].get("extensions") or {})
    st = dict(extensions.get(CARD_EXTENSION) or {})
    st["keyless_entries"] = [*(st.get("keyless_entries") or []), *keyless]
    manifest["spec"]["extensions"] = {**extensions, CARD_EXTENSION: st}
    return manifest


def _sheet_kept(old: CharacterResource, fields: dict) -> dict:
    """``fields`` with the old avatar sheet carried over when they keep the same picture and say
    nothing of a sheet (the editor sends ``{"image"}`` alone); a new picture drops the sheet."""
    avatar, had = fields.get("avatar"), old.spec.avatar
    if (isinstance(avatar, dict) and "sheet" not in avatar and had is not None and had.sheet
            and avatar.get("image") == had.image and avatar.get("live2d") is None):
        return {**fields, "avatar": {**avatar, "sheet": dict(had.sheet)}}
    return fields


def _auto_summary(name: str, persona: str) -> str:
    return summary_for({"name": name, "description": persona})


def _validated(manifest: dict) -> CharacterResource:
    try:
        return CharacterResource.model_validate(manifest)
    except ValidationError as e:
        raise UsageError("; ".join(_problem(err) for err in e.errors())) from None


def _problem(err: ErrorDetails) -> str:
    """One pydantic error as ``field: what is wrong`` in the editor's words."""
    kind, ctx, loc = err["type"], err.get("ctx") or {}, list(err["loc"])
    where = _where(loc)
    if kind in ("string_too_short", "too_short"):
        n = ctx.get("min_length", 1)
        unit = "characters" if "string" in kind else "items"
        what = "must not be empty" if n == 1 else f"must have at least {n} {unit}"
    elif kind == "string_too_long":
        what = f"must be at most {ctx.get('max_length')} characters"
    elif kind == "too_long":
        what = f"may have at most {ctx.get('max_length')} items"
    elif kind == "missing":
        what = "is required"
    elif kind == "extra_forbidden":
        what = "is not a known field"
    elif kind == "string_pattern_mismatch" and loc and loc[-1] in ("voice", "model", "lora", "live2d",
                                                                              "embedding", "asr", "vad"):
        what = f"{err.get('input')!r} is not a catalog id (owner/name)"
    elif kind == "string_pattern_mismatch" and "tags" in loc:
        what = f"{err.get('input')!r} is not a tag (lowercase letters, digits and '-', at most 32)"
    else:
        what = err["msg"].removeprefix("Value error, ")
        what = what[:1].lower() + what[1:]
    return f"{where}: {what}" if where else what


def _where(loc: list) -> str:
    parts = loc[1:] if loc[:1] == ["spec"] else loc
    out: list[str] = []
    for i, part in enumerate(parts):
        previous = parts[i - 1] if i else None
        if isinstance(part, int):
            label = f"entry {part + 1}"
            out[-1:] = [f"{out[-1]} {label}" if out else label]
        elif part == "[key]":
            out[-1:] = [f"{out[-1]} tag" if out else "tag"]
        elif previous == "emotions" and out:
            out[-1] = f"{out[-1]} [{part}]"
        else:
            out.append(str(part))
    return ".".join(out)


def _same_content(a: CharacterResource, b: CharacterResource) -> bool:
    keep = {"name", "summary", "tags", "spec", "license"}
    return a.model_dump(mode="json", include=keep) == b.model_dump(mode="json", include=keep)


def _version_entry(version: str, *, files: list | None = None, requires: list | None = None, notes: str) -> dict:
    today = dt.datetime.now().astimezone().date()  # the user's local date
    return {"version": version, "released": today.isoformat(), "files": files or [],
            "requires": requires or [], "notes": notes}


def _carried(old: CharacterResource, installed: str, version: str, notes: str, *, adds_files: bool = False) -> dict:
    """A new version entry with the files and requirements of ``old``'s ``installed`` version. When
    the new version ``adds_files`` made here (a picture, an avatar sheet), it lists none: the
    carried entries name downloads that no longer describe the folder (the registry records it)."""
    latest = (old.version(installed) or old.latest).model_dump(mode="json")
    return _version_entry(version, files=[] if adds_files else latest["files"], requires=latest["requires"],
                          notes=notes)


# ---- writing versions ------------------------------------------------------------------------


def _write_version(runtime, resource: CharacterResource, version: str, *, copy_from: Path | None = None,
                   record: dict | None = None, new_files: dict[str, bytes] | None = None) -> Path:
    """Put ``version`` of ``resource`` in place: files linked from ``copy_from`` (another version
    folder), ``new_files`` written, ``manifest.json`` last, then one rename and the registry record.
    The caller holds the store's lock (``_lock``) throughout."""
    registry = runtime.registry
    if version in registry.versions(resource.id):
        raise UsageError(f"{resource.id}@{version} already exists")
    staging = registry.staging(resource.id, version)
    try:
        if copy_from is not None:
            for path in sorted(copy_from.rglob("*")):
                if path.is_file() and path.relative_to(copy_from).as_posix() != MANIFEST:
                    link_or_copy(path, staging / path.relative_to(copy_from))
        for name, data in (new_files or {}).items():
            write_atomic(staging / name, data)
        files = _files_of(staging, (record or {}).get("files") or {})
        avatar = resource.spec.avatar
        if avatar and avatar.image and avatar.image not in files:
            raise UsageError(f"avatar.image: {avatar.image!r} is not a file of this character")
        for emotion, picture in (avatar.sheet if avatar else {}).items():
            if picture not in files:
                raise UsageError(f"avatar.sheet.{emotion}: {picture!r} is not a file of this character")
        write_atomic(staging / MANIFEST, RESOURCE.dump_json(resource, indent=1).decode() + "\n")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    # a folder already there has no registered version (an undone edit, a crash): put replaces it
    final = registry.put(staging, resource.id, version, kind="character", files=files)
    key = character_index.manifest_key(registry, resource.id, version)
    if key is not None and version == registry.versions(resource.id)[0]:
        character_index.put_entry(registry, resource.id, key, _summary_of(resource, version))
    return final


def _files_of(folder: Path, known: dict[str, dict]) -> dict[str, dict]:
    """name → {sha256, size} of the files in a version folder (``known`` digests reused when the size matches)."""
    files = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if not path.is_file() or name in (MANIFEST, DELETED):
            continue
        size = path.stat().st_size
        digest = known.get(name, {}).get("sha256") if known.get(name, {}).get("size") == size else None
        files[name] = {"sha256": digest or sha256_of(path), "size": size}
    return files


def _record(runtime, rid: str, version: str) -> dict:
    return runtime.registry.load().get(rid, {}).get(version, {})


# ---- ids and names ---------------------------------------------------------------------------


def _checked_id(rid: Any) -> str:
    return parse_id(rid, what="character id")


def _local_id(rid: Any) -> str:
    rid = _checked_id(rid)
    if not rid.startswith(f"{LOCAL}/"):
        raise UsageError(f"{rid} came from the catalog: uninstall it in the Library; only your own "
                         f"characters ({LOCAL}/…) are deleted and undone here")
    return rid


def _name_slug(name: Any) -> str:
    slug = slugify(name.strip()[:100], 56) if isinstance(name, str) else ""
    return slug or "character"


def _unique_slug(runtime, base: str) -> str:
    """``base``, or ``base-2``, ``base-3``…: the first not installed and not in the trash."""
    base = base[:56].strip("-") or "character"
    taken = {rid.split("/", 1)[1] for rid in runtime.registry.load() if rid.startswith(f"{LOCAL}/")}
    trash = runtime.home / "trash" / "characters" / LOCAL
    taken |= {p.name for p in trash.iterdir()} if trash.is_dir() else set()
    installed = runtime.registry.root / LOCAL
    taken |= {p.name for p in installed.iterdir()} if installed.is_dir() else set()
    n, slug = 1, base
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    return slug


def _lock(runtime) -> BaseFileLock:
    """The version store's one lock, held for the whole of every change to the user's characters
    (they are rare and quick): the same lock the installer and gc take for version folders."""
    return runtime.registry.lock
