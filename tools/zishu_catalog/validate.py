"""``zishu catalog validate``: every rule a manifest must follow before it joins the catalog.

This module runs the checks and is the command; each part lives beside it:

- ``catalog`` — the manifest files and their types (``Catalog``, ``Manifest``), read and
  schema-checked, with an optional cache so that a rebuild parses only the YAML that changed;
- ``policy`` — policy.yaml and retired.yaml;
- ``rules`` — offline checks: id = path, unique and unretired ids, allowed file URLs with
  checksums, requires that resolve without cycles, license compatibility;
- ``published`` — against a git base: published versions never change, only maintainers change;
- ``online`` — downloads new and changed files, verifies or measures them;
- ``report`` — the ``Outcome`` and its text, markdown and JSON renderings.

``load_catalog`` is what the build step calls; ``validate`` runs every check and
``validate_command`` reports the outcome. Every failure is a ``Problem(file, field, message)``;
nothing a pull request contains may crash it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import click

from zishu.catalog.manifest import Resource
from zishu.errors import ManifestError, Problem, exit_status
from zishu.files import write_atomic

from .catalog import printable, read_catalog
from .online import check_downloads, files_to_check
from .online import write_measured as write_measured_values
from .policy import Policy, load_policy, load_retired, parse_policy, parse_retired
from .published import BaseCatalog, check_against_base, read_base
from .report import RENDERERS, Outcome, count, in_file_order, render_markdown
from .rules import check_offline

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
        raise ManifestError(in_file_order(problems))
    return {m.resource.id: m.resource for m in catalog.valid}  # every manifest, as there were no problems


# ---- running every check ---------------------------------------------------------------------


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
        assert wanted is not None  # folders come only from named paths, and then files are wanted too
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
        deleted: set[str] = set()
        if base_catalog is not None:
            deleted = {catalog.name(rel) for rel in base_catalog.blobs} - {m.file for m in catalog.manifests}
        shown = {m.file for m in chosen} | {p.file for p in path_problems} | deleted | _rule_files(root)
        shown |= {catalog.name(rel) for rel in wanted}
        outcome.problems = [p for p in outcome.problems if p.file in shown]
    outcome.problems = in_file_order(outcome.problems)
    return outcome


def _rules(root: Path, base: BaseCatalog | None) -> tuple[tuple[Policy, dict[str, str]] | None, list[Problem]]:
    """The policy and the retired ids. With a base, the policy is the base's (a pull request cannot
    loosen the rules it is judged by) and an id retired at the base or now stays retired."""
    try:
        policy_bytes = base.file("policy.yaml") if base is not None else None
        if base is not None and policy_bytes is not None:
            policy = parse_policy(policy_bytes, f"{base.ref}:{root / 'policy.yaml'}")
        else:
            policy = load_policy(root)
        retired = load_retired(root)
        retired_bytes = base.file("retired.yaml") if base is not None else None
        if base is not None and retired_bytes is not None:
            retired = {**parse_retired(retired_bytes, f"{base.ref}:{root / 'retired.yaml'}"), **retired}
    except ManifestError as e:
        return None, e.problems
    return (policy, retired), []


def _rule_files(root: Path) -> set[str]:
    return {str(root / "policy.yaml"), str(root / "retired.yaml")}


def _select(
    root: Path, paths: list[str], base: BaseCatalog | None
) -> tuple[dict[str, str], set[str] | None, list[str], list[Problem]]:
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
                resources_dir = root / "resources"
                where = f"is not in {resources_dir}; manifests live at {resources_dir}/<owner>/<name>.yaml"
                problems.append(Problem(printable(given), "", where))
            continue
        rel = Path(rel).as_posix()
        if os.path.isdir(given):
            dirs.append(rel + "/")
        elif os.path.lexists(given) or (base is not None and rel in base.blobs):
            names[rel] = printable(given)
            wanted.add(rel)
        else:
            problems.append(Problem(printable(given), "", "no such file"))
    return names, wanted, dirs, problems


# ---- the command -----------------------------------------------------------------------------


@click.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option("--root", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("registry_index"),
              show_default=True, help="The registry folder (policy.yaml, retired.yaml, resources/).")
@click.option("--base", metavar="GIT_REF", help="Compare with this git ref: published versions must not change.")
@click.option("--author", metavar="LOGIN", help="GitHub login of the change's author (needs --base).")
@click.option("--online", is_flag=True, help="Download new and changed files; check their size and sha256.")
@click.option("--allow-local-urls", is_flag=True, help="Accept local_sources URLs (local mirrors, tests).")
@click.option("--write-measured", is_flag=True,
              help="With --online: write measured sha256/size into manifests that left them out.")
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
        click.echo(f"wrote measured sha256 and size into {count(len(outcome.written), 'manifest')}", err=True)
    if not outcome.ok:
        if output_format == "text":
            click.echo(f"{count(len(outcome.problems), 'problem')} found", err=True)
        ctx.exit(exit_status(ManifestError(outcome.problems)))
