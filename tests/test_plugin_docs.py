"""Every hook has a section in the plugin guide with its exact signature (as datasette checks)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from zishu import hookspecs

GUIDE = Path(__file__).resolve().parent.parent / "catalog_site" / "docs" / "plugins.md"
HOOKS = sorted(name for name, fn in vars(hookspecs).items()
               if inspect.isfunction(fn) and hasattr(fn, "zishu_spec"))


def test_the_hook_list_is_what_the_host_calls():
    assert "register_routes" in HOOKS and "on_job_end" in HOOKS and "check_image" in HOOKS and len(HOOKS) == 11


@pytest.mark.parametrize("hook", HOOKS)
def test_each_hook_is_documented_with_its_signature(hook):
    params = ", ".join(inspect.signature(getattr(hookspecs, hook)).parameters)
    headings = re.findall(r"^### (\w+\(.*\))$", GUIDE.read_text(), re.M)
    assert f"{hook}({params})" in headings


def test_the_guide_documents_no_hook_that_does_not_exist():
    headings = re.findall(r"^### (\w+)\(", GUIDE.read_text(), re.M)
    assert sorted(headings) == HOOKS
