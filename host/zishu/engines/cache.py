"""Loaded models, kept within a RAM and a VRAM budget: loaded on first use, least recently used
unloaded first when room is needed, unloaded on request.

Before a load, the engine's ``estimate`` is checked against the budget and against what the
machine has free right now; a model that cannot fit is refused with the numbers
(NotEnoughMemory) instead of being loaded into swap or an out-of-memory kill.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import psutil

from zishu.errors import EngineError, NotEnoughMemory
from zishu.sizes import byte_size

from .api import Engine, MemoryNeed, ModelRef

log = logging.getLogger(__name__)


@dataclass
class Loaded:
    engine: Engine
    model: ModelRef
    device: str
    need: MemoryNeed
    handle: Any
    loaded_at: float = field(default_factory=time.time)
    used_at: float = field(default_factory=time.time)

    def as_dict(self) -> dict:
        return {"engine": self.engine.info.name, "kind": self.engine.info.kind, "model": self.model.label,
                "key": self.model.key,
                "device": self.device, "ram_bytes": self.need.ram, "vram_bytes": self.need.vram,
                "loaded_at": self.loaded_at, "used_at": self.used_at}


class ModelCache:
    """``ram_budget``/``vram_budget`` in bytes (default: 80 % of RAM; the VRAM of the first GPU)."""

    def __init__(self, ram_budget: int | None = None, vram_budget: int | None = None,
                 free_ram=lambda: psutil.virtual_memory().available) -> None:
        self.ram_budget = ram_budget if ram_budget is not None else int(psutil.virtual_memory().total * 0.8)
        self.vram_budget = vram_budget if vram_budget is not None else _first_gpu_vram()
        self.free_ram = free_ram
        self._loaded: OrderedDict[tuple[str, str, str], Loaded] = OrderedDict()
        self._lock = threading.RLock()

    def get(self, engine: Engine, model: ModelRef, device: str = "cpu"):
        """The loaded model (loading it, after making room, when it is not loaded yet)."""
        key = (engine.info.name, model.key, device)
        with self._lock:
            found = self._loaded.get(key)
            if found is not None:
                self._loaded.move_to_end(key)
                found.used_at = time.time()
                return found.handle
            need = engine.estimate(model, device)
            self._check_fits(engine, model, device, need)
            self._make_room(need)
            free = self.free_ram()
            if need.ram > free:
                raise NotEnoughMemory(
                    f"{model.label} needs {byte_size(need.ram)} of RAM to load with {engine.info.name}; "
                    f"{byte_size(free)} is free on this machine right now. "
                    "Close other programs or choose a smaller model.")
            try:
                handle = engine.load(model, device)
            except (NotEnoughMemory, EngineError):
                raise
            except Exception as e:
                raise EngineError(f"the {engine.info.name} engine failed to load {model.label}: "
                                  f"{type(e).__name__}: {e}") from e
            self._loaded[key] = Loaded(engine, model, device, need, handle)
            return handle

    def unload(self, engine_name: str | None = None, model_key: str | None = None) -> list[str]:
        """Unload what matches (everything when both are None); returns the labels unloaded."""
        with self._lock:
            keys = [k for k in self._loaded if (engine_name in (None, k[0])) and (model_key in (None, k[1]))]
            return [self._drop(k) for k in keys]

    def loaded(self) -> list[dict]:
        with self._lock:
            return [entry.as_dict() for entry in self._loaded.values()]

    @property
    def used(self) -> MemoryNeed:
        with self._lock:
            return MemoryNeed(ram=sum(e.need.ram for e in self._loaded.values()),
                              vram=sum(e.need.vram for e in self._loaded.values()))

    def _check_fits(self, engine: Engine, model: ModelRef, device: str, need: MemoryNeed) -> None:
        for what, wanted, budget in (("RAM", need.ram, self.ram_budget), ("VRAM", need.vram, self.vram_budget)):
            if wanted > budget:
                where = "" if what == "RAM" else f" on {device}"
                raise NotEnoughMemory(
                    f"{model.label} needs {byte_size(wanted)} of {what}{where} with {engine.info.name}; the budget is "
                    f"{byte_size(budget)}. Choose a smaller or more quantized model, "
                    + ("or a GPU." if what == "RAM" else "or run it on the CPU."))

    def _make_room(self, need: MemoryNeed) -> None:
        used = self.used
        while self._loaded and (used.ram + need.ram > self.ram_budget or used.vram + need.vram > self.vram_budget):
            self._drop(next(iter(self._loaded)))  # the least recently used
            used = self.used

    def _drop(self, key) -> str:
        entry = self._loaded.pop(key)
        try:
            entry.engine.unload(entry.handle)
        except Exception:
            log.warning("%s failed to unload %s", key[0], entry.model.label, exc_info=True)
        return entry.model.label


def _first_gpu_vram() -> int:
    from zishu.system import gpus

    found = gpus()
    return found[0]["vram_bytes"] if found else 0
