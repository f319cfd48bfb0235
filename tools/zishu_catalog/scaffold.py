"""``zishu catalog new``: write a manifest scaffold for files that are about to go on GitHub Releases.

The creator names the kind, the id and the local files; this module measures each file (sha256 and
size, streamed, with a progress bar for big files), writes ``<root>/resources/<owner>/<name>.yaml``
with the GitHub Releases URL each file will have once uploaded, and prints the ``gh`` commands that
upload them. The scaffold validates as it is; the placeholders it must not keep (name, summary,
license, free-text spec fields) start with ``TODO`` so they are easy to find.

A file keeps its sub-folder in its ``name`` (``motions/idle.motion3.json``), because the model,
voice or character that uses it finds it there: the name is relative to ``--base`` when given, and
for a Live2D model to the folder of its ``.model3.json`` (the folder every path in that file is
relative to). A GitHub release holds single files with flat names, so such a file's release asset
is named with ``.`` for ``/`` (``motions.idle.motion3.json``, ``asset_name``); only its URL says so.
Folders are refused: pass the files inside one (with ``--base``), or pack it into one archive.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

import click
import semver
import yaml
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from zishu.catalog import KINDS, dump_manifest, parse_manifest
from zishu.errors import UsageError
from zishu.files import write_atomic
from zishu.ids import RULE, is_id

SCHEMA_REF = "../../resource.schema.json"
LICENSE_PLACEHOLDER = "LicenseRef-TODO-choose-a-license"
CHUNK = 1024 * 1024
BIG_FILE = 64 * 1024 * 1024  # show a progress bar when the files add up to this much

# GitHub renames release assets whose names hold other characters; refuse them instead.
_ASSET_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]*$")
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]*$")

MODEL_FORMATS = {".gguf": "gguf", ".onnx": "onnx", ".safetensors": "safetensors", ".ckpt": "ckpt",
                 ".pt": "pytorch", ".pth": "pytorch"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


# ---- measuring files -------------------------------------------------------------------------


def sha256_of(stream: BinaryIO, advance=lambda n: None) -> tuple[str, int]:
    """Stream ``stream`` through sha256; return (hex digest, byte count)."""
    digest, size = hashlib.sha256(), 0
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
        advance(len(chunk))
    return digest.hexdigest(), size


def measure_files(paths: list[Path], console: Console | None = None) -> list[tuple[str, int]]:
    """(sha256, size) of each file, with a progress bar on ``console`` when they are big."""
    total = sum(p.stat().st_size for p in paths)
    if total < BIG_FILE:
        return [_measure(p) for p in paths]
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console or Console(stderr=True), transient=True) as progress:
        results = []
        for path in paths:
            task = progress.add_task(f"sha256 {path.name}", total=path.stat().st_size)
            results.append(_measure(path, lambda n, t=task: progress.advance(t, n)))
        return results


def _measure(path: Path, advance=lambda n: None) -> tuple[str, int]:
    with path.open("rb") as f:
        return sha256_of(f, advance)


# ---- the scaffold ----------------------------------------------------------------------------


def release_url(repo: str, tag: str, name: str) -> str:
    """Where GitHub serves the asset that holds the file ``name`` (a path in the version)."""
    return f"https://github.com/{repo}/releases/download/{tag}/{asset_name(name)}"


def asset_name(name: str) -> str:
    """The flat release asset name of the file ``name``: sub-folders joined with ``.``."""
    return name.replace("/", ".")


def file_names(files: list[Path], kind: str, base: Path | None) -> list[str]:
    """Each file's name in the version: relative to ``base``; for a Live2D model without ``base``,
    relative to its ``.model3.json``'s folder (files outside it keep their own name)."""
    given = base is not None
    if base is None and kind == "live2d":
        entry = next((f for f in files if f.name.endswith(".model3.json")), None)
        base = entry.parent if entry is not None else None
    if base is None:
        return [f.name for f in files]
    root = base.resolve()
    names = []
    for f in files:
        try:
            names.append(f.resolve().relative_to(root).as_posix())
        except ValueError:
            if not given:
                names.append(f.name)
                continue
            raise UsageError(f"{f} is not inside --base {base}") from None
    return names


def spec_placeholders(kind: str, names: list[str], resource_name: str) -> dict[str, Any]:
    """A ``spec`` block that validates, guessed from the file names where a guess is safe."""
    if kind == "character":
        spec: dict[str, Any] = {"persona": "TODO: who the character is, written as the system prompt."}
        image = next((n for n in names if n.lower().endswith(IMAGE_SUFFIXES)), None)
        if image:
            spec["avatar"] = {"image": image}
        return spec
    if kind == "live2d":
        entry = next((n for n in names if n.endswith(".model3.json")), None)
        if entry is None:
            raise UsageError("a Live2D resource needs its .model3.json file among FILES (spec.entry names it)")
        return {"cubism": 4, "entry": entry}
    if kind == "lora":
        llm = any(n.endswith(".gguf") or n == "adapter_config.json" for n in names)
        return {"target": "llm" if llm else "image", "base_model": "TODO: catalog id or family of the base model"}
    if kind == "model":
        formats = {MODEL_FORMATS[Path(n).suffix.lower()] for n in names if Path(n).suffix.lower() in MODEL_FORMATS}
        spec = {}
        if len(formats) == 1:
            spec["format"] = formats.pop()
        if spec.get("format") == "gguf":
            spec["role"] = "llm"
        return spec
    if kind == "voice":
        return {"engine": "TODO: TTS engine, e.g. gpt-sovits", "language": "TODO: BCP 47 tag, e.g. zh-CN"}
    if kind == "plugin":
        wheel = next((n for n in names if n.endswith(".whl")), None)
        if wheel is None:
            raise UsageError("a plugin resource needs its wheel (.whl) among FILES (spec.wheel names it)")
        return {"distribution": wheel.split("-", 1)[0].replace("_", "-"), "wheel": wheel, "entry_point": resource_name}
    raise UsageError(f"unknown kind {kind!r}; one of: {', '.join(KINDS)}")


def apply_spec_options(spec: dict[str, Any], settings: Iterable[str]) -> None:
    """Apply ``KEY=VALUE`` settings (dotted keys reach into nested blocks; values read as YAML)."""
    for setting in settings:
        key, sep, raw = setting.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--spec {setting!r}: write KEY=VALUE, e.g. --spec role=tts")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        *parents, leaf = key.strip().split(".")
        target = spec
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise UsageError(f"--spec {setting!r}: {part!r} is not a block of fields")
        target[leaf] = value


def scaffold_data(kind: str, resource_id: str, version: str, names: list[str], measured: list[tuple[str, int]],
                  repo: str, tag: str, license: str | None, spec: dict[str, Any]) -> dict[str, Any]:
    """The manifest as plain data, placeholders included."""
    owner, name = resource_id.split("/")
    title = name.replace("-", " ").title()
    files = [
        {"name": n, "url": release_url(repo, tag, n), "sha256": digest, "size": size}
        for n, (digest, size) in zip(names, measured, strict=True)
    ]
    return {
        "id": resource_id,
        "kind": kind,
        "name": f"TODO: {title}",
        "summary": f"TODO: one sentence saying what this {kind} is and what it is good for.",
        "license": license or LICENSE_PLACEHOLDER,
        "maintainers": [owner],
        "versions": [{"version": version, "released": dt.datetime.now(dt.timezone.utc).date(), "files": files}],
        "spec": spec,
    }


def manifest_path(root: Path, resource_id: str) -> Path:
    owner, name = resource_id.split("/")
    return root / "resources" / owner / f"{name}.yaml"


def check_inputs(resource_id: str, version: str, repo: str, tag: str, files: list[Path],
                 names: list[str] | None = None) -> None:
    """Refuse, with a clear message, anything that would give a broken scaffold."""
    if not is_id(resource_id):
        raise UsageError(f"--id {resource_id!r} must be OWNER/NAME ({RULE})")
    if not semver.Version.is_valid(version):
        raise UsageError(f"--version {version!r} is not a semantic version (MAJOR.MINOR.PATCH, e.g. 1.0.0)")
    if not _REPO.match(repo):
        raise UsageError(f"--repo {repo!r} must be OWNER/REPO on GitHub")
    if not _TAG.match(tag):
        raise UsageError(f"--tag {tag!r} may hold only letters, digits, '.', '_', '+' and '-'")
    for path in files:
        if path.is_dir():
            raise UsageError(
                f"{path} is a folder; a GitHub release holds single files: pack it into one archive "
                "(e.g. a .zip) or pass the files inside it one by one (with --base FOLDER to keep "
                "their sub-folders in their names)"
            )
        if not path.is_file():
            raise UsageError(f"{path}: no such file")
    check_asset_names(names if names is not None else [p.name for p in files])


def check_asset_names(names: list[str]) -> None:
    """Refuse names GitHub would rename as assets, and two files that would share one asset."""
    seen: dict[str, str] = {}
    for name in names:
        for part in name.split("/"):
            if not _ASSET_NAME.match(part):
                raise UsageError(
                    f"{name!r}: GitHub renames release assets with such characters; rename the file "
                    "using only letters, digits, '.', '_', '+' and '-'"
                )
        asset = asset_name(name)
        if asset in seen:
            same = "are named" if seen[asset] == name else f"({seen[asset]!r} and {name!r}) become the asset"
            raise UsageError(f"two files {same} {asset!r}; release assets need distinct names")
        seen[asset] = name


def next_steps(path: Path, repo: str, tag: str, files: list[Path], root: Path,
               names: list[str] | None = None) -> str:
    """What to do after the scaffold is written, with the exact commands."""
    q = shlex.quote
    lines = [f"Wrote {path}", "", "Next steps:"]
    step = 1
    names = names if names is not None else [f.name for f in files]
    if files:
        renamed = [(f, asset_name(n)) for f, n in zip(files, names, strict=True) if asset_name(n) != f.name]
        copies = [f"       cp {q(str(f))} release-assets/{q(a)}" for f, a in renamed]
        uploads = [f"release-assets/{q(a)}" if asset_name(n) != f.name else q(str(f))
                   for f, n, a in zip(files, names, map(asset_name, names), strict=True)]
        upload = " ".join(["gh release upload", q(tag), *uploads, "--repo", q(repo)])
        lines += [
            f"  {step}. Upload the files to the release {tag} of {repo}",
            "     (if the release does not exist yet: "
            f"gh release create {q(tag)} --repo {q(repo)} --title {q(tag)} --notes '')",
        ]
        if copies:
            lines += ["     Files in sub-folders upload under flat asset names (the URLs say so):",
                      "       mkdir -p release-assets", *copies]
        lines.append(f"       {upload}")
        step += 1
    lines += [
        f"  {step}. Edit {path}:",
        "     replace every TODO (name, summary, license, spec), check the spec fields guessed from",
        "     the file names, and add tags, description, homepage and preview if you like.",
        f"  {step + 1}. Check it: zishu catalog validate --root {q(str(root))} --online {q(str(path))}",
        f"  {step + 2}. Commit the manifest on a branch of your fork and open a pull request.",
    ]
    return "\n".join(lines)


@click.command("new")
@click.option("--kind", type=click.Choice(KINDS), required=True, help="What the resource is.")
@click.option("--id", "resource_id", required=True, metavar="OWNER/NAME",
              help="The catalog id (OWNER is your GitHub login, lowercase).")
@click.option("--version", "version", default="1.0.0", show_default=True, help="Semantic version of these files.")
@click.option("--repo", metavar="OWNER/REPO", help="GitHub repository whose release holds the files [default: the id].")
@click.option("--tag", help="Release tag [default: v<version>].")
@click.option("--license", "license_", metavar="SPDX", help="SPDX license id or expression, e.g. CC-BY-4.0.")
@click.option("--format", "model_format", help="Model format (kind model), e.g. gguf, onnx, funasr, diffusers.")
@click.option("--role", help="Model role (kind model): llm, asr, tts, image, embedding or vad.")
@click.option("--spec", "spec_settings", multiple=True, metavar="KEY=VALUE",
              help="Set a spec field (repeatable; dotted keys, YAML values).")
@click.option("--root", type=click.Path(path_type=Path), default=Path("registry_index"), show_default=True,
              help="The catalog source folder.")
@click.option("--force", is_flag=True, help="Overwrite an existing manifest.")
@click.option("--base", type=click.Path(file_okay=False, path_type=Path),
              help="Name files by their path inside this folder (keeps sub-folders) "
                   "[default: a Live2D model's .model3.json folder, else the file's own name].")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
def new_command(
    kind, resource_id, version, repo, tag, license_, model_format, role, spec_settings, root, force, base, files
) -> None:
    """Write a manifest scaffold for FILES, to be uploaded to a GitHub release.

    Measures each file (sha256, size), writes <root>/resources/<owner>/<name>.yaml with the
    GitHub Releases URLs the files will have, and prints the gh commands that upload them.
    Folders are refused: pack a folder into one archive, or pass its files one by one.
    """
    files = list(files)
    repo = repo or resource_id
    tag = tag or f"v{version}"
    check_inputs(resource_id, version, repo, tag, files)
    names = file_names(files, kind, base)
    check_asset_names(names)
    if not files and kind != "character":
        raise UsageError(f"give the files of this {kind} (FILES...); only a character may have none")
    path = manifest_path(root, resource_id)
    if path.exists() and not force:
        raise UsageError(f"{path} already exists; edit it, or pass --force to overwrite it")

    spec = spec_placeholders(kind, names, resource_id.split("/")[1])
    if model_format:
        spec["format"] = model_format
    if role:
        spec["role"] = role
    apply_spec_options(spec, spec_settings)
    if kind == "model":
        if "format" not in spec:
            raise UsageError("cannot tell the model's format from its files; "
                             "pass --format (gguf, onnx, funasr, diffusers, ...)")
        if "role" not in spec:
            raise UsageError("pass --role: llm, asr, tts, image, embedding or vad")

    measured = measure_files(files)
    data = scaffold_data(kind, resource_id, version, names, measured, repo, tag, license_, spec)
    resource = parse_manifest(data, str(path))
    write_atomic(path, dump_manifest(resource, schema_ref=SCHEMA_REF))
    click.echo(next_steps(path, repo, tag, files, root, names))
