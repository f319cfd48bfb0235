"""What an engine is: its description (``EngineInfo``), the model it is asked to load
(``ModelRef``), the memory it says a model needs (``MemoryNeed``) and the base class ``Engine``.

An engine is registered by a plugin's ``register_engines(register)`` hook: ``register(engine)``.
The host resolves the model (a catalog id through the resource manager, or a local path) before
the engine sees it, asks ``estimate`` how much memory it needs, makes room within the budget, and
only then calls ``load``. Kind-specific calls (chat, transcribe, speak, draw, embed) are methods on
what ``load`` returns; each kind's plugin documents them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from zishu.errors import EngineError

KINDS = ("llm", "asr", "tts", "image", "embedding", "vad", "upscale", "background", "video")
# img2img, inpaint, controlnet: an image engine that draws from a start picture, repaints a masked part,
# or follows a control picture (ImageRequest.init_image / mask_image / control_image)
# i2v: a video engine that makes a clip from a picture (VideoRequest.image)
CAPABILITIES = ("streaming", "lora", "voices", "emotions", "languages", "gpu", "img2img", "inpaint", "controlnet",
                "i2v")


@dataclass(frozen=True)
class EngineInfo:
    kind: str  # one of KINDS
    name: str  # unique, e.g. "llama-cpp"
    formats: tuple[str, ...]  # model formats it loads (the manifest's spec.format), e.g. ("gguf",)
    capabilities: frozenset[str] = frozenset()  # from CAPABILITIES
    languages: tuple[str, ...] = ()  # BCP 47 tags, empty when any
    description: str = ""
    needs_model: bool = True  # False for engines that work with no model file (espeak-ng)
    schedulers: tuple[str, ...] = ()  # image engines: the sampler names ImageRequest.scheduler takes

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"engine {self.name!r}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        unknown = set(self.capabilities) - set(CAPABILITIES)
        if unknown:
            raise ValueError(f"engine {self.name!r}: unknown capabilities {sorted(unknown)}")


@dataclass(frozen=True)
class ModelRef:
    """A model ready to load: where its files are, and what the catalog says about it."""

    key: str  # "owner/name@version" or the resolved local path: what the cache is keyed by
    path: Path  # the version folder, or the local file/folder given
    id: str | None = None  # the catalog id when it came from the catalog
    version: str | None = None
    format: str | None = None  # spec.format, when known
    role: str | None = None  # spec.role, when known
    ram_mb: int | None = None  # the manifest's own figures, when it gives them
    vram_mb: int | None = None
    spec: dict = field(default_factory=dict, compare=False)
    engine: str | None = None  # the engine the catalog names (a voice's spec.engine)
    adapters: tuple[tuple[ModelRef, float], ...] = ()  # LoRAs applied at load, with their weights

    @property
    def label(self) -> str:
        base = f"{self.id}@{self.version}" if self.id else str(self.path)
        return base + "".join(f" + {a.label}×{w:g}" for a, w in self.adapters)

    def with_adapters(self, adapters: Iterable[tuple[ModelRef, float]]) -> ModelRef:
        """This model with LoRAs applied: a different cache entry than the model alone."""
        applied = tuple(adapters)
        key = self.key.split("+", 1)[0] + "".join(f"+{a.key}*{w:g}" for a, w in applied)
        return replace(self, key=key, adapters=applied)

    def file(self, *suffixes: str) -> Path:
        """The model's one file ending in one of ``suffixes`` (the path itself when it is a file)."""
        if self.path.is_file():
            return self.path
        found = sorted(p for p in self.path.rglob("*") if p.is_file() and p.name.lower().endswith(suffixes))
        if len(found) != 1:
            what = "no" if not found else f"{len(found)}"
            raise EngineError(f"{self.label}: expected one {'/'.join(suffixes)} file in {self.path}, found {what}"
                              + (f": {', '.join(p.name for p in found)}" if found else ""))
        return found[0]

    @property
    def size_bytes(self) -> int:
        own = (self.path.stat().st_size if self.path.is_file()
               else sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file()))
        return own + sum(adapter.size_bytes for adapter, _ in self.adapters)


@dataclass(frozen=True)
class MemoryNeed:
    ram: int = 0  # bytes
    vram: int = 0  # bytes


class Engine:
    """Subclass and set ``info``; implement ``load`` (and ``estimate`` when file size misleads)."""

    info: EngineInfo

    def unavailable(self) -> str | None:
        """Why this engine cannot run here (say, its library is not installed), or None when it can.
        Plugins import their heavy libraries lazily, so the host starts fast and lists every engine."""
        return None

    def devices(self) -> tuple[str, ...]:
        """The devices this engine's library can run on here, "cpu" first. The default: "cpu", plus
        "cuda" for an engine with the "gpu" capability. An engine whose library may have been built
        without GPU support (a CPU build of llama.cpp) says what the installed build can do, so
        that a GPU in the machine is not taken as a GPU the engine can use."""
        return ("cpu", "cuda") if "gpu" in self.info.capabilities else ("cpu",)

    def estimate(self, model: ModelRef, device: str = "cpu") -> MemoryNeed:
        """Bytes the model needs loaded: the manifest's ram_mb/vram_mb when given, else the size of
        its files plus a fifth for buffers, in RAM on the CPU and in VRAM on a GPU."""
        if device == "cpu" and model.ram_mb:
            return MemoryNeed(ram=model.ram_mb * 2**20)
        if device != "cpu" and model.vram_mb:
            return MemoryNeed(vram=model.vram_mb * 2**20, ram=256 * 2**20)
        size = int(model.size_bytes * 1.2)
        return MemoryNeed(ram=size) if device == "cpu" else MemoryNeed(vram=size, ram=256 * 2**20)

    def load(self, model: ModelRef, device: str = "cpu") -> Any:
        """The loaded model: an object with the calls of its kind (the Protocols in ``kinds``).
        Engines that need no model file (a built-in voice) are also called with ``None``."""
        raise NotImplementedError

    def unload(self, loaded) -> None:
        """Free what ``load`` returned (default: its ``close()``, when it has one)."""
        close = getattr(loaded, "close", None)
        if callable(close):
            close()
