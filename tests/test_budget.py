"""The whole-character hardware budget: the sum over the install plan, the tiers, this machine, and
what `zishu install` prints."""

from __future__ import annotations

from conftest import make_manifest, zishu
from zishu.catalog import RESOURCE
from zishu.resources.budget import TIERS, against_machine, budget_lines, plan_budget
from zishu.resources.plan import NothingInstalled, make_plan

MiB, GiB = 2**20, 2**30


class Catalog:
    def __init__(self, *manifests: dict) -> None:
        self.resources = {m["id"]: RESOURCE.validate_python(m) for m in manifests}

    def resource(self, id: str):
        return self.resources[id]


def _sized(data: dict, size: int, requires: tuple[str, ...] = ()) -> dict:
    data["versions"][0]["files"][0]["size"] = size
    data["versions"][0]["requires"] = [{"id": r, "version": "*"} for r in requires]
    return data


def test_the_budget_sums_every_dependency_transitively():
    llm = _sized(make_manifest("a/llm", "model", spec={"format": "gguf", "role": "llm", "ram_mb": 6000,
                                                        "vram_mb": 5000}), 4 * GiB)
    asr = _sized(make_manifest("a/asr", "model", spec={"format": "funasr", "role": "asr"}), 900 * MiB)
    lora = _sized(make_manifest("a/lora", "lora", spec={"target": "llm", "base_model": "a/llm"}), 100 * MiB,
                  ("a/llm",))
    hero = _sized(make_manifest("a/hero", "character"), 10 * MiB, ("a/lora", "a/asr"))
    plan = make_plan(Catalog(llm, asr, lora, hero), ["a/hero"], NothingInstalled())
    budget = plan_budget(plan)
    assert [p["id"] for p in budget.parts] == ["a/llm", "a/lora", "a/asr", "a/hero"]
    assert budget.disk == 4 * GiB + 900 * MiB + 100 * MiB + 10 * MiB
    assert budget.ram == 6000 * MiB + 100 * MiB + 900 * MiB  # the ASR model's RAM is its file size
    assert budget.vram == 5000 * MiB + 100 * MiB  # speech recognition stays on the CPU
    assert budget.estimated  # the LoRA's and the ASR model's memory come from file sizes
    assert [t.name for t in TIERS] == ["minimum", "recommended", "best"]
    assert budget.tier is TIERS[0]
    assert budget.to_json()["tiers"][1]["fits"] is True


def test_tiers_and_this_machine():
    big = _sized(make_manifest("a/big", "model", spec={"format": "gguf", "role": "llm", "ram_mb": 20_000,
                                                        "vram_mb": 12_000}), 12 * GiB)
    budget = plan_budget(make_plan(Catalog(big), ["a/big"], NothingInstalled()))
    assert [budget.fits(t) for t in TIERS] == [False, False, True]
    assert budget.tier is TIERS[2]
    laptop = {"ram_bytes": 16 * GiB, "disk_free_bytes": 100 * GiB, "cpu_count": 8, "gpus": []}
    here = against_machine(budget, laptop, 12 * GiB)
    assert here["runs_on"] is None and "RAM: needs 19.5 GiB" in here["short"][0]
    gpu_box = {**laptop, "ram_bytes": 32 * GiB, "gpus": [{"name": "x", "vram_bytes": 24 * GiB}]}
    assert against_machine(budget, gpu_box, 12 * GiB)["runs_on"] == "gpu"
    lines = budget_lines(budget, here)
    assert "CPU minimum ✗ · GPU recommended ✗ · Best ✓  → Best" in lines[1]
    assert "does not fit this machine" in lines[2]


def test_zishu_install_prints_the_budget(app_env):
    env, _server, _home = app_env
    result = zishu(env, "install", "zishu/hero")
    assert "needs  disk 302.7 KiB · RAM 293.0 KiB (CPU) · VRAM 293.0 KiB (GPU)" in result.stderr
    assert "tiers  CPU minimum ✓ · GPU recommended ✓ · Best ✓  → CPU minimum" in result.stderr
    assert "here   runs on this machine's" in result.stderr
