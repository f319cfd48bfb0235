"""The import-linter contracts in pyproject.toml catch what they promise.

Each broken-contract test copies the packages into tmp_path, adds one import that a contract forbids,
and runs the venv's ``lint-imports`` with the project's own configuration against the copy: it must
fail and name the contract and the offending import. (The tree itself is checked by ``make check``.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from importlinter.api import read_configuration

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PUBLIC_API = {"zishu.engines", "zishu.errors", "zishu.hookspecs"}  # what plugins may import


def contract(contract_id: str) -> dict:
    """One contract's settings, as lint-imports reads them from pyproject.toml."""
    contracts = read_configuration(str(PYPROJECT))["contracts_options"]
    return next(c for c in contracts if c["id"] == contract_id)


def copy_packages(dest: Path) -> Path:
    """host/, plugins/ and tools/ under ``dest``, without caches and the vendored front-end files."""
    skip = shutil.ignore_patterns("__pycache__", "vendor", "node_modules", "*.pyc")
    for top in ("host", "plugins", "tools"):
        shutil.copytree(ROOT / top, dest / top, ignore=skip)
    return dest


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """The project's contracts, run against the packages under ``tree`` (they come first on the path)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(tree / top) for top in ("host", "plugins", "tools"))}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(PYPROJECT), "--no-cache"],
        cwd=tree, env=env, capture_output=True, text=True, timeout=300,
    )


@pytest.mark.parametrize(
    ("contract_id", "module", "source", "importer", "imported"),
    [
        # a service reaching up to the runtime that assembles it
        ("layers", "host/zishu/resources/reaches_up.py", "from zishu import runtime\n",
         "zishu.resources.reaches_up", "zishu.runtime"),
        # a plugin reaching past the public API into the host's internals
        ("plugins", "plugins/zishu_llama/reaches_in.py", "import zishu.config\n",
         "zishu_llama.reaches_in", "zishu.config"),
        # the catalog toolchain importing the web app
        ("tools", "tools/zishu_catalog/reaches_web.py", "from zishu.web import app\n",
         "zishu_catalog.reaches_web", "zishu.web.app"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    tmp_path: Path, contract_id: str, module: str, source: str, importer: str, imported: str
):
    tree = copy_packages(tmp_path)
    (tree / module).write_text(source)
    result = lint_imports(tree)
    output = " ".join((result.stdout + result.stderr).split())  # long names wrap in lint-imports' report
    assert result.returncode != 0, output
    broken = output.split("Broken contracts", 1)[-1]
    assert contract(contract_id)["name"] in broken, output
    assert f"{importer} -> {imported}" in broken, output


def test_a_new_import_cycle_breaks_the_cycles_contract(tmp_path: Path):
    tree = copy_packages(tmp_path)
    # errors.py is imported by nearly everything; make it import the catalog back
    errors = tree / "host/zishu/errors.py"
    errors.write_text(errors.read_text() + "\nfrom zishu.catalog import manifest as _cycle  # noqa: E402\n")
    result = lint_imports(tree)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output
    broken = output.split("Broken contracts", 1)[-1]
    assert contract("cycles")["name"] in broken, output
    assert ".errors -> .catalog" in broken or ".catalog -> .errors" in broken, output


def test_plugins_are_forbidden_every_module_outside_the_public_api():
    # a new top-level module or wing (studio, storyboard, packaging...) must be added to the list
    package = ROOT / "host" / "zishu"
    top_level = {
        f"zishu.{p.stem}" for p in package.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()
    }
    forbidden = set(contract("plugins")["forbidden_modules"])
    assert top_level - PUBLIC_API - forbidden == set()
    assert forbidden <= top_level  # import-linter refuses a forbidden module that does not exist
    assert not forbidden & PUBLIC_API
