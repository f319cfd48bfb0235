"""Writing a ``.zpkg``: deterministic and streaming.

The same character gives the same bytes: entries sorted by path, ``manifest.json`` last (its
hashes are measured while the files are copied), every entry dated 1980-01-01 00:00:00 with
mode 0644 from a Unix host, and compression chosen by file type (already-compressed formats
and model weights stored, the rest deflated at level 6). Files are copied in 1 MiB chunks and
hashed on the way, so memory stays flat whatever their size (``bench/pack_memory.py``). The
package is written to a temp file beside ``out`` and renamed into place when complete.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zishu.errors import UsageError
from zishu.files import SHARED_FILE_MODE, adjacent_tmp_file

from .format import (
    FORMAT_VERSION,
    MANIFEST,
    MODES,
    PACKAGE,
    Embedded,
    FromCatalog,
    PackageFile,
    PackageManifest,
    character_path,
    is_base_model,
    resource_path,
)
from .parts import CharacterParts, Part

CHUNK = 1024 * 1024
EPOCH = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644  # a regular file, rw-r--r--
HYBRID_EMBED_LIMIT = 32 * 1024 * 1024  # hybrid: resources up to this size are embedded only
STORED_SUFFIXES = frozenset({
    ".png", ".jpg", ".jpeg", ".webp", ".gif", ".mp3", ".ogg", ".opus", ".m4a", ".flac", ".mp4", ".webm",
    ".zip", ".gz", ".xz", ".zst", ".7z", ".whl", ".zpkg", ".gguf", ".safetensors", ".bin", ".pt", ".pth",
    ".ckpt", ".onnx", ".moc3", ".npz",
})  # fmt: skip

Progress = Callable[[int, int | None, str], None]


@dataclass
class _Entry:
    path: str  # in the zip
    source: Path


def plan_files(parts: CharacterParts, mode: str) -> tuple[list[_Entry], list[PackageFile | dict]]:
    """What goes in the zip, and the manifest's file list (embedded entries get their hashes later)."""
    if mode not in MODES:
        raise UsageError(f"--mode {mode}: must be one of {', '.join(MODES)}")
    entries: list[_Entry] = []
    files: list[PackageFile | dict] = []
    for name, path in parts.files():
        entries.append(_Entry(character_path(name), path))
        files.append({"path": character_path(name), "source": {"embedded": True}})
    for part in parts.resources:
        how = _how(part, mode)
        for name, on_disk, entry in part.files():
            where = resource_path(part.id, part.version.version, name)
            if how == "embed":
                assert on_disk is not None
                entries.append(_Entry(where, on_disk))
                files.append({"path": where, "source": {"embedded": True}})
                continue
            sha, size = entry.sha256, entry.size
            if sha is None or size is None:
                raise UsageError(f"{part.id}@{part.version.version}: {name} has no recorded sha256 and size")
            fallback = None
            if how == "fallback":
                assert on_disk is not None
                entries.append(_Entry(where, on_disk))
                fallback = where
            source = FromCatalog(catalog=f"{part.id}@{part.version.version}", url=entry.url, sha256=sha,
                                 fallback=fallback)
            files.append(PackageFile(path=where, sha256=sha, size=size, source=source))
    return sorted(entries, key=lambda e: e.path), files


def _how(part: Part, mode: str) -> str:
    """embed, refer or fallback (referred, with a copy inside) for one resource version."""
    if not part.installed or is_base_model(part.resource) or mode == "reference":
        return "refer"
    if mode == "standalone" or part.size <= HYBRID_EMBED_LIMIT:
        return "embed"
    return "fallback"


def write_zpkg(parts: CharacterParts, mode: str, out: Path, progress: Progress | None = None) -> Path:
    """Write ``parts`` as a ``.zpkg`` at ``out`` in ``mode``; returns ``out``."""
    entries, files = plan_files(parts, mode)
    total = sum(e.source.stat().st_size for e in entries)
    done = 0
    measured: dict[str, tuple[str, int]] = {}
    report = progress or (lambda done, total, message: None)
    report(0, total, f"packing {len(entries)} files")
    with (adjacent_tmp_file(out, "wb", SHARED_FILE_MODE) as f,
          zipfile.ZipFile(f, "w", allowZip64=True, compresslevel=6) as zf):
        for entry in entries:
            size = entry.source.stat().st_size
            digest = hashlib.sha256()
            with entry.source.open("rb") as src, zf.open(_info(entry.path, size), "w", force_zip64=size > 2**31) as dst:
                while block := src.read(CHUNK):
                    digest.update(block)
                    dst.write(block)
                    done += len(block)
                    report(done, total, f"packing {entry.path}")
            measured[entry.path] = (digest.hexdigest(), size)
        manifest = PackageManifest(
            format_version=FORMAT_VERSION, mode=mode, character=parts.character,  # type: ignore[arg-type]
            resources=[p.resource for p in parts.resources],
            files=[f if isinstance(f, PackageFile) else PackageFile(
                path=f["path"], sha256=measured[f["path"]][0], size=measured[f["path"]][1], source=Embedded())
                for f in files],
        )
        for f_ in manifest.files:  # a fallback copy must be the very file the catalog serves
            origin = f_.source
            if isinstance(origin, FromCatalog) and origin.fallback and measured[origin.fallback] != (f_.sha256,
                                                                                              f_.size):
                raise UsageError(f"{f_.path}: the installed copy differs from the catalog's sha256/size; "
                                 f"reinstall {origin.catalog}")
        body = json.dumps(PACKAGE.dump_python(manifest, mode="json", exclude_none=True), indent=1,
                          ensure_ascii=False, sort_keys=True) + "\n"
        zf.writestr(_info(MANIFEST, len(body)), body.encode("utf-8"))
    report(total, total, f"wrote {out.name}")
    return out


def _info(path: str, size: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(path, date_time=EPOCH)
    info.create_system = 3  # Unix: the mode below is read as one
    info.external_attr = FILE_MODE << 16
    stored = Path(path).suffix.lower() in STORED_SUFFIXES
    info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    info.file_size = size
    return info
