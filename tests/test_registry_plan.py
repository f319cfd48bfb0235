"""registry.json and install plans: atomic, rebuilt when lost, versions side by side, dependencies."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from conftest import make_manifest
from zishu.catalog import RESOURCE, Resource, parse_manifest
from zishu.errors import InstallPlanError, NotEnoughSpace, ResourceNotAvailable
from zishu.resources.plan import make_plan, parse_request
from zishu.resources.versions import MANIFEST, VersionStore


class DictCatalog:
    """A catalog held in memory: enough for planning (the HTTP client has its own tests)."""

    def __init__(self, *manifests: dict) -> None:
        self.resources = {m["id"]: parse_manifest(m, m["id"]) for m in manifests}

    def resource(self, id: str) -> Resource:
        from zishu.errors import InstallPlanError

        if id not in self.resources:
            raise InstallPlanError(f"unknown resource {id}")
        return self.resources[id]


def versions(*specs: tuple[str, list[dict]]) -> list[dict]:
    return [
        {"version": v, "released": "2026-01-01", "files": [], "requires": reqs} for v, reqs in specs
    ]


def put_installed(registry: VersionStore, resource: Resource, version: str) -> Path:
    folder = registry.version_dir(resource.id, version)
    folder.mkdir(parents=True)
    (folder / MANIFEST).write_bytes(RESOURCE.dump_json(resource))
    registry.record(resource.id, version, kind=resource.kind, files={})
    return folder


def test_path_raises_model_not_available_at_once(tmp_path: Path):
    registry = VersionStore(tmp_path)
    with pytest.raises(ResourceNotAvailable) as err:
        registry.path("alice/missing")
    assert err.value.code == "MODEL_NOT_AVAILABLE"
    assert "zishu install alice/missing" in str(err.value)


def test_versions_side_by_side_and_highest_by_default(tmp_path: Path):
    registry = VersionStore(tmp_path)
    res = parse_manifest(
        make_manifest("alice/model", versions=versions(("1.0.0", []), ("1.10.0", []), ("1.2.0", []))), "x"
    )
    for v in ("1.0.0", "1.10.0", "1.2.0"):
        put_installed(registry, res, v)
    assert registry.versions("alice/model") == ["1.10.0", "1.2.0", "1.0.0"]
    assert registry.path("alice/model") == tmp_path / "resources/alice/model/1.10.0"
    assert registry.path("alice/model", "1.0.0") == tmp_path / "resources/alice/model/1.0.0"
    with pytest.raises(ResourceNotAvailable):
        registry.path("alice/model", "2.0.0")


def test_registry_rebuilt_when_deleted_or_corrupt(tmp_path: Path):
    registry = VersionStore(tmp_path)
    res = parse_manifest(make_manifest("alice/model"), "x")
    put_installed(registry, res, "1.0.0")
    registry.record("alice/model", "1.0.0", kind="model", files={"model.bin": {"sha256": "0" * 64, "size": 1}},
                    extra={"note": "kept"})
    registry.file.unlink()
    assert registry.path("alice/model") == tmp_path / "resources/alice/model/1.0.0"
    assert json.loads(registry.file.read_text())["resources"]["alice/model"]["1.0.0"]["status"] == "ready"
    registry.file.write_text('{"format": 1, "resources": {"alice/mo')  # half-written by something else
    assert registry.versions("alice/model") == ["1.0.0"]


@pytest.mark.parametrize("resources", [
    {"alice/model": []},
    {"alice/model": {"1.0.0": "ready"}},
    {"alice/model": {"one": {"kind": "model", "files": {}}}},
    {"alice/model": {"1.0.0": {"kind": None, "files": {}}}},
    {"alice/model": {"1.0.0": {"kind": "model", "files": []}}},
    {"alice/model": {"1.0.0": {"kind": "model", "files": {"model.bin": {"size": "1"}}}}},
    {"alice/model": {"1.0.0": {"kind": "model", "files": {}, "extra": None, "size_bytes": "big"}}},
    {"Not An Id": {}},
    {},  # parses and has the right types: an empty registry.json is trusted (nothing installed)
])
def test_a_registry_json_with_wrong_types_is_rebuilt_from_the_folders(tmp_path: Path, resources: dict):
    registry = VersionStore(tmp_path)
    put_installed(registry, parse_manifest(make_manifest("alice/model"), "x"), "1.0.0")
    registry.file.write_text(json.dumps({"format": 1, "resources": resources}))
    if resources == {}:
        assert registry.versions("alice/model") == []
        return
    assert registry.versions("alice/model") == ["1.0.0"]
    assert registry.path("alice/model") == tmp_path / "resources/alice/model/1.0.0"
    assert registry.load()["alice/model"]["1.0.0"]["kind"] == "model"
    assert json.loads(registry.file.read_text())["resources"]["alice/model"]["1.0.0"]["kind"] == "model"


def test_half_installed_folder_is_not_installed(tmp_path: Path):
    registry = VersionStore(tmp_path)
    (tmp_path / "resources/alice/model/1.0.0").mkdir(parents=True)  # no manifest.json: a crash mid-install
    assert registry.versions("alice/model") == []


def test_concurrent_records_keep_every_entry(tmp_path: Path):
    registry = VersionStore(tmp_path)

    def record(i: int) -> None:
        VersionStore(tmp_path).record(f"alice/m{i}", "1.0.0", kind="model", files={})

    threads = [threading.Thread(target=record, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(registry.load()) == 20
    json.loads(registry.file.read_text())  # whole and valid


def test_three_levels_of_requires_resolve_dependencies_first(tmp_path: Path):
    catalog = DictCatalog(
        make_manifest("a/top", versions=versions(("1.0.0", [{"id": "a/mid", "version": ">=1.0.0"}]))),
        make_manifest("a/mid", versions=versions(("1.0.0", [{"id": "a/base", "version": ">=2,<3"}]))),
        make_manifest("a/base", versions=versions(("1.5.0", []), ("2.1.0", []), ("2.4.0", []), ("3.0.0", []))),
    )
    plan = make_plan(catalog, ["a/top"], VersionStore(tmp_path))
    assert [(s.id, s.version.version) for s in plan.steps] == [
        ("a/base", "2.4.0"), ("a/mid", "1.0.0"), ("a/top", "1.0.0"),
    ]
    assert [s.id for s in make_plan(catalog, ["a/top"], VersionStore(tmp_path), with_deps=False).steps] == ["a/top"]


def test_missing_dependency_fails_naming_who_needs_it(tmp_path: Path):
    catalog = DictCatalog(make_manifest("a/top", versions=versions(("1.0.0", [{"id": "a/gone", "version": "*"}]))))
    with pytest.raises(InstallPlanError) as err:
        make_plan(catalog, ["a/top"], VersionStore(tmp_path))
    assert "a/gone" in str(err.value) and "a/top@1.0.0" in str(err.value)


def test_conflicting_ranges_are_reported(tmp_path: Path):
    catalog = DictCatalog(
        make_manifest("a/one", versions=versions(("1.0.0", [{"id": "a/base", "version": "<2"}]))),
        make_manifest("a/two", versions=versions(("1.0.0", [{"id": "a/base", "version": ">=2"}]))),
        make_manifest("a/base", versions=versions(("1.0.0", []), ("2.0.0", []))),
    )
    with pytest.raises(InstallPlanError) as err:
        make_plan(catalog, ["a/one", "a/two"], VersionStore(tmp_path))
    assert "a/one@1.0.0 (<2)" in str(err.value) and "a/two@1.0.0 (>=2)" in str(err.value)


def test_requests_pick_versions_and_ranges(tmp_path: Path):
    assert parse_request("Alice/Model@1.2.0") == ("alice/model", "==1.2.0")
    assert parse_request("alice/model@>=1,<2") == ("alice/model", ">=1,<2")
    catalog = DictCatalog(make_manifest("a/base", versions=versions(("1.0.0", []), ("2.0.0", []), ("2.1.0-rc.1", []))))
    assert make_plan(catalog, ["a/base"], VersionStore(tmp_path)).steps[0].version.version == "2.0.0"
    assert make_plan(catalog, ["a/base@1.0.0"], VersionStore(tmp_path)).steps[0].version.version == "1.0.0"


def test_installed_versions_are_preferred_and_not_downloaded(tmp_path: Path):
    registry = VersionStore(tmp_path)
    catalog = DictCatalog(make_manifest("a/base", versions=versions(("1.0.0", []), ("2.0.0", []))))
    put_installed(registry, catalog.resources["a/base"], "1.0.0")
    plan = make_plan(catalog, ["a/base@<3"], registry)
    assert plan.steps[0].version.version == "1.0.0" and plan.steps[0].installed
    assert plan.download_size == 0


def test_plan_checks_free_space_first(tmp_path: Path):
    big = make_manifest("a/huge")
    big["versions"][0]["files"][0]["size"] = 10**18
    plan = make_plan(DictCatalog(big), ["a/huge"], VersionStore(tmp_path))
    with pytest.raises(NotEnoughSpace) as err:
        plan.check_space(tmp_path)
    assert "1,000,000,000,000,000,000 bytes" in str(err.value)
