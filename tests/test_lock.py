"""requirements.lock is what a fresh machine installs (``make setup``): it must pin, with ``==``, every
package pyproject.toml asks for (the base dependencies and the extras ``dev`` pulls in), each at a
version its range allows, with the torch and torchvision that import together here. A range changed
without ``make lock`` fails here."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def locked() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==([^\s;]+)", line)
        if match:
            pins[canonicalize_name(match.group(1))] = Version(match.group(2))
    return pins


def wanted() -> list[Requirement]:
    """The requirements of zishu[dev] on this platform, following zishu[...] into other extras."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras, seen, found = ["dev"], set(), [Requirement(r) for r in project["dependencies"]]
    while extras:
        extra = extras.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in project["optional-dependencies"][extra]:
            requirement = Requirement(text)
            if canonicalize_name(requirement.name) == "zishu":
                extras.extend(requirement.extras)
            else:
                found.append(requirement)
    environment = default_environment()
    return [r for r in found if r.marker is None or r.marker.evaluate({**environment, "extra": ""})]


def test_the_lock_pins_every_requirement_at_a_version_its_range_allows():
    pins = locked()
    assert len(pins) > 100  # the whole tree, not only the direct requirements
    for requirement in wanted():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is in pyproject.toml but not in requirements.lock: run make lock"
        version = pins[name]
        allowed = requirement.specifier.contains(Version(version.base_version), prereleases=True)
        assert allowed, f"requirements.lock pins {name}=={version}, outside {requirement}: run make lock"


def test_the_lock_takes_torch_and_torchvision_that_import_together_and_spandrel():
    pins = locked()
    # spandrel imports torchvision; 2.14.1 with 0.29.1 is the pair pip installs from this machine's disk
    assert (str(pins["torch"]), str(pins["torchvision"])) == ("2.14.1", "0.29.1")
    assert "spandrel" in pins


def test_make_setup_installs_only_what_is_pinned():
    """Every ``pip install`` in the Makefile takes the lock without resolving (``--no-deps``), the
    project itself without dependencies, or one tool pinned with ``==``: nothing floats on a new machine."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    pins = dict(re.findall(r"^(\w+)\s*:=\s*(\S+==\S+)$", makefile, re.M))
    installs = re.findall(r"pip install (.+)$", makefile, re.M)
    assert installs
    for line in installs:
        taken = line.replace("-q", "").split()
        if "-r" in taken:
            assert "--no-deps" in taken and taken[taken.index("-r") + 1] == "$(LOCK)", line
        elif "-e" in taken:
            assert "--no-deps" in taken, line
        else:
            assert len(taken) == 1 and taken[0].strip("'")[2:-1] in pins, f"{line}: not one pinned tool ({pins})"
    assert re.search(r"^LOCK\s*:=\s*requirements.lock$", makefile, re.M)
