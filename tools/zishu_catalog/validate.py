"""``zishu catalog validate``: every rule a manifest must follow before it joins the catalog.

This module reads the catalog and reports on it; the rules live beside it:

- ``read_catalog`` reads every manifest under ``resources/`` (schema checks by
  ``zishu.catalog.reading``), with an optional JSON cache so that a rebuild parses only the YAML
  files that changed; ``load_catalog`` is what the build step calls;
- ``rules`` — offline checks: id = path, unique and unretired ids, allowed file URLs with
  checksums, requires that resolve without cycles, license compatibility;
- ``published`` — against a git base: published versions never change, only maintainers change;
- ``online`` — downloads new and changed files, verifies or measures them;
- ``policy`` — policy.yaml and retired.yaml.

``validate`` runs them all and ``validate_command`` reports the outcome as text, markdown or JSON.
Every failure is a ``Problem(file, field, message)``; nothing a pull request contains may crash it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import click
from pydantic import ValidationError

from zishu.catalog.manifest import RESOURCE, Resource
from zishu.catalog.reading import MAX_MANIFEST_BYTES, load_yaml, parse_manifest
from zishu.errors import ManifestError, Problem, exit_status
from zishu.files import write_atomic

from .online import Measured, check_downloads, files_to_check
from .online import write_measured as write_measured_values
from .policy import Policy, load_policy, load_retired, parse_policy, parse_retired
from .published import BaseCatalog, check_against_base, read_base
from .rules import check_offline

CACHE_FORMAT = 1  # bump when the cache's layout changes

# ---- reading the catalog ---------------------------------------------------------------------


@dataclass
class Manifest:
    """One manifest file of the catalog, and its resource when it could be read and validated."""

    rel: str  # POSIX path under resources/, e.g. "alice/example.yaml"
    path: Path
    file: str  # how problems name the file
    resource: Resource | None = None

    @property
    def expected_id(self) -> str:
        return self.rel.removesuffix(".yaml")


@dataclass
class Catalog:
    """Every manifest under ``root/resources``, and the problems met while reading them."""

    root: Path
    manifests: list[Manifest]
    problems: list[Problem] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # path under resources/ → name given by the user

    def name(self, rel: str) -> str:
        """How problems name the file at ``rel`` (under resources/): as the user gave it, or root-based."""
        return self.names.get(rel) or _printable(os.path.join(self.root, "resources", rel))

    @property
    def valid(self) -> list[Manifest]:
        return [m for m in self.manifests if m.resource is not None]

    def by_id(self) -> dict[str, Manifest]:
        """Valid manifests by id (the first file wins when an id is used twice)."""
        out: dict[str, Manifest] = {}
        for m in self.valid:
            out.setdefault(m.resource.id, m)
        return out


def read_catalog(root: Path, *, cache_file: Path | None = None, names: dict[str, str] | None = None) -> Catalog:
    """Read and schema-check every manifest under ``root/resources``.

    ``names`` maps a path under resources/ to the name problems should use for it (as the user
    typed it). With ``cache_file``, files whose size and mtime match the cache are re-validated
    from their cached JSON instead of being parsed again, and the cache is refreshed atomically.
    """
    resources = root / "resources"
    cache = _load_cache(cache_file)
    fresh: dict[str, list] = {}  # what the cache will hold: rel → [size, mtime_ns, validated JSON]
    catalog = Catalog(root, [], names=names or {})
    for rel, path, st, problem in sorted(_manifest_files(resources), key=lambda found: found[0]):
        file = catalog.name(rel)
        if problem:
            catalog.problems.append(Problem(file, "", problem))
            continue
        manifest = Manifest(rel, Path(path), file)
        catalog.manifests.append(manifest)
        key = [st.st_size, st.st_mtime_ns]
        hit = cache.get(rel)
        if hit and hit[:2] == key:
            try:
                manifest.resource = RESOURCE.validate_json(hit[2])
                fresh[rel] = hit
                continue
            except ValidationError:
                pass  # the models changed since: read the YAML again
        catalog.problems += _read_manifest(manifest, st.st_size)
        if manifest.resource is not None and cache_file is not None:
            fresh[rel] = key + [RESOURCE.dump_json(manifest.resource, exclude_defaults=True).decode()]
    if cache_file is not None and (fresh.keys() != cache.keys() or any(fresh[k] is not cache[k] for k in fresh)):
        write_atomic(cache_file, json.dumps({"format": CACHE_FORMAT, "files": fresh}, separators=(",", ":")))
    return catalog


def _manifest_files(resources: Path) -> Iterator[tuple[str, str, os.stat_result | None, str | None]]:
    """(rel, path, stat, problem) for every file under resources/; hidden ones are skipped."""
    todo = [("", str(resources))]
    while todo:
        prefix, folder = todo.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue  # no resources/ folder yet: an empty catalog
        for entry in entries:
            rel = prefix + entry.name
            if entry.name.startswith("."):
                continue
            if entry.is_symlink():
                yield rel, entry.path, None, "is a symbolic link; manifests must be plain files"
            elif entry.is_dir(follow_symlinks=False):
                todo.append((rel + "/", entry.path))
            elif not entry.is_file(follow_symlinks=False):
                yield rel, entry.path, None, "is not a regular file"
            elif not entry.name.endswith(".yaml"):
                yield rel, entry.path, None, "is not a manifest; manifests are resources/<owner>/<name>.yaml"
            elif not rel.isprintable():
                yield rel, entry.path, None, "file name has characters that are not printable UTF-8"
            else:
                try:
                    yield rel, entry.path, entry.stat(follow_symlinks=False), None
                except OSError as e:
                    yield rel, entry.path, None, f"cannot read: {e.strerror}"


def _read_manifest(manifest: Manifest, size: int) -> list[Problem]:
    """Parse and schema-check one file into ``manifest.resource``; return its problems."""
    if size > MAX_MANIFEST_BYTES:  # refuse before reading a huge file into memory
        return [Problem(manifest.file, "", f"file is {size:,} bytes; a manifest may be at most 256 KiB")]
    try:
        data = manifest.path.read_bytes()
        manifest.resource = parse_manifest(load_yaml(data, manifest.file), manifest.file)
    except ManifestError as e:
        return e.problems
    except OSError as e:
        return [Problem(manifest.file, "", f"cannot read: {e.strerror}")]
    except (RecursionError, MemoryError, ValueError) as e:  # pathological input the reader did not foresee
        return [Problem(manifest.file, "", f"cannot read: {type(e).__name__}: {e}")]
    return []


def _load_cache(cache_file: Path | None) -> dict[str, list]:
    if cache_file is None:
        return {}
    try:
        data = json.loads(cache_file.read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT or not isinstance(data.get("files"), dict):
        return {}
    return {k: v for k, v in data["files"].items() if isinstance(v, list) and len(v) == 3 and isinstance(v[2], str)}


def _printable(text: str) -> str:
    """``text`` with control characters and undecodable bytes escaped, safe for one output line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


# ---- the build step's entry point ------------------------------------------------------------


def load_catalog(root: Path, *, allow_local_urls: bool = False, cache_file: Path | None = None) -> dict[str, Resource]:
    """Every resource of the catalog under ``root``, by id, after all offline checks.

    Raises ManifestError with every problem found. With ``cache_file``, unchanged manifests are
    not parsed again (see ``read_catalog``).
    """
    policy = load_policy(root)
    retired = load_retired(root)
    catalog = read_catalog(root, cache_file=cache_file)
    problems = catalog.problems + check_offline(catalog, policy, retired, allow_local_urls=allow_local_urls)
    if problems:
        raise ManifestError(_in_file_order(problems))
    return {m.resource.id: m.resource for m in catalog.manifests}


# ---- the command -----------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one validation found: the manifests checked, the problems, the measured checksums."""

    checked: list[str]
    problems: list[Problem]
    measured: list[Measured] = field(default_factory=list)
    written: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def validate(
    root: Path,
    paths: Iterable[str] = (),
    *,
    base: str | None = None,
    author: str | None = None,
    online: bool = False,
    allow_local_urls: bool = False,
    write_measured: bool = False,
    show_progress: bool = False,
) -> Outcome:
    """Validate the catalog under ``root``; report on ``paths`` only when given (cross-checks
    always see the whole catalog). ``base`` is a git ref to compare with; ``online`` downloads
    new and changed files; ``write_measured`` writes measured checksums into their manifests."""
    base_catalog = read_base(root, base) if base else None
    rules, problems = _rules(root, base_catalog)
    if rules is None:
        return Outcome([], problems)
    policy, retired = rules
    names, wanted, dirs, path_problems = _select(root, list(paths), base_catalog)
    catalog = read_catalog(root, names=names)
    if dirs:
        wanted |= {m.rel for m in catalog.manifests if any(m.rel.startswith(d) for d in dirs)}
    chosen = [m for m in catalog.manifests if wanted is None or m.rel in wanted]
    problems += path_problems + catalog.problems
    problems += check_offline(catalog, policy, retired, allow_local_urls=allow_local_urls)
    if base_catalog is not None:
        problems += check_against_base(catalog, base_catalog, author=author, retired=retired)
    outcome = Outcome([m.file for m in chosen], problems)
    if online:
        checks = files_to_check(chosen, policy, allow_local_urls=allow_local_urls, base=base_catalog)
        found, outcome.measured = check_downloads(checks, show_progress=show_progress)
        outcome.problems += found
        if write_measured and outcome.measured:
            outcome.written = [m.file for m in write_measured_values(outcome.measured)]
    if wanted is not None:
        deleted = {catalog.name(rel) for rel in base_catalog.blobs} - {m.file for m in catalog.manifests} if base_catalog else set()
        shown = {m.file for m in chosen} | {p.file for p in path_problems} | deleted | _rule_files(root)
        shown |= {catalog.name(rel) for rel in wanted}
        outcome.problems = [p for p in outcome.problems if p.file in shown]
    outcome.problems = _in_file_order(outcome.problems)
    return outcome


def _rules(root: Path, base: BaseCatalog | None) -> tuple[tuple[Policy, dict[str, str]] | None, list[Problem]]:
    """The policy and the retired ids. With a base, the policy is the base's (a pull request cannot
    loosen the rules it is judged by) and an id retired at the base or now stays retired."""
    try:
        policy_bytes = base.file("policy.yaml") if base is not None else None
        file = str(root / "policy.yaml")
        policy = parse_policy(policy_bytes, f"{base.ref}:{file}") if policy_bytes is not None else load_policy(root)
        retired = load_retired(root)
        retired_bytes = base.file("retired.yaml") if base is not None else None
        if retired_bytes is not None:
            retired = {**parse_retired(retired_bytes, f"{base.ref}:{root / 'retired.yaml'}"), **retired}
    except ManifestError as e:
        return None, e.problems
    return (policy, retired), []


def _rule_files(root: Path) -> set[str]:
    return {str(root / "policy.yaml"), str(root / "retired.yaml")}


def _select(root: Path, paths: list[str], base: BaseCatalog | None) -> tuple[dict[str, str], set[str] | None, list[str], list[Problem]]:
    """Which manifests the user named: (rel → name as given, the rels, folders, problems)."""
    if not paths:
        return {}, None, [], []
    resources = os.path.abspath(root / "resources")
    names: dict[str, str] = {}
    wanted: set[str] = set()
    dirs: list[str] = []
    problems = []
    for given in paths:
        rel = os.path.relpath(os.path.abspath(given), resources)
        if rel == "." or rel.startswith(".."):
            if os.path.isdir(given) and rel == ".":
                dirs.append("")
            else:
                problems.append(Problem(_printable(given), "", f"is not in {root / 'resources'}; manifests live at {root / 'resources'}/<owner>/<name>.yaml"))
            continue
        rel = Path(rel).as_posix()
        if os.path.isdir(given):
            dirs.append(rel + "/")
        elif os.path.lexists(given) or (base is not None and rel in base.blobs):
            names[rel] = _printable(given)
            wanted.add(rel)
        else:
            problems.append(Problem(_printable(given), "", "no such file"))
    return names, wanted, dirs, problems


def _in_file_order(problems: list[Problem]) -> list[Problem]:
    """Problems grouped by file (in path order), each once, in the order found within a file."""
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: p.file)


# ---- reports ---------------------------------------------------------------------------------


def render_text(outcome: Outcome) -> str:
    """One line per problem, ``file: field: message``; or ``N manifests OK``."""
    if outcome.ok:
        return f"{_count(len(outcome.checked), 'manifest')} OK"
    return "\n".join(_printable(str(p)) for p in outcome.problems)


def render_json(outcome: Outcome) -> str:
    return json.dumps(
        {
            "ok": outcome.ok,
            "checked": len(outcome.checked),
            "problems": [{"file": p.file, "field": p.field, "message": p.message} for p in outcome.problems],
            "measured": [{"file": m.manifest.file, "field": m.where, "sha256": m.sha256, "size": m.size} for m in outcome.measured],
            "written": outcome.written,
        },
        indent=2,
        ensure_ascii=False,
    )


MAX_REPORT_ROWS = 300


def render_markdown(outcome: Outcome) -> str:
    """A summary for the pull request comment; everything from the manifests is escaped."""
    lines = ["## Catalog validation", ""]
    if outcome.ok:
        lines.append(f"✅ {_count(len(outcome.checked), 'manifest')} OK.")
    else:
        files = len({p.file for p in outcome.problems})
        lines += [
            f"❌ {_count(len(outcome.problems), 'problem')} in {_count(files, 'file')} "
            f"({_count(len(outcome.checked), 'manifest')} checked).",
            "",
            "| File | Field | Problem |",
            "| --- | --- | --- |",
        ]
        lines += [f"| {_md_code(p.file)} | {_md_code(p.field)} | {_md_text(p.message)} |" for p in outcome.problems[:MAX_REPORT_ROWS]]
        if len(outcome.problems) > MAX_REPORT_ROWS:
            lines += ["", f"…and {len(outcome.problems) - MAX_REPORT_ROWS} more; see the workflow log."]
    if outcome.measured:
        lines += ["", "Measured (files that left out sha256 and size):", "", "| File | Field | sha256 | Size |", "| --- | --- | --- | --- |"]
        lines += [f"| {_md_code(m.manifest.file)} | {_md_code(m.where)} | `{m.sha256}` | {m.size:,} |" for m in outcome.measured[:MAX_REPORT_ROWS]]
    return "\n".join(lines) + "\n"


def _md_code(text: str) -> str:
    return f"`{_printable(text).replace('`', chr(39)).replace('|', '¦')}`" if text else ""


def _md_text(text: str) -> str:
    text = " ".join(_printable(text).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = re.sub(r"([\\`*_\[\]#|!~])", r"\\\1", text)
    return text.replace("@", "@\u200b")  # no @mentions from manifest content


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


RENDERERS = {"text": render_text, "markdown": render_markdown, "json": render_json}


@click.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option("--root", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("registry_index"),
              show_default=True, help="The registry folder (policy.yaml, retired.yaml, resources/).")
@click.option("--base", metavar="GIT_REF", help="Compare with this git ref: published versions must not change.")
@click.option("--author", metavar="LOGIN", help="GitHub login of the change's author (needs --base).")
@click.option("--online", is_flag=True, help="Download new and changed files; check their size and sha256.")
@click.option("--allow-local-urls", is_flag=True, help="Accept local_sources URLs (local mirrors, tests).")
@click.option("--write-measured", is_flag=True, help="With --online: write measured sha256/size into manifests that left them out.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), help="Also write a markdown summary here.")
@click.option("--format", "output_format", type=click.Choice(sorted(RENDERERS)), default="text", show_default=True)
@click.pass_context
def validate_command(
    ctx: click.Context,
    paths: tuple[str, ...],
    root: Path,
    base: str | None,
    author: str | None,
    online: bool,
    allow_local_urls: bool,
    write_measured: bool,
    report: Path | None,
    output_format: str,
) -> None:
    """Check manifests against the catalog's rules (all of them, or PATHS).

    Cross-checks (unique ids, requires, licenses) always use the whole catalog under --root.
    """
    if author and not base:
        raise click.UsageError("--author needs --base (authorship is judged against the base's maintainers)")
    if write_measured and not online:
        raise click.UsageError("--write-measured needs --online")
    outcome = validate(
        root, paths, base=base, author=author, online=online, allow_local_urls=allow_local_urls,
        write_measured=write_measured, show_progress=True,
    )
    if report is not None:
        write_atomic(report, render_markdown(outcome))
    click.echo(RENDERERS[output_format](outcome))
    if outcome.written:
        click.echo(f"wrote measured sha256 and size into {_count(len(outcome.written), 'manifest')}", err=True)
    if not outcome.ok:
        if output_format == "text":
            click.echo(f"{_count(len(outcome.problems), 'problem')} found", err=True)
        ctx.exit(exit_status(ManifestError(outcome.problems)))
