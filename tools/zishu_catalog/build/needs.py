"""What a resource page says a resource pulls and needs: every resource it installs, transitively
(the host's own install plan, ``zishu.resources.plan``, on a machine with nothing installed), with
sizes and the total; the base model's hub link; and the hardware budget against the tiers
(``zishu.resources.budget``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from zishu.catalog import Resource
from zishu.catalog.manifest import CharacterSpec, ModelSpec
from zishu.errors import InstallPlanError, NotFound
from zishu.resources.budget import Budget, plan_budget
from zishu.resources.plan import NothingInstalled, make_plan

_HUBS = (
    re.compile(r"^(https://huggingface\.co/(?!datasets/)[^/]+/[^/]+)/(?:resolve|blob)/"),
    re.compile(r"^(https://(?:www\.)?modelscope\.cn/models/[^/]+/[^/]+)/"),
)


class _Resources:
    """The catalog being built, as the install plan asks for it."""

    def __init__(self, resources: dict[str, Resource]) -> None:
        self.resources = resources

    def resource(self, id: str) -> Resource:
        try:
            return self.resources[id]
        except KeyError:
            raise NotFound(f"{id} is not in the catalog") from None


@dataclass
class Needs:
    downloads: list[dict]  # {id, name, kind, version, size, exact}, dependencies first
    total: int
    total_exact: bool
    budget: Budget
    base_model: dict | None  # {id, name, hub}

    def key(self) -> list:
        return [self.downloads, self.total, self.total_exact, self.budget.to_json(), self.base_model]


def hub_link(resource: Resource) -> str | None:
    """The hub repository a model's files come from (Hugging Face or ModelScope), else its homepage."""
    for f in resource.latest.files:
        for hub in _HUBS:
            if found := hub.match(f.url):
                return found.group(1)
    return resource.homepage


def _base_model(resource: Resource, steps: list[Resource]) -> dict | None:
    """The LLM a character talks with (``spec.llm.model``, else the first LLM it pulls)."""
    wanted = resource.spec.llm.model if isinstance(resource.spec, CharacterSpec) and resource.spec.llm else None
    models = [r for r in steps
              if isinstance(r.spec, ModelSpec) and (r.id == wanted if wanted else r.spec.role == "llm")]
    if not models:
        return None
    model = models[0]
    return {"id": model.id, "name": model.name, "hub": hub_link(model)}


def needs_of(resource: Resource, resources: dict[str, Resource]) -> Needs | None:
    """What installing ``resource``'s latest version pulls and needs; None when its requirements
    cannot be planned (the build's validation refuses such a catalog before it gets here)."""
    try:
        plan = make_plan(_Resources(resources), [f"{resource.id}@{resource.latest.version}"], NothingInstalled())
    except InstallPlanError:
        return None
    downloads = [{"id": s.id, "name": s.resource.name, "kind": s.resource.kind, "version": s.version.version,
                  "size": s.version.total_size, "exact": s.version.size_exact} for s in plan.steps]
    return Needs(downloads, plan.download_size, plan.size_exact, plan_budget(plan),
                 _base_model(resource, [s.resource for s in plan.steps]))
