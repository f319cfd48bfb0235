"""What the app's Install dialog shows before anything moves: every resource the install pulls
(with what is already here), the download still to do, the whole-character hardware budget against
the tiers and this machine (``budget.py``), and the plugins among them that need the user's
consent (with what their catalog entries say they are).
"""

from __future__ import annotations

from pathlib import Path

from zishu.catalog.manifest import PluginSpec

from .budget import against_machine, budget_lines, plan_budget
from .plan import Catalog, Installed, make_plan
from .plugin_wheels import enabled_version


def install_overview(catalog: Catalog, request: str, registry: Installed, home: Path, machine: dict) -> dict:
    """The install plan of ``request`` with its budget, as JSON for the Install dialog."""
    plan = make_plan(catalog, [request], registry)
    budget = plan_budget(plan)
    here = against_machine(budget, machine, plan.download_size)
    steps = [{"id": s.id, "name": s.resource.name, "kind": s.resource.kind, "version": s.version.version,
              "size": s.version.total_size, "exact": s.version.size_exact, "installed": s.installed}
             for s in plan.steps]
    plugins = [{"id": s.id, "version": s.version.version, "distribution": s.resource.spec.distribution,
                "entry_point": s.resource.spec.entry_point, "license": s.resource.license,
                "maintainers": s.resource.maintainers}
               for s in plan.steps
               if isinstance(s.resource.spec, PluginSpec) and enabled_version(home, s.id) != s.version.version]
    return {"steps": steps, "download": plan.download_size, "download_exact": plan.size_exact,
            "budget": budget.to_json(), "machine": here, "lines": budget_lines(budget, here), "plugins": plugins}
