"""Install plans: resolve ``id[@version-or-range]`` and everything it requires, before any byte moves.

The plan lists each resource version to install (dependencies first), what is already installed,
and the bytes still to download; a missing dependency, a range nothing satisfies or two ranges
that exclude each other are reported here, with who asked for what, and nothing is downloaded.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import semver
from packaging.specifiers import SpecifierSet

from zishu.catalog import Resource, Version
from zishu.errors import InstallPlanError, NotEnoughSpace, ZishuError
from zishu.ids import split_request
from zishu.sizes import byte_size


class Catalog(Protocol):
    def resource(self, id: str) -> Resource: ...


class Installed(Protocol):
    """What is installed already (a ``VersionStore``; the catalog site passes one with nothing)."""

    def versions(self, rid: str) -> list[str]: ...


class NothingInstalled:
    """A machine with nothing installed: the plan of a fresh install (the catalog site's view)."""

    def versions(self, rid: str) -> list[str]:
        return []


@dataclass
class Step:
    resource: Resource
    version: Version
    installed: bool
    wanted_by: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.resource.id

    @property
    def download_size(self) -> int:
        return 0 if self.installed else self.version.total_size


@dataclass
class InstallPlan:
    steps: list[Step]

    @property
    def to_install(self) -> list[Step]:
        return [s for s in self.steps if not s.installed]

    @property
    def download_size(self) -> int:
        """The known bytes still to download (see ``size_exact``)."""
        return sum(s.download_size for s in self.steps)

    @property
    def size_exact(self) -> bool:
        """Whether every file still to download has a known size."""
        return all(s.version.size_exact for s in self.to_install)

    def check_space(self, where: Path, margin: int = 256 * 1024 * 1024) -> None:
        """Refuse before downloading when the disk holding ``where`` lacks room (plus a margin)."""
        where.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(where).free
        if self.download_size + margin > free:
            raise NotEnoughSpace(
                f"the install needs {byte_size(self.download_size)} ({self.download_size:,} bytes) plus "
                f"{byte_size(margin)} to spare, but {where} has {byte_size(free)} free"
            )


def parse_request(text: str) -> tuple[str, str]:
    """'owner/name', 'owner/name@1.2.0' or 'owner/name@>=1,<2' → (id, range)."""
    rid, wanted = split_request(text)
    if wanted and semver.Version.is_valid(wanted):
        wanted = f"=={wanted}"
    return rid, wanted or "*"


def _admits(ranges: list[str], version: str) -> bool:
    return all(r == "*" or SpecifierSet(r).contains(version, prereleases=True) for r in ranges)


def _best(resource: Resource, ranges: list[str], installed: list[str]) -> Version | None:
    """An installed version that fits, else the highest that fits (stable before pre-release)."""
    fitting = [v for v in resource.versions if _admits(ranges, v.version)]
    for v in fitting:
        if v.version in installed:
            return v
    if not fitting:
        return None
    parsed = sorted(((semver.Version.parse(v.version), v) for v in fitting), key=lambda p: p[0], reverse=True)
    stable = [p for p in parsed if not p[0].prerelease]
    return (stable or parsed)[0][1]


def make_plan(catalog: Catalog, requests: list[str], registry: Installed, *, with_deps: bool = True) -> InstallPlan:
    """Resolve ``requests`` (and, unless ``with_deps`` is False, their requirements transitively)."""
    ranges: dict[str, list[str]] = {}
    wanted_by: dict[str, list[str]] = {}
    chosen: dict[str, Version] = {}
    resources: dict[str, Resource] = {}
    order: list[str] = []
    queue = [(rid, wanted, "you") for rid, wanted in map(parse_request, requests)]
    visiting: set[str] = set()

    def fetch(rid: str, asker: str) -> Resource:
        if rid not in resources:
            try:
                resources[rid] = catalog.resource(rid)
            except ZishuError as e:
                raise InstallPlanError(f"{rid} (required by {asker}) cannot be installed: {e}") from None
        return resources[rid]

    def visit(rid: str, wanted: str, asker: str) -> None:
        res = fetch(rid, asker)
        ranges.setdefault(rid, []).append(wanted)
        wanted_by.setdefault(rid, []).append(f"{asker} ({wanted})")
        version = _best(res, ranges[rid], registry.versions(rid))
        if version is None:
            raise InstallPlanError(
                f"no version of {rid} satisfies every request: {'; '.join(wanted_by[rid])}; "
                f"available: {', '.join(v.version for v in res.versions)}"
            )
        if chosen.get(rid) is version:
            return
        if rid in visiting:
            raise InstallPlanError(f"{rid} requires itself through its dependencies")
        chosen[rid] = version
        visiting.add(rid)
        if with_deps:
            for req in version.requires:
                visit(req.id, req.version, f"{rid}@{version.version}")
        visiting.discard(rid)

    for rid, wanted, asker in queue:
        visit(rid, wanted, asker)

    def place(rid: str) -> None:  # dependencies first
        if rid in order:
            return
        if with_deps:
            for req in chosen[rid].requires:
                place(req.id)
        order.append(rid)

    for rid in chosen:
        place(rid)
    steps = [
        Step(resources[rid], chosen[rid], chosen[rid].version in registry.versions(rid), wanted_by[rid])
        for rid in order
    ]
    return InstallPlan(steps)
