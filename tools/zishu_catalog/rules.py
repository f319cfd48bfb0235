"""The catalog's rules that need neither git nor the network, as functions from manifests to Problems.

One manifest (``check_manifest``): its id equals its path; every file URL and mirror is on a source
that ``policy.yaml`` allows, within that source's size limit, with sha256 and size (which only a hub
file pinned to a commit may leave out, and then both). The whole catalog (``check_catalog``): ids
are unique (ignoring case) and never retired; every ``requires`` names a resource with a version in
range; there are no dependency cycles (the problem names the whole cycle); a character's spec
names resources of the right kind; and a character whose license allows commercial use does not
depend, through the versions its requirements resolve to, on a non-commercial resource.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from functools import cache

import semver

from zishu.catalog.manifest import FileEntry, Requirement, Resource, Version
from zishu.errors import Problem
from zishu.ids import is_id

from .catalog import Catalog, ValidManifest
from .policy import Policy, Source, file_urls


def check_offline(
    catalog: Catalog, policy: Policy, retired: dict[str, str], *, allow_local_urls: bool = False
) -> list[Problem]:
    """Every check that needs neither git nor the network: each manifest, then the catalog as a whole."""
    problems: list[Problem] = []
    for m in catalog.valid:
        problems += check_manifest(m, policy, allow_local_urls=allow_local_urls)
    return problems + check_catalog(catalog, policy, retired)


def check_manifest(manifest: ValidManifest, policy: Policy, *, allow_local_urls: bool = False) -> list[Problem]:
    """The rules one valid manifest must follow beyond its schema: id = path, file URLs and checksums."""
    return check_id_matches_path(manifest) + check_file_urls(manifest, policy, allow_local_urls=allow_local_urls)


def check_id_matches_path(manifest: ValidManifest) -> list[Problem]:
    """The id is the path: ``resources/alice/example.yaml`` holds ``alice/example``."""
    rid = manifest.resource.id
    if rid == manifest.expected_id:
        return []
    fix = f"move the file to resources/{rid}.yaml"
    if is_id(manifest.expected_id):
        fix = f"set id: {manifest.expected_id} or {fix}"
    return [Problem(manifest.file, "id", f"id {rid!r} does not match the file's path resources/{manifest.rel}; {fix}")]


def check_file_urls(manifest: ValidManifest, policy: Policy, *, allow_local_urls: bool = False) -> list[Problem]:
    """Each file URL and mirror is on an allowed source, within its size limit, with checksums."""
    problems: list[Problem] = []
    for i, version in enumerate(manifest.resource.versions):
        for j, entry in enumerate(version.files):
            where = f"versions[{i}].files[{j}]"
            sources: list[tuple[str, Source]] = []
            for fld, url in file_urls(entry, where):
                found = policy.url_source(url, allow_local=allow_local_urls)
                if found[0] is None:
                    problems.append(Problem(manifest.file, fld, found[1]))
                else:
                    sources.append((url, found[0]))
            problems += _size_limits(manifest.file, where, entry, sources)
            problems += _checksums(manifest.file, where, entry, sources)
    return problems


def _size_limits(file: str, where: str, entry: FileEntry, sources: list[tuple[str, Source]]) -> list[Problem]:
    """The declared size fits every source serving the file (2 GiB on GitHub Releases)."""
    for _, source in sources:
        if entry.size is not None and source.max_size is not None and entry.size > source.max_size:
            return [Problem(file, f"{where}.size", (
                f"{entry.size:,} bytes is more than {source.name} allows for one file ({source.max_size:,} bytes)"
            ))]
    return []


def _checksums(file: str, where: str, entry: FileEntry, sources: list[tuple[str, Source]]) -> list[Problem]:
    """sha256 and size come together; both may be left out only where every URL is hub-pinned to a commit."""
    has_sha, has_size = entry.sha256 is not None, entry.size is not None
    if has_sha and has_size:
        return []
    if has_sha != has_size:
        missing = "size" if has_sha else "sha256"
        return [Problem(file, f"{where}.{missing}", (
            "sha256 and size go together: give both (or, for a hub file pinned to a commit, neither)"
        ))]
    for url, source in sources:
        if source.pinned_commit(url):
            continue
        if source.hub:
            why = f"this {source.name} URL is pinned to {source.revision(url)!r}, not to a full 40-character commit"
        else:
            why = f"{source.name} does not publish checksums"
        return [Problem(file, f"{where}.sha256", (
            f"sha256 and size are missing; they may be left out only for a hub file pinned to a commit, and {why}"
        ))]
    return []


def check_catalog(catalog: Catalog, policy: Policy, retired: dict[str, str]) -> list[Problem]:
    """The rules that need the whole catalog: unique, unretired ids; dependencies; licenses."""
    by_id = catalog.by_id()
    return (
        check_unique_ids(catalog.valid)
        + check_retired_ids(catalog.valid, retired)
        + check_requires(catalog, by_id)
        + check_cycles(catalog.valid, by_id)
        + check_spec_references(catalog.valid, by_id)
        + check_licenses(catalog.valid, by_id, policy)
    )


def check_unique_ids(manifests: list[ValidManifest]) -> list[Problem]:
    """No two manifests claim the same id, even in another letter case; each one names the others."""
    groups: dict[str, list[ValidManifest]] = defaultdict(list)
    for m in manifests:
        groups[m.resource.id.casefold()].append(m)
    problems = []
    for group in groups.values():
        for m in group if len(group) > 1 else ():
            others = ", ".join(o.file for o in group if o is not m)
            problems.append(Problem(m.file, "id", (
                f"id {m.resource.id!r} is also used by {others}; ids must be unique (ignoring case)"
            )))
    return problems


def check_retired_ids(manifests: list[ValidManifest], retired: dict[str, str]) -> list[Problem]:
    """A retired id is never used again (its old installs and links would point at the newcomer)."""
    return [
        Problem(m.file, "id", (
            f"id {m.resource.id!r} was retired ({retired[m.resource.id.lower()]}) and may never be used again; "
            "choose another name"
        ))
        for m in manifests
        if m.resource.id.lower() in retired
    ]


def check_requires(catalog: Catalog, by_id: dict[str, ValidManifest]) -> list[Problem]:
    """Every requirement names a resource of the catalog with at least one version in range."""
    broken = {m.expected_id for m in catalog.manifests if m.resource is None}
    problems = []
    for m in catalog.valid:
        for where, req in _requirements(m.resource):
            target = by_id.get(req.id)
            if target is None:
                why = "whose manifest has problems" if req.id in broken else "which is not in the catalog"
                problems.append(Problem(m.file, f"{where}.id", f"requires {req.id}, {why}"))
            elif latest_admitted(target.resource, req) is None:
                have = ", ".join(v.version for v in target.resource.versions[:10])
                problems.append(Problem(m.file, f"{where}.version", (
                    f"no version of {req.id} is in range {req.version!r} (it has {have})"
                )))
    return problems


def _requirements(resource: Resource) -> Iterator[tuple[str, Requirement]]:
    for i, version in enumerate(resource.versions):
        for k, req in enumerate(version.requires):
            yield f"versions[{i}].requires[{k}]", req


@cache
def _semver(version: str) -> semver.Version:
    return semver.Version.parse(version)


def latest_admitted(resource: Resource, req: Requirement) -> Version | None:
    """The version of ``resource`` an installer would pick for ``req``: the highest admitted,
    stable ones first (as ``ResourceBase.latest``)."""
    admitted = [v for v in resource.versions if req.admits(v.version)]
    stable = [v for v in admitted if not _semver(v.version).prerelease] or admitted
    return max(stable, key=lambda v: _semver(v.version), default=None)


def check_cycles(manifests: list[ValidManifest], by_id: dict[str, ValidManifest]) -> list[Problem]:
    """No resource may depend on itself, directly or through others; name the whole cycle."""
    edges: dict[str, dict[str, str]] = {}  # id → required id → field of the first requirement naming it
    for m in manifests:
        out = edges.setdefault(m.resource.id, {})
        for where, req in _requirements(m.resource):
            if req.id in by_id:
                out.setdefault(req.id, f"{where}.id")
    problems = []
    for component in _strong_components(edges):
        members = set(component)
        for node in sorted(component):
            cycle = _shortest_cycle(node, edges, members)
            if cycle:
                m = by_id[node]
                problems.append(Problem(m.file, edges[node][cycle[1]], "dependency cycle: " + " → ".join(cycle)))
    return problems


def _strong_components(edges: dict[str, dict[str, str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively (10,000 resources must not hit recursion
    limits); only components that contain a cycle are returned."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(edges.get(start, ())))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges.get(child, ()))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1 or node in edges.get(node, ()):
                    found.append(component)
    return found


def _shortest_cycle(start: str, edges: dict[str, dict[str, str]], members: set[str]) -> list[str] | None:
    """The shortest path start → … → start inside one strongly connected component."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in edges.get(node, ()):
                if child == start:
                    back = []  # the path walked backwards: last node before start, ..., first after it
                    while node != start:
                        back.append(node)
                        node = previous[node]
                    return [start, *back[::-1], start]
                if child in members and child not in previous and child != start:
                    previous[child] = node
                    following.append(child)
        frontier = following
    return None


REFERENCES = {  # character spec fields that name other resources, and the kind they must be
    ("voice", "voice"): "voice",
    ("llm", "model"): "model",
    ("llm", "lora"): "lora",
    ("image_style", "lora"): "lora",
    ("avatar", "live2d"): "live2d",
}


def check_spec_references(manifests: list[ValidManifest], by_id: dict[str, ValidManifest]) -> list[Problem]:
    """A character's spec names resources (its model, voice, avatar, LoRAs) that exist, of the right kind."""
    problems = []
    for m in manifests:
        if m.resource.kind != "character":
            continue
        for (block, name), kind in REFERENCES.items():
            section = getattr(m.resource.spec, block)
            ref = getattr(section, name, None) if section is not None else None
            if ref is None:
                continue
            target = by_id.get(ref)
            if target is None:
                problems.append(Problem(m.file, f"spec.{block}.{name}", f"names {ref}, which is not in the catalog"))
            elif target.resource.kind != kind:
                problems.append(Problem(m.file, f"spec.{block}.{name}", (
                    f"names {ref}, which is a {target.resource.kind}, not a {kind}"
                )))
    return problems


def check_licenses(manifests: list[ValidManifest], by_id: dict[str, ValidManifest], policy: Policy) -> list[Problem]:
    """A character whose license allows commercial use may not depend, through the versions its
    requirements resolve to, on a resource whose license forbids commercial use."""
    problems = []
    for m in manifests:
        resource = m.resource
        if resource.kind != "character" or policy.forbids_commercial_use(resource.license):
            continue
        for where, req in _requirements(resource):
            for chain, dep in _non_commercial_dependencies(req, by_id, policy):
                via = f" (through {' → '.join(chain)})" if len(chain) > 1 else ""
                problems.append(Problem(m.file, f"{where}.id", (
                    f"this character's license {resource.license} allows commercial use, but it requires "
                    f"{chain[-1]}{via}, licensed {dep.license}, which forbids commercial use; "
                    "choose a non-commercial license or another dependency"
                )))
    return problems


def _non_commercial_dependencies(
    req: Requirement, by_id: dict[str, ValidManifest], policy: Policy
) -> list[tuple[list[str], Resource]]:
    """(chain of "id version", resource) for each non-commercial resource reached from ``req``;
    the walk stops at the first non-commercial resource on each path."""
    found = []
    seen: set[tuple[str, str]] = set()
    todo: list[tuple[Requirement, list[str]]] = [(req, [])]
    while todo:
        req, chain = todo.pop()
        target = by_id.get(req.id)
        version = latest_admitted(target.resource, req) if target else None
        if target is None or version is None or (req.id, version.version) in seen:
            continue
        seen.add((req.id, version.version))
        here = [*chain, f"{req.id} {version.version}"]
        if policy.forbids_commercial_use(target.resource.license):
            found.append((here, target.resource))
            continue
        todo += [(r, here) for r in reversed(version.requires)]
    return found
