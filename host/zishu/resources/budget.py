"""The whole-character hardware budget: what a resource and everything it pulls need, set against
seed 000's tiers and against this machine.

The sum runs over an install plan's steps (``plan.make_plan``: the resource and its requirements,
transitively), installed or not, because a character needs all of them to run:

- **disk**: every file of every version (``exact`` False when some size is not in the catalog);
- **RAM** (running on the CPU): a model's ``spec.ram_mb``, else its files' size (weights are read
  into memory), plus each LoRA's files;
- **VRAM** (running on a GPU): a model's ``spec.vram_mb``, else, for the heavy roles (``llm``,
  ``image``), its files' size; speech, voice-activity and embedding models stay on the CPU. LoRAs
  add their files. A figure taken from file sizes is marked ``estimated``.

``TIERS`` is the one place the tiers are defined (seed 000's hardware section; documented in
README's "Hardware tiers"): CPU minimum, GPU recommended, best. A character *fits* a tier when its
RAM (CPU tier) or VRAM and RAM (GPU tiers) and its disk are within that tier's figures.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from zishu.catalog import Resource, Version
from zishu.catalog.manifest import LoraSpec, ModelSpec
from zishu.sizes import byte_size, download_size

GiB = 2**30
MiB = 2**20
GPU_ROLES = ("llm", "image")  # roles whose models go to the GPU when there is one


@dataclass(frozen=True)
class Tier:
    name: str
    title: str
    cores: int
    ram: int
    vram: int  # 0: runs on the CPU
    disk: int


TIERS = (
    Tier("minimum", "CPU minimum", cores=4, ram=16 * GiB, vram=0, disk=20 * GiB),
    Tier("recommended", "GPU recommended", cores=8, ram=16 * GiB, vram=6 * GiB, disk=50 * GiB),
    Tier("best", "Best", cores=16, ram=32 * GiB, vram=24 * GiB, disk=100 * GiB),
)


@dataclass
class Budget:
    """What a resource needs with everything it requires; ``parts`` says what each one adds."""

    disk: int = 0
    disk_exact: bool = True
    ram: int = 0
    vram: int = 0
    estimated: bool = False
    parts: list[dict] = field(default_factory=list)

    def fits(self, tier: Tier) -> bool:
        memory_ok = self.ram <= tier.ram if tier.vram == 0 else self.vram <= tier.vram and self.ram <= tier.ram
        return memory_ok and self.disk <= tier.disk

    @property
    def tier(self) -> Tier | None:
        """The lowest tier that runs it (None: beyond even the best tier)."""
        return next((t for t in TIERS if self.fits(t)), None)

    def to_json(self) -> dict:
        tier = self.tier
        return {
            "disk": self.disk, "disk_exact": self.disk_exact, "ram": self.ram, "vram": self.vram,
            "estimated": self.estimated, "tier": tier.name if tier else None,
            "tiers": [{**asdict(t), "fits": self.fits(t)} for t in TIERS],
            "parts": self.parts,
        }


def _need(resource: Resource, version: Version) -> tuple[int, int, bool]:
    """(RAM, VRAM, estimated) of one version."""
    size = version.total_size
    spec = resource.spec
    if isinstance(spec, ModelSpec):
        gpu = spec.role in GPU_ROLES
        ram = spec.ram_mb * MiB if spec.ram_mb else size
        vram = spec.vram_mb * MiB if spec.vram_mb else size if gpu else 0
        return ram, vram, not spec.ram_mb or (gpu and not spec.vram_mb)
    if isinstance(spec, LoraSpec):
        return size, size, True
    return 0, 0, False


def budget_of(steps: Iterable[tuple[Resource, Version]]) -> Budget:
    """Sum what each (resource, version) needs: an install plan's steps, dependencies first."""
    total = Budget()
    for resource, version in steps:
        ram, vram, estimated = _need(resource, version)
        total.disk += version.total_size
        total.disk_exact = total.disk_exact and version.size_exact
        total.ram += ram
        total.vram += vram
        total.estimated = total.estimated or estimated
        total.parts.append({"id": resource.id, "version": version.version, "kind": resource.kind,
                            "disk": version.total_size, "disk_exact": version.size_exact,
                            "ram": ram, "vram": vram})
    return total


def plan_budget(plan) -> Budget:
    """The budget of an ``InstallPlan`` (every step, installed or not)."""
    return budget_of((s.resource, s.version) for s in plan.steps)


def against_machine(budget: Budget, machine: dict, still_to_download: int) -> dict:
    """``budget`` set against ``system.summary()``: where it runs here and what is short."""
    vram = max((g["vram_bytes"] for g in machine.get("gpus", [])), default=0)
    ram, free = machine.get("ram_bytes", 0), machine.get("disk_free_bytes", 0)
    gpu = vram > 0 and budget.vram <= vram and budget.ram <= ram
    cpu = budget.ram <= ram
    runs_on = "gpu" if gpu else "cpu" if cpu else None
    short = []
    if runs_on is None:
        short.append(f"RAM: needs {byte_size(budget.ram)}, this machine has {byte_size(ram)}")
    if still_to_download > free:
        short.append(f"disk: needs {byte_size(still_to_download)} more, {byte_size(free)} free")
    return {"ram": ram, "vram": vram, "disk_free": free, "cpu_count": machine.get("cpu_count"),
            "runs_on": runs_on, "disk_ok": still_to_download <= free, "short": short}


def budget_lines(budget: Budget, machine: dict | None = None) -> list[str]:
    """The budget as lines of plain text (``zishu install`` and a package's import print them)."""
    mark = " (estimated from file sizes)" if budget.estimated else ""
    lines = [f"needs  disk {download_size(budget.disk, exact=budget.disk_exact)} · RAM {byte_size(budget.ram)} "
             f"(CPU) · VRAM {byte_size(budget.vram)} (GPU){mark}"]
    tiers = " · ".join(f"{t.title} {'✓' if budget.fits(t) else '✗'}" for t in TIERS)
    tier = budget.tier
    lines.append(f"tiers  {tiers}  → {tier.title if tier else 'beyond the best tier'}")
    if machine is not None:
        where = {"gpu": "runs on this machine's GPU", "cpu": "runs on this machine's CPU",
                 None: "does not fit this machine"}[machine["runs_on"]]
        vram = f", VRAM {byte_size(machine['vram'])}" if machine["vram"] else ", no GPU"
        lines.append(f"here   {where} (RAM {byte_size(machine['ram'])}{vram}, "
                     f"disk {byte_size(machine['disk_free'])} free)")
        lines.extend(f"short  {s}" for s in machine["short"])
    return lines
