"""``zishu catalog validate`` and ``load_catalog``: every rejection names the file and the field.

Offline rules run on a registry in tmp_path; the checks against a base run in a real git repository
made in the test; online checks download from the real HTTP server of ``file_server`` on 127.0.0.1.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from conftest import make_manifest, write_manifest
from zishu.catalog import read_manifest
from zishu.cli import cli
from zishu.errors import ManifestError, Problem
from zishu_catalog.validate import load_catalog, validate

COMMIT = "0123456789abcdef0123456789abcdef01234567"
HF = "https://huggingface.co/alice/tiny/resolve"


# ---- helpers ---------------------------------------------------------------------------------


def problems(registry: Path, *paths: Path | str, **options) -> list[Problem]:
    return validate(registry, [str(p) for p in paths], **options).problems


def the_problem(found: list[Problem], path: Path | str, field: str, *words: str) -> Problem:
    """The one problem about ``field`` of ``path`` whose message has all ``words``."""
    matches = [p for p in found if p.file == str(path) and p.field == field and all(w in p.message for w in words)]
    assert matches, f"no problem at {path}: {field} with {words}; found:\n" + "\n".join(map(str, found))
    return matches[0]


def write_raw(registry: Path, rel: str, data: bytes | str) -> Path:
    path = registry / "resources" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def with_file(data: dict, **fields) -> dict:
    """``data`` with its first file entry changed (a field set to None is removed)."""
    entry = data["versions"][0]["files"][0]
    entry.update(fields)
    for key in [k for k, v in entry.items() if v is None]:
        del entry[key]
    return data


def run_cli(*args: str):
    return CliRunner().invoke(cli, ["catalog", "validate", *args], catch_exceptions=False)


# ---- a valid catalog -------------------------------------------------------------------------


def test_a_valid_catalog_passes(registry: Path):
    write_manifest(registry, make_manifest("alice/model", "model"))
    write_manifest(registry, make_manifest("alice/voice", "voice"))
    result = run_cli("--root", str(registry))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "2 manifests OK"


def test_the_project_catalog_is_valid():
    root = Path(__file__).resolve().parent.parent / "registry_index"
    assert validate(root).problems == []


# ---- reading: bytes that are not a manifest --------------------------------------------------


def test_malformed_yaml(registry: Path):
    path = write_raw(registry, "alice/example.yaml", "id: alice/example\nname: [unclosed\n")
    found = problems(registry)
    problem = next(p for p in found if p.file == str(path))
    assert problem.field.startswith("line ") and "invalid YAML" in problem.message


def test_yaml_alias_bomb_is_refused(registry: Path):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
    )
    path = write_raw(registry, "alice/example.yaml", bomb)
    problem = next(p for p in problems(registry) if p.file == str(path))
    assert problem.field.startswith("line 2") and "aliases" in problem.message


def test_deeply_nested_yaml_is_refused_without_crashing(registry: Path):
    # 50,000 levels: the YAML library may refuse them before our own limit, in its own words (PyYAML
    # 6.0.4 does); either way the file is refused with a problem naming it and the line, and the
    # command reports it instead of crashing (CliRunner re-raises any exception)
    path = write_raw(registry, "alice/example.yaml", "a: " + "[" * 50_000 + "]" * 50_000 + "\n")
    found = [p for p in problems(registry) if p.file == str(path)]
    assert len(found) == 1 and found[0].field.startswith("line 1, column "), found
    with pytest.raises(ManifestError):
        load_catalog(registry)
    result = run_cli("--root", str(registry))
    assert result.exit_code == 4 and f"{path}: line 1, column " in result.stdout


def test_yaml_nested_past_the_limit_names_the_limit(registry: Path):
    # deep enough for our limit (100 levels), not for the YAML library's own (1,000 in PyYAML 6.0.4)
    path = write_raw(registry, "alice/example.yaml", "a: " + "[" * 150 + "]" * 150 + "\n")
    the_problem(problems(registry), path, "line 1, column 103", "nested more than 100 levels")


def test_manifest_over_256_kib(registry: Path):
    data = make_manifest(description="x" * 300_000)
    path = write_raw(registry, "alice/example.yaml", yaml.safe_dump(data))
    the_problem(problems(registry), path, "", "at most 256 KiB")


def test_non_utf8_bytes(registry: Path):
    path = write_raw(registry, "alice/example.yaml", b"id: alice/example\nname: caf\xe9\n")
    the_problem(problems(registry), path, "byte 27", "not UTF-8")


def test_duplicate_keys(registry: Path):
    path = write_raw(registry, "alice/example.yaml", yaml.safe_dump(make_manifest()) + "name: Again\n")
    found = [p for p in problems(registry) if p.file == str(path)]
    assert found and "duplicate key 'name'" in found[0].message and found[0].field.startswith("line ")


def test_impossible_date_names_its_line(registry: Path):
    text = yaml.safe_dump(make_manifest()).replace("'2026-01-01'", "2026-13-45")
    path = write_raw(registry, "alice/example.yaml", text)
    found = [p for p in problems(registry) if p.file == str(path)]
    assert found and found[0].field.startswith("line ") and "2026-13-45" in found[0].message


def test_tagged_value_that_cannot_be_built(registry: Path):
    path = write_raw(registry, "alice/example.yaml", yaml.safe_dump(make_manifest()) + "extra: !!bool maybe\n")
    the_problem(problems(registry), path, "", "invalid YAML value")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("maintainers", "alice"),
        ("versions", "1.0.0"),
        ("tags", [["nested"]]),
        ("name", 12),
    ],
)
def test_wrong_types(registry: Path, field: str, value):
    path = write_manifest(registry, make_manifest(**{field: value}))
    found = [p for p in problems(registry) if p.file == str(path)]
    assert found and all(p.field.startswith(field) for p in found), found


def test_wrong_type_deep_in_a_file_entry(registry: Path):
    path = write_manifest(registry, with_file(make_manifest(), size="big"))
    the_problem(problems(registry), path, "versions[0].files[0].size", "integer")


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("../escape.bin", "'..'"),
        ("/etc/passwd", "absolute path"),
        ("C:/Windows/evil.dll", "absolute path"),
        ("models\\evil.bin", "backslash"),
        ("nul\x00byte.bin", "control character"),
        ("escape\x1b[31m.bin", "control character"),
        ("new\nline.bin", "control character"),
    ],
)
def test_path_tricks_in_file_names(registry: Path, name: str, words: str):
    path = write_manifest(registry, with_file(make_manifest(), name=name))
    the_problem(problems(registry), path, "versions[0].files[0].name", words)


def test_symlinked_manifest_is_refused(registry: Path, tmp_path: Path):
    secret = tmp_path / "secret.yaml"
    secret.write_text("token: hunter2\n")
    (registry / "resources" / "alice").mkdir()
    link = registry / "resources" / "alice" / "example.yaml"
    link.symlink_to(secret)
    found = problems(registry)
    the_problem(found, link, "", "symbolic link")
    assert not any("hunter2" in p.message for p in found)


def test_a_file_that_is_not_yaml_is_reported(registry: Path):
    path = write_raw(registry, "alice/example.yml", yaml.safe_dump(make_manifest()))
    the_problem(problems(registry), path, "", "resources/<owner>/<name>.yaml")


# ---- the schema and the id -------------------------------------------------------------------


def test_id_must_equal_the_path(registry: Path):
    data = make_manifest("alice/example")
    path = write_raw(registry, "alice/other.yaml", yaml.safe_dump(data))
    the_problem(problems(registry), path, "id", "resources/alice/other.yaml", "set id: alice/other")


def test_duplicate_id(registry: Path):
    first = write_manifest(registry, make_manifest("alice/example"))
    second = write_raw(registry, "bob/example.yaml", yaml.safe_dump(make_manifest("alice/example")))
    found = problems(registry)
    the_problem(found, second, "id", "also used by", str(first))
    the_problem(found, first, "id", "also used by", str(second))


def test_retired_id_is_never_reused(registry: Path):
    (registry / "retired.yaml").write_text(
        "retired:\n  - id: alice/example\n    reason: removed at the author's request\n"
    )
    path = write_manifest(registry, make_manifest("alice/example"))
    the_problem(problems(registry), path, "id", "retired", "author's request")


def test_retired_id_as_a_plain_string(registry: Path):
    (registry / "retired.yaml").write_text("retired: [alice/example]\n")
    path = write_manifest(registry, make_manifest("alice/example"))
    the_problem(problems(registry), path, "id", "retired")


@pytest.mark.parametrize("version", ["1.0", "v1.0.0", "01.0.0", "latest"])
def test_bad_semver(registry: Path, version: str):
    data = make_manifest()
    data["versions"][0]["version"] = version
    path = write_manifest(registry, data)
    the_problem(problems(registry), path, "versions[0].version", "semantic version")


@pytest.mark.parametrize("license", ["Do-What-I-Say", "MIT AND", "()", "a/b", ""])
def test_bad_spdx_license(registry: Path, license: str):
    path = write_manifest(registry, make_manifest(license=license))
    the_problem(problems(registry), path, "license", "SPDX")


# ---- requires, cycles, licenses --------------------------------------------------------------


def requiring(id: str, *requires: tuple[str, str], kind: str = "model", **fields) -> dict:
    data = make_manifest(id, kind, **fields)
    data["versions"][0]["requires"] = [{"id": r, "version": v} for r, v in requires]
    return data


def with_versions(data: dict, *versions: str) -> dict:
    template = data["versions"][0]
    data["versions"] = [{**copy.deepcopy(template), "version": v} for v in versions]
    return data


def test_unresolved_requires(registry: Path):
    path = write_manifest(registry, requiring("alice/app", ("bob/missing", "*")))
    the_problem(problems(registry), path, "versions[0].requires[0].id", "bob/missing", "not in the catalog")


def test_requires_a_manifest_that_is_broken(registry: Path):
    write_raw(registry, "bob/lib.yaml", "id: [broken\n")
    path = write_manifest(registry, requiring("alice/app", ("bob/lib", "*")))
    the_problem(problems(registry), path, "versions[0].requires[0].id", "bob/lib", "has problems")


def test_required_version_out_of_range(registry: Path):
    write_manifest(registry, with_versions(make_manifest("bob/lib"), "1.0.0", "1.2.0"))
    path = write_manifest(registry, requiring("alice/app", ("bob/lib", ">=2.0.0")))
    the_problem(problems(registry), path, "versions[0].requires[0].version", "bob/lib", ">=2.0.0", "1.0.0, 1.2.0")


def test_required_version_in_range_passes(registry: Path):
    write_manifest(registry, with_versions(make_manifest("bob/lib"), "1.0.0", "1.2.0"))
    write_manifest(registry, requiring("alice/app", ("bob/lib", ">=1.1,<2")))
    assert problems(registry) == []


def test_dependency_cycle_names_the_whole_path(registry: Path):
    a = write_manifest(registry, requiring("alice/a", ("alice/b", "*")))
    b = write_manifest(registry, requiring("alice/b", ("alice/c", "*")))
    c = write_manifest(registry, requiring("alice/c", ("alice/a", "*")))
    found = problems(registry)
    the_problem(found, a, "versions[0].requires[0].id", "alice/a → alice/b → alice/c → alice/a")
    the_problem(found, b, "versions[0].requires[0].id", "alice/b → alice/c → alice/a → alice/b")
    the_problem(found, c, "versions[0].requires[0].id", "cycle")


def test_a_resource_requiring_itself_is_a_cycle(registry: Path):
    path = write_manifest(registry, requiring("alice/a", ("alice/a", "*")))
    the_problem(problems(registry), path, "versions[0].requires[0].id", "alice/a → alice/a")


def character(id: str, license: str, *requires: tuple[str, str]) -> dict:
    data = requiring(id, *requires, kind="character", license=license)
    data["versions"][0]["files"] = []
    return data


def test_commercial_character_may_not_require_a_non_commercial_resource(registry: Path):
    write_manifest(registry, make_manifest("bob/voice", "voice", license="CC-BY-NC-SA-4.0"))
    path = write_manifest(registry, character("alice/hero", "MIT", ("bob/voice", "*")))
    the_problem(problems(registry), path, "versions[0].requires[0].id", "bob/voice", "CC-BY-NC-SA-4.0", "MIT")


def test_non_commercial_dependency_found_through_others(registry: Path):
    write_manifest(registry, make_manifest("carol/model", "model", license="CC-BY-NC-4.0"))
    write_manifest(registry, requiring("bob/lora", ("carol/model", "*"), kind="lora", license="MIT"))
    path = write_manifest(registry, character("alice/hero", "Apache-2.0", ("bob/lora", "*")))
    problem = the_problem(problems(registry), path, "versions[0].requires[0].id", "carol/model", "CC-BY-NC-4.0")
    assert "bob/lora 1.0.0 → carol/model 1.0.0" in problem.message


def test_licence_check_follows_the_latest_admitted_version(registry: Path):
    # bob/lib 1.0.0 is MIT-clean; only 2.0.0 pulls in a non-commercial model.
    write_manifest(registry, make_manifest("carol/model", "model", license="CC-BY-NC-4.0"))
    lib = requiring("bob/lib", ("carol/model", "*"))
    first = copy.deepcopy(lib["versions"][0])
    lib["versions"] = [{**first, "version": "1.0.0", "requires": []}, {**copy.deepcopy(first), "version": "2.0.0"}]
    write_manifest(registry, lib)
    old = write_manifest(registry, character("alice/old", "MIT", ("bob/lib", "<2")))
    new = write_manifest(registry, character("alice/new", "MIT", ("bob/lib", ">=1")))
    found = problems(registry)
    assert not [p for p in found if p.file == str(old)]
    the_problem(found, new, "versions[0].requires[0].id", "carol/model")


def test_non_commercial_character_may_require_non_commercial_resources(registry: Path):
    write_manifest(registry, make_manifest("bob/voice", "voice", license="CC-BY-NC-4.0"))
    write_manifest(registry, character("alice/hero", "CC-BY-NC-SA-4.0", ("bob/voice", "*")))
    assert problems(registry) == []


def test_character_spec_must_name_existing_resources_of_the_right_kind(registry: Path):
    write_manifest(registry, make_manifest("bob/voice", "voice"))
    data = character("alice/hero", "MIT")
    data["spec"]["llm"] = {"model": "bob/voice"}
    data["spec"]["voice"] = {"engine": "espeak-ng", "voice": "bob/nothing"}
    path = write_manifest(registry, data)
    found = problems(registry)
    the_problem(found, path, "spec.llm.model", "bob/voice", "is a voice, not a model")
    the_problem(found, path, "spec.voice.voice", "bob/nothing", "not in the catalog")


# ---- file URLs and checksums -----------------------------------------------------------------


def test_http_url_is_refused(registry: Path):
    data = with_file(make_manifest(), url="http://github.com/alice/example/releases/download/v1/model.bin")
    path = write_manifest(registry, data)
    the_problem(problems(registry), path, "versions[0].files[0].url", "https://")


def test_disallowed_host(registry: Path):
    path = write_manifest(registry, with_file(make_manifest(), url="https://files.example.com/model.bin"))
    the_problem(problems(registry), path, "versions[0].files[0].url", "files.example.com", "not an allowed file source")


def test_unparseable_url_is_a_problem_not_a_crash(registry: Path):
    path = write_manifest(registry, with_file(make_manifest(), url="https://[::1/model.bin"))
    the_problem(problems(registry), path, "versions[0].files[0].url", "not an allowed file source")


def test_mirrors_follow_the_same_rules(registry: Path):
    data = with_file(make_manifest(), mirrors=["https://files.example.com/model.bin"])
    path = write_manifest(registry, data)
    the_problem(problems(registry), path, "versions[0].files[0].mirrors[0]", "not an allowed file source")


def test_github_release_file_over_2_gib(registry: Path):
    path = write_manifest(registry, with_file(make_manifest(), size=3 * 1024**3))
    the_problem(problems(registry), path, "versions[0].files[0].size", "GitHub Releases", "2,147,483,648")


def test_file_in_a_git_repository_over_100_mib(registry: Path):
    url = f"https://raw.githubusercontent.com/alice/example/{COMMIT}/model.bin"
    path = write_manifest(registry, with_file(make_manifest(), url=url, size=200 * 1024**2))
    the_problem(problems(registry), path, "versions[0].files[0].size", "104,857,600")


def test_missing_sha256_on_a_release_file(registry: Path):
    path = write_manifest(registry, with_file(make_manifest(), sha256=None, size=None))
    the_problem(problems(registry), path, "versions[0].files[0].sha256", "missing", "GitHub Releases")


@pytest.mark.parametrize("missing", ["sha256", "size"])
def test_sha256_and_size_go_together(registry: Path, missing: str):
    url = f"{HF}/{COMMIT}/model.bin"
    path = write_manifest(registry, with_file(make_manifest(), url=url, **{missing: None}))
    the_problem(problems(registry), path, f"versions[0].files[0].{missing}", "go together")


def test_hub_file_pinned_to_a_branch_needs_sha256(registry: Path):
    path = write_manifest(registry, with_file(make_manifest(), url=f"{HF}/main/model.bin", sha256=None, size=None))
    the_problem(problems(registry), path, "versions[0].files[0].sha256", "'main'", "40-character commit")


def test_hub_file_pinned_to_a_commit_may_leave_checksums_out(registry: Path):
    write_manifest(registry, with_file(make_manifest(), url=f"{HF}/{COMMIT}/model.bin", sha256=None, size=None))
    modelscope = f"https://modelscope.cn/models/alice/tiny/resolve/{COMMIT}/model.bin"
    write_manifest(registry, with_file(make_manifest("alice/other"), url=modelscope, sha256=None, size=None))
    assert problems(registry) == []


def test_hub_file_with_a_release_mirror_still_needs_sha256(registry: Path):
    mirror = "https://github.com/alice/example/releases/download/v1/model.bin"
    data = with_file(make_manifest(), url=f"{HF}/{COMMIT}/model.bin", sha256=None, size=None, mirrors=[mirror])
    path = write_manifest(registry, data)
    the_problem(problems(registry), path, "versions[0].files[0].sha256", "GitHub Releases")


def test_local_url_needs_allow_local_urls(registry: Path):
    path = write_manifest(registry, with_file(make_manifest(), url="http://127.0.0.1:8000/model.bin"))
    the_problem(problems(registry), path, "versions[0].files[0].url", "--allow-local-urls")
    assert problems(registry, allow_local_urls=True) == []


# ---- the command line ------------------------------------------------------------------------


def test_cli_prints_one_line_per_problem_and_exits_4(registry: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(registry.parent)
    write_manifest(registry, make_manifest(license="Nope-1.0"))
    write_manifest(registry, with_file(make_manifest("alice/other"), url="https://example.com/x.bin"))
    result = run_cli("--root", "registry_index")
    assert result.exit_code == 4
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("registry_index/resources/alice/example.yaml: license: ")
    assert lines[1].startswith("registry_index/resources/alice/other.yaml: versions[0].files[0].url: ")
    assert "2 problems" in result.stderr


def test_cli_names_files_as_given_and_reports_only_them(registry: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(registry.parent)
    write_manifest(registry, make_manifest("bob/lib", license="Nope-1.0"))  # broken, but not asked about
    write_manifest(registry, requiring("alice/app", ("bob/lib", "*")))
    write_manifest(registry, requiring("alice/ok", ("bob/good", "*")))
    write_manifest(registry, make_manifest("bob/good"))
    given = "./registry_index/resources/alice/app.yaml"
    result = run_cli("--root", "registry_index", given, "registry_index/resources/alice/ok.yaml")
    assert result.exit_code == 4
    assert result.stdout.strip().splitlines() == [
        f"{given}: versions[0].requires[0].id: requires bob/lib, whose manifest has problems"
    ]


def test_cli_refuses_a_path_outside_the_registry(registry: Path, tmp_path: Path):
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text(yaml.safe_dump(make_manifest()))
    result = run_cli("--root", str(registry), str(outside))
    assert result.exit_code == 4
    assert result.stdout.startswith(f"{outside}: ") and "resources/<owner>/<name>.yaml" in result.stdout


def test_cli_report_and_json(registry: Path, tmp_path: Path):
    path = write_manifest(registry, with_file(make_manifest(), url="https://evil.example/x|<b>@team"))
    report = tmp_path / "out" / "report.md"
    result = run_cli("--root", str(registry), "--report", str(report), "--format", "json")
    assert result.exit_code == 4
    data = json.loads(result.stdout)
    assert data["ok"] is False and data["problems"][0] == {
        "file": str(path),
        "field": "versions[0].files[0].url",
        "message": data["problems"][0]["message"],
    }
    markdown = report.read_text()
    assert markdown.startswith("## Catalog validation")
    assert f"| `{path}` | `versions[0].files[0].url` |" in markdown


def test_markdown_report_for_a_clean_catalog(registry: Path, tmp_path: Path):
    write_manifest(registry, make_manifest())
    report = tmp_path / "report.md"
    result = run_cli("--root", str(registry), "--report", str(report), "--format", "markdown")
    assert result.exit_code == 0
    assert "1 manifest OK" in report.read_text() and "1 manifest OK" in result.stdout


def test_cli_usage_errors_exit_2(registry: Path):
    assert run_cli("--root", str(registry), "--author", "alice").exit_code == 2
    assert run_cli("--root", str(registry), "--write-measured").exit_code == 2


# ---- load_catalog and its cache --------------------------------------------------------------


def test_load_catalog_returns_resources_by_id(registry: Path):
    write_manifest(registry, make_manifest("bob/b"))
    write_manifest(registry, make_manifest("alice/a"))
    resources = load_catalog(registry)
    assert list(resources) == ["alice/a", "bob/b"]
    assert resources["alice/a"].kind == "model"


def test_load_catalog_raises_every_problem(registry: Path):
    a = write_manifest(registry, make_manifest("alice/a", license="Nope-1.0"))
    b = write_manifest(registry, requiring("alice/b", ("nobody/x", "*")))
    with pytest.raises(ManifestError) as error:
        load_catalog(registry)
    assert {(p.file, p.field) for p in error.value.problems} == {
        (str(a), "license"), (str(b), "versions[0].requires[0].id"),
    }


def test_load_catalog_cache_skips_unchanged_files(registry: Path, tmp_path: Path):
    path = write_manifest(registry, make_manifest(name="First"))
    cache = tmp_path / "work" / "manifests.json"
    assert load_catalog(registry, cache_file=cache)["alice/example"].name == "First"
    assert "alice/example.yaml" in json.loads(cache.read_text())["files"]

    # Same size, same mtime: the cache is trusted and the YAML is not read again.
    before = path.stat()
    path.write_text(path.read_text().replace("First", "Other"))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert load_catalog(registry, cache_file=cache)["alice/example"].name == "First"

    # A new mtime: read again.
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))
    assert load_catalog(registry, cache_file=cache)["alice/example"].name == "Other"


def test_load_catalog_survives_a_corrupt_cache(registry: Path, tmp_path: Path):
    write_manifest(registry, make_manifest())
    cache = tmp_path / "manifests.json"
    cache.write_text('{"format": 1, "files": {"alice/example.yaml": [1, 2, "{not json"]}}')
    assert list(load_catalog(registry, cache_file=cache)) == ["alice/example"]
    cache.write_text("garbage")
    assert list(load_catalog(registry, cache_file=cache)) == ["alice/example"]


def test_problems_are_found_again_when_cached(registry: Path, tmp_path: Path):
    write_manifest(registry, make_manifest("alice/a"))
    b = write_manifest(registry, requiring("alice/b", ("alice/a", "*")))
    cache = tmp_path / "manifests.json"
    load_catalog(registry, cache_file=cache)
    (registry / "resources" / "alice" / "a.yaml").unlink()
    with pytest.raises(ManifestError) as error:
        load_catalog(registry, cache_file=cache)
    assert [(p.file, p.field) for p in error.value.problems] == [(str(b), "versions[0].requires[0].id")]


# ---- against a git base ----------------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false", *args],
        cwd=repo, capture_output=True, text=True, check=True,
    )
    return done.stdout


@pytest.fixture
def repo(registry: Path) -> Path:
    """A git repository around ``registry`` with alice/example 1.0.0 committed as "base"."""
    top = registry.parent
    git(top, "init", "-q", "-b", "main")
    write_manifest(registry, make_manifest())
    git(top, "add", "-A")
    git(top, "commit", "-q", "-m", "base")
    git(top, "tag", "base")
    return top


def add_version(data: dict, version: str) -> dict:
    data["versions"].append({**copy.deepcopy(data["versions"][0]), "version": version})
    return data


def test_adding_a_version_as_a_maintainer_passes(registry: Path, repo: Path):
    write_manifest(registry, add_version(make_manifest(), "1.1.0"))
    assert problems(registry, base="base", author="alice") == []


def test_changed_published_version(registry: Path, repo: Path):
    path = write_manifest(registry, with_file(make_manifest(), sha256="1" * 64))
    the_problem(problems(registry, base="base"), path, "versions[0].files[0].sha256",
                "published version 1.0.0 may not change")


def test_removed_published_version(registry: Path, repo: Path):
    data = make_manifest()
    data["versions"][0]["version"] = "2.0.0"
    path = write_manifest(registry, data)
    the_problem(problems(registry, base="base"), path, "versions", "published version 1.0.0 was removed")


def test_deleted_manifest_removes_published_versions(registry: Path, repo: Path):
    path = registry / "resources" / "alice" / "example.yaml"
    path.unlink()
    the_problem(problems(registry, base="base"), path, "versions", "deleted", "1.0.0")
    (registry / "retired.yaml").write_text("retired:\n  - id: alice/example\n    reason: withdrawn\n")
    assert problems(registry, base="base", author="alice") == []
    the_problem(problems(registry, base="base", author="mallory"), path, "maintainers", "mallory")


def test_author_not_a_maintainer(registry: Path, repo: Path):
    data = add_version(make_manifest(), "1.1.0")
    data["maintainers"] = ["alice", "mallory"]  # adding oneself does not count: the base decides
    path = write_manifest(registry, data)
    the_problem(problems(registry, base="base", author="mallory"), path, "maintainers", "mallory", "at base: alice")


def test_unchanged_manifest_needs_no_authorship(registry: Path, repo: Path):
    write_manifest(registry, make_manifest("bob/new", maintainers=["bob"]))
    assert problems(registry, base="base", author="bob") == []


def test_new_resource_must_list_its_author(registry: Path, repo: Path):
    path = write_manifest(registry, make_manifest("bob/new", maintainers=["carol"]))
    the_problem(problems(registry, base="base", author="bob"), path, "maintainers", "add bob")


def test_measured_checksums_may_be_filled_in(registry: Path, repo: Path):
    url = f"{HF}/{COMMIT}/model.bin"
    write_manifest(registry, with_file(make_manifest(), url=url, sha256=None, size=None))
    git(repo, "commit", "-q", "-am", "hub file")
    git(repo, "tag", "hub")
    path = write_manifest(registry, with_file(make_manifest(), url=url, sha256="a" * 64, size=5))
    assert problems(registry, base="hub", author="alice") == []
    write_manifest(registry, with_file(make_manifest(), url=url.replace("model", "other"), sha256="a" * 64, size=5))
    the_problem(problems(registry, base="hub"), path, "versions[0].files[0].url", "may not change")


def test_the_base_policy_judges_a_pull_request(registry: Path, repo: Path):
    policy = registry / "policy.yaml"
    anywhere = "sources:\n  - name: Anywhere\n    pattern: '^https://.*$'\n"
    policy.write_text(policy.read_text().replace("sources:\n", anywhere, 1))
    data = with_file(make_manifest("bob/new", maintainers=["bob"]), url="https://evil.example/x.bin")
    path = write_manifest(registry, data)
    assert problems(registry) == []  # without a base, the policy on disk applies
    the_problem(problems(registry, base="base"), path, "versions[0].files[0].url", "evil.example")


def test_unknown_base_ref_is_a_usage_error(registry: Path, repo: Path):
    result = CliRunner().invoke(cli, ["catalog", "validate", "--root", str(registry), "--base", "no-such-ref"])
    assert result.exit_code == 2 and "no-such-ref" in result.output


def test_cli_with_base_and_author(registry: Path, repo: Path):
    path = write_manifest(registry, with_file(add_version(make_manifest(), "1.1.0"), size=2))
    result = run_cli("--root", str(registry), "--base", "base", "--author", "mallory", str(path))
    assert result.exit_code == 4
    assert f"{path}: maintainers: mallory is not a maintainer" in result.stdout
    assert f"{path}: versions[0].files[0].size: published version 1.0.0 may not change (was 1, now 2)" in result.stdout


# ---- online ----------------------------------------------------------------------------------


def served(server, name: str, body: bytes, **fields) -> dict:
    """A manifest whose one file is served by ``server`` at /files/<name>."""
    server.files[f"/files/{name}"] = body
    declared = {"sha256": hashlib.sha256(body).hexdigest(), "size": len(body), **fields}
    return with_file(make_manifest(), name=name, url=f"{server.url}/files/{name}", **declared)


def online(registry: Path, *paths, **options) -> list[Problem]:
    return problems(registry, *paths, online=True, allow_local_urls=True, **options)


def test_online_correct_file_passes(registry: Path, file_server):
    write_manifest(registry, served(file_server, "model.bin", b"weights" * 100))
    assert online(registry) == []
    assert [r[1] for r in file_server.requests] == ["/files/model.bin"]


def test_online_wrong_hash(registry: Path, file_server):
    path = write_manifest(registry, served(file_server, "model.bin", b"weights", sha256="f" * 64))
    the_problem(online(registry), path, "versions[0].files[0].sha256", hashlib.sha256(b"weights").hexdigest())


def test_online_smaller_than_declared(registry: Path, file_server):
    path = write_manifest(registry, served(file_server, "model.bin", b"weights", size=10))
    the_problem(online(registry), path, "versions[0].files[0].size", "7 bytes", "size says 10")


def test_online_larger_than_announced(registry: Path, file_server):
    path = write_manifest(registry, served(file_server, "model.bin", b"weights", size=3))
    the_problem(online(registry), path, "versions[0].files[0].size", "larger than declared")


def test_online_stops_reading_a_server_that_sends_too_much(registry: Path, file_server):
    sent = {"bytes": 0, "done": False}
    flood_size = 256 * 1024**2

    def flood(handler) -> bool:  # no Content-Length: the client can only count
        handler.send_response(200)
        handler.send_header("Connection", "close")
        handler.end_headers()
        chunk = b"x" * 65536
        try:
            while sent["bytes"] < flood_size:
                handler.wfile.write(chunk)
                sent["bytes"] += len(chunk)
        except OSError:
            pass
        finally:
            handler.close_connection = True
            sent["done"] = True
        return True

    file_server.faults["/files/model.bin"] = flood
    path = write_manifest(registry, served(file_server, "model.bin", b"", sha256="0" * 64, size=1000))
    the_problem(online(registry), path, "versions[0].files[0].size", "larger than declared", "stopped reading")
    deadline = time.monotonic() + 10
    while not sent["done"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sent["done"] and sent["bytes"] < flood_size / 4  # socket buffers at most; never the whole flood


@pytest.mark.parametrize("status", [404, 500])
def test_online_http_errors_are_problems(registry: Path, file_server, status: int):
    def fail(handler) -> bool:
        handler.send_response(status)
        handler.send_header("Content-Length", "0")
        handler.end_headers()
        return True

    data = served(file_server, "model.bin", b"weights")
    file_server.faults["/files/model.bin"] = fail
    path = write_manifest(registry, data)
    the_problem(online(registry), path, "versions[0].files[0].url", f"HTTP {status}")


def test_online_connection_refused_is_a_problem(registry: Path, file_server):
    data = served(file_server, "model.bin", b"weights")
    with_file(data, url="http://127.0.0.1:9/files/model.bin")  # the discard port: nothing listens
    path = write_manifest(registry, data)
    the_problem(online(registry), path, "versions[0].files[0].url", "download failed")


def test_online_mirror_with_other_bytes(registry: Path, file_server):
    file_server.files["/mirror/model.bin"] = b"WEIGHTS"  # as long, other bytes
    data = served(file_server, "model.bin", b"weights", mirrors=[f"{file_server.url}/mirror/model.bin"])
    path = write_manifest(registry, data)
    the_problem(online(registry), path, "versions[0].files[0].mirrors[0]", "sha256")


HUB_POLICY = """\
sources:
  - name: GitHub Releases
    pattern: '^https://github\\.com/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/releases/download/[^/?#]+/[^/?#]+$'
    max_size: 2147483648
local_sources:
  - name: local hub
    pattern: '^http://127\\.0\\.0\\.1:[0-9]+/hub/[a-z-]+/resolve/(?P<revision>[^/?#]+)/[^?#]+$'
    hub: localhub
  - name: local mirror
    pattern: '^http://127\\.0\\.0\\.1(?::[0-9]+)?/[^?#]*$'
non_commercial: [CC-BY-NC-4.0]
"""


def test_online_measures_hub_files_and_writes_them_back(registry: Path, file_server):
    (registry / "policy.yaml").write_text(HUB_POLICY)
    body = os.urandom(5000)
    file_server.files[f"/hub/tiny/resolve/{COMMIT}/model.bin"] = body
    url = f"{file_server.url}/hub/tiny/resolve/{COMMIT}/model.bin"
    path = write_manifest(registry, with_file(make_manifest(), url=url, sha256=None, size=None))

    outcome = validate(registry, online=True, allow_local_urls=True)
    assert outcome.problems == []
    assert [(m.sha256, m.size) for m in outcome.measured] == [(hashlib.sha256(body).hexdigest(), 5000)]
    assert "sha256" not in path.read_text()  # measuring alone writes nothing

    result = run_cli("--root", str(registry), "--online", "--allow-local-urls", "--write-measured", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["written"] == [str(path)]
    assert path.read_text().startswith("# yaml-language-server: $schema=../../resource.schema.json\n")
    entry = read_manifest(path).versions[0].files[0]
    assert (entry.sha256, entry.size) == (hashlib.sha256(body).hexdigest(), 5000)
    assert validate(registry, online=True, allow_local_urls=True).problems == []


def test_online_hub_branch_file_is_not_measured(registry: Path, file_server):
    (registry / "policy.yaml").write_text(HUB_POLICY)
    file_server.files["/hub/tiny/resolve/main/model.bin"] = b"weights"
    url = f"{file_server.url}/hub/tiny/resolve/main/model.bin"
    path = write_manifest(registry, with_file(make_manifest(), url=url, sha256=None, size=None))
    outcome = validate(registry, online=True, allow_local_urls=True, write_measured=True)
    the_problem(outcome.problems, path, "versions[0].files[0].sha256", "'main'")
    assert outcome.written == [] and "sha256" not in path.read_text()


def test_online_with_base_downloads_only_new_files(registry: Path, file_server):
    top = registry.parent
    git(top, "init", "-q", "-b", "main")
    data = served(file_server, "old.bin", b"old weights")
    write_manifest(registry, data)
    git(top, "add", "-A")
    git(top, "commit", "-q", "-m", "base")
    new = served(file_server, "new.bin", b"new weights")["versions"][0]
    data["versions"].append({**new, "version": "1.1.0"})
    write_manifest(registry, data)
    assert online(registry, base="HEAD", author="alice") == []
    assert [r[1] for r in file_server.requests] == ["/files/new.bin"]


def test_online_never_fetches_a_refused_url(registry: Path, file_server):
    data = served(file_server, "model.bin", b"weights")
    write_manifest(registry, data)
    assert problems(registry, online=True)  # local URL refused without --allow-local-urls
    assert file_server.requests == []


# ---- a Live2D model's model3.json names only files of its version ---------------------------

MODEL3 = {
    "Version": 3,
    "FileReferences": {
        "Moc": "hiyori.moc3",
        "Textures": ["hiyori.2048/texture_00.png"],
        "Motions": {"Idle": [{"File": "motions/idle.motion3.json"}]},
    },
}


def live2d_served(server, files: dict[str, bytes]) -> dict:
    """A Live2D manifest whose files (name → bytes) are served by ``server``."""
    entries = []
    for name, body in files.items():
        server.files[f"/files/{name}"] = body
        entries.append({"name": name, "url": f"{server.url}/files/{name}",
                        "sha256": hashlib.sha256(body).hexdigest(), "size": len(body)})
    data = make_manifest(kind="live2d", spec={"cubism": 4, "entry": "hiyori.model3.json"})
    data["versions"][0]["files"] = entries
    return data


def test_online_live2d_with_every_named_file_passes(registry: Path, file_server):
    files = {"hiyori.model3.json": json.dumps(MODEL3).encode(), "hiyori.moc3": b"moc",
             "hiyori.2048/texture_00.png": b"png", "motions/idle.motion3.json": b"{}"}
    write_manifest(registry, live2d_served(file_server, files))
    assert online(registry) == []


def test_online_live2d_refuses_a_texture_the_version_does_not_list(registry: Path, file_server):
    # what the old scaffold wrote: sub-folders dropped, so the texture is listed as texture_00.png
    files = {"hiyori.model3.json": json.dumps(MODEL3).encode(), "hiyori.moc3": b"moc",
             "texture_00.png": b"png", "idle.motion3.json": b"{}"}
    path = write_manifest(registry, live2d_served(file_server, files))
    found = online(registry)
    the_problem(found, path, "versions[0].files[0].name", "'hiyori.2048/texture_00.png'", "FileReferences.Textures[0]")
    the_problem(found, path, "versions[0].files[0].name", "'motions/idle.motion3.json'")
    assert len(found) == 2


def test_online_live2d_entry_that_is_not_a_model3_is_a_problem(registry: Path, file_server):
    path = write_manifest(registry, live2d_served(file_server, {"hiyori.model3.json": b"not json"}))
    the_problem(online(registry), path, "versions[0].files[0].name", "is not a JSON document")
