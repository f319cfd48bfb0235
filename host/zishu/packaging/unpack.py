"""Opening a ``.zpkg`` safely: every entry checked, every byte verified before anything lands.

``open_zpkg(path, workdir)`` refuses (``PackageError``, nothing installed) a package that

- names an entry with ``..``, an absolute path, a drive or a backslash, or a symbolic link
  (by the zip's Unix mode bits);
- holds two entries with the same name (also differing only in case);
- would inflate past ``Limits``: more bytes than the manifest says an entry has, more than
  ``total`` in all, or more than ``ratio`` times an entry's compressed size. These are counted
  while the bytes stream out, never taken from the zip's headers;
- has an unknown ``format_version``, or a manifest that does not match its files: a file
  missing, an entry the manifest does not list, a size or sha256 that differs.

It extracts the embedded files into ``workdir`` (a fresh temp folder inside ZISHU_HOME, so the
final move is a rename on the same disk), verifying each, and returns an ``OpenedPackage``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pydantic import ValidationError

from zishu.errors import PackageError

from .format import FORMAT_VERSION, MANIFEST, PACKAGE, PackageManifest
from .opened import OpenedPackage

CHUNK = 1024 * 1024
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
MAX_ENTRIES = 100_000


@dataclass(frozen=True)
class Limits:
    total: int = 512 * 1024**3  # bytes out of one package, at most
    ratio: int = 200  # inflated / compressed, at most (once an entry passes ``ratio_after`` bytes)
    ratio_after: int = 1024 * 1024


def open_zpkg(path: Path, workdir: Path, limits: Limits = Limits()) -> OpenedPackage:
    name = path.name
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise PackageError(f"{name}: not a .zpkg (zip) file: {e}") from None
    with zf:
        infos = _checked_entries(zf, name)
        manifest = _manifest(zf, infos, name)
        _match(manifest, infos, name)
        workdir.mkdir(parents=True, exist_ok=True)
        _extract(zf, manifest, infos, workdir, name, limits)
    return OpenedPackage(manifest, workdir, name)


def _checked_entries(zf: zipfile.ZipFile, name: str) -> dict[str, zipfile.ZipInfo]:
    infos = zf.infolist()
    if len(infos) > MAX_ENTRIES:
        raise PackageError(f"{name}: has {len(infos):,} entries; a package may have at most {MAX_ENTRIES:,}")
    found: dict[str, zipfile.ZipInfo] = {}
    folded: dict[str, str] = {}
    for info in infos:
        entry = info.orig_filename
        problem = _unsafe(entry)
        if problem:
            raise PackageError(f"{name}: entry {entry!r} {problem}; refused (nothing was installed)")
        mode = info.external_attr >> 16
        if info.create_system == 3 and stat.S_ISLNK(mode):
            raise PackageError(f"{name}: entry {entry!r} is a symbolic link; refused (nothing was installed)")
        if entry in found or entry.casefold() in folded:
            other = folded.get(entry.casefold(), entry)
            raise PackageError(f"{name}: entry {entry!r} appears twice (as {other!r}); refused")
        found[entry] = info
        folded[entry.casefold()] = entry
    return found


def _unsafe(entry: str) -> str | None:
    if not entry or "\0" in entry:
        return "has an empty or NUL name"
    if "\\" in entry:
        return "has a backslash in its path"
    if entry.startswith("/") or (len(entry) > 1 and entry[1] == ":"):
        return "is an absolute path"
    parts = PurePosixPath(entry).parts
    if ".." in parts or any(p in ("", ".") for p in entry.rstrip("/").split("/")):
        return "leaves the package folder ('..' or an empty or '.' step)"
    return None


def _manifest(zf: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo], name: str) -> PackageManifest:
    if MANIFEST not in infos:
        raise PackageError(f"{name}: has no {MANIFEST}; not a Zishu package")
    raw = _read_bounded(zf, infos[MANIFEST], MAX_MANIFEST_BYTES, name)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise PackageError(f"{name}: {MANIFEST} is not JSON: {e}") from None
    version = data.get("format_version") if isinstance(data, dict) else None
    if version != FORMAT_VERSION:
        raise PackageError(f"{name}: unknown format_version {version!r}; this Zishu reads format_version "
                           f"{FORMAT_VERSION} (a newer Zishu may read it)")
    try:
        return PACKAGE.validate_python(data)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()[:10])
        raise PackageError(f"{name}: {MANIFEST}: {problems}") from None


def _read_bounded(zf: zipfile.ZipFile, info: zipfile.ZipInfo, most: int, name: str) -> bytes:
    out = bytearray()
    with zf.open(info) as src:
        while block := src.read(CHUNK):
            out += block
            if len(out) > most:
                raise PackageError(f"{name}: {info.filename} is more than {most // 2**20} MiB")
    return bytes(out)


def _match(manifest: PackageManifest, infos: dict[str, zipfile.ZipInfo], name: str) -> None:
    """The zip holds exactly the manifest's embedded files (folder entries aside)."""
    wanted = manifest.embedded_paths()
    present = {n for n in infos if n != MANIFEST and not n.endswith("/")}
    missing, extra = sorted(wanted - present), sorted(present - wanted)
    if missing:
        raise PackageError(f"{name}: the manifest lists {', '.join(missing[:5])} but the package does not hold "
                           f"{'them' if len(missing) > 1 else 'it'}")
    if extra:
        raise PackageError(f"{name}: the package holds {', '.join(extra[:5])}, which the manifest does not list")
    paths = [f.path for f in manifest.files]
    if len(paths) != len(set(paths)):
        raise PackageError(f"{name}: the manifest lists a file twice")


def _extract(zf: zipfile.ZipFile, manifest: PackageManifest, infos: dict[str, zipfile.ZipInfo], workdir: Path,
             name: str, limits: Limits) -> None:
    expected = {f.path: (f.sha256, f.size) for f in manifest.files}
    for f in manifest.files:  # a fallback copy is the file the catalog would serve
        fallback = getattr(f.source, "fallback", None)
        if fallback:
            expected.setdefault(fallback, (f.sha256, f.size))
    declared = sum(expected[p][1] for p in manifest.embedded_paths())
    if declared > limits.total:
        raise PackageError(f"{name}: would unpack to {declared:,} bytes; at most {limits.total:,} are allowed")
    free = shutil.disk_usage(workdir).free
    if declared > free:
        raise PackageError(f"{name}: needs {declared:,} bytes and {workdir} has {free:,} free")
    out_total = 0
    for path in sorted(manifest.embedded_paths()):
        info, (sha, size) = infos[path], expected[path]
        dest = workdir / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        digest, written = hashlib.sha256(), 0
        try:
            with zf.open(info) as src, dest.open("xb") as out:
                while block := src.read(CHUNK):
                    written += len(block)
                    out_total += len(block)
                    if written > size:
                        raise PackageError(f"{name}: {path} inflates past the {size:,} bytes its manifest "
                                           "says (a zip bomb, or a manifest that does not match); refused")
                    if out_total > limits.total:
                        raise PackageError(f"{name}: inflates past {limits.total:,} bytes in all (a zip "
                                           "bomb); refused")
                    if written > limits.ratio_after and written > limits.ratio * max(info.compress_size, 1):
                        raise PackageError(f"{name}: {path} inflates more than {limits.ratio}× its compressed "
                                           "size (a zip bomb); refused")
                    digest.update(block)
                    out.write(block)
        except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as e:
            raise PackageError(f"{name}: {path} is damaged: {e}") from None
        if written != size:
            raise PackageError(f"{name}: {path} is {written:,} bytes; the manifest says {size:,}")
        if digest.hexdigest() != sha:
            raise PackageError(f"{name}: {path} has sha256 {digest.hexdigest()}; the manifest says {sha}")
