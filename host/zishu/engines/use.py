"""One call from "this kind, this model (id or path), maybe this engine" to a loaded model ready to
use: resolve the model and its LoRAs, choose the engine, pick the device, load through the cache.

``zishu run``, the companion and the studio all come through here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar, cast, overload

from zishu.errors import EngineError

from .api import Engine, ModelRef
from .kinds import (
    BackgroundRemover,
    ChatModel,
    EmbeddingModel,
    ImageGenerator,
    SpeechRecognizer,
    SpeechSynthesizer,
    Upscaler,
    VoiceActivity,
)
from .resolve import Installed, resolve_model

if TYPE_CHECKING:
    from .cache import ModelCache
    from .catalog import Engines

H = TypeVar("H", covariant=True)
log = logging.getLogger(__name__)
DEVICE_CHOICES = ("auto", "cpu", "cuda")  # what --device and the Settings take ("cuda:N" too)
_cpu_only_said: set[str] = set()  # engines whose "runs on the CPU although a GPU is here" was logged


@dataclass
class Ready(Generic[H]):
    """A loaded model: the engine that loaded it, what was loaded, on which device, and the handle
    whose kind-specific methods (the Protocols in ``kinds``) do the work."""

    engine: Engine
    model: ModelRef | None
    device: str
    handle: H


class Host(Protocol):
    """What ``use`` needs of a running Zishu: installed versions, the engines, the model cache."""

    @property  # read-only, so that a store offering more than Installed (VersionStore) fits
    def registry(self) -> Installed: ...
    engines: Engines
    models: ModelCache


def pick_device(engine: Engine, wanted: str | None = None) -> str:
    """``wanted`` when given (and not "auto"); else "cuda" when a GPU is present and the engine's
    library can use one (``Engine.devices``), else "cpu". An engine that could use a GPU but whose
    installed library cannot (a CPU build of llama-cpp-python on a GPU machine) runs on the CPU, and
    the first time this happens for that engine a note says so in the log."""
    if wanted and wanted != "auto":
        return wanted
    if "gpu" not in engine.info.capabilities:
        return "cpu"
    from zishu.system import gpus

    found = gpus()
    if not found:
        return "cpu"
    can = _devices(engine)
    if any(d == "cuda" or d.startswith("cuda:") for d in can):
        return "cuda"
    if engine.info.name not in _cpu_only_said:
        _cpu_only_said.add(engine.info.name)
        log.warning("%s runs on the CPU: its library, as installed here, cannot use the GPU (%s). "
                    "Install a GPU build of it to use the GPU.", engine.info.name, found[0]["name"])
    return "cpu"


def _devices(engine: Engine) -> tuple[str, ...]:
    """``engine.devices()``; a third party's engine without it, or whose check fails, gets "cpu"."""
    check = getattr(engine, "devices", None)
    if not callable(check):
        return ("cpu",)
    try:
        return tuple(check())
    except Exception:  # a failing check must not stop the model from loading on the CPU
        log.warning("%s: its device check failed; using the CPU", engine.info.name, exc_info=True)
        return ("cpu",)


Adapters = Sequence[tuple[str, float]]


@overload
def use(runtime: Host, kind: Literal["llm"], model: str | None = ..., *, engine: str | None = ...,
        adapters: Adapters = ..., device: str | None = ...) -> Ready[ChatModel]: ...
@overload
def use(runtime: Host, kind: Literal["embedding"], model: str | None = ..., *, engine: str | None = ...,
        adapters: Adapters = ..., device: str | None = ...) -> Ready[EmbeddingModel]: ...
@overload
def use(runtime: Host, kind: Literal["asr"], model: str | None = ..., *, engine: str | None = ...,
        adapters: Adapters = ..., device: str | None = ...) -> Ready[SpeechRecognizer]: ...
@overload
def use(runtime: Host, kind: Literal["tts"], model: str | None = ..., *, engine: str | None = ...,
        adapters: Adapters = ..., device: str | None = ...) -> Ready[SpeechSynthesizer]: ...
@overload
def use(runtime: Host, kind: Literal["image"], model: str | None = ..., *, engine: str | None = ...,
        adapters: Adapters = ..., device: str | None = ...) -> Ready[ImageGenerator]: ...
@overload
def use(runtime: Host, kind: Literal["vad"], model: str | None = ..., *, engine: str | None = ...,
        adapters: Adapters = ..., device: str | None = ...) -> Ready[VoiceActivity]: ...
@overload
def use(runtime: Host, kind: Literal["upscale"], model: str | None = ..., *, engine: str | None = ...,
        adapters: Adapters = ..., device: str | None = ...) -> Ready[Upscaler]: ...
@overload
def use(runtime: Host, kind: Literal["background"], model: str | None = ..., *, engine: str | None = ...,
        adapters: Adapters = ..., device: str | None = ...) -> Ready[BackgroundRemover]: ...
@overload
def use(runtime: Host, kind: str, model: str | None = ..., *, engine: str | None = ...,
        adapters: Adapters = ..., device: str | None = ...) -> Ready[Any]: ...


def use(runtime: Host, kind: str, model: str | None = None, *, engine: str | None = None,
        adapters: Adapters = (), device: str | None = None) -> Ready[Any]:
    """Load (or find loaded) ``model`` for ``kind``; ``adapters`` are (LoRA id or path, weight)."""
    ref = resolve_model(model, runtime.registry) if model else None
    if adapters:
        if ref is None:
            raise EngineError("a LoRA needs a base model: pass --model too")
        loras = [(resolve_model(name, runtime.registry), weight) for name, weight in adapters]
        ref = ref.with_adapters(loras)
    chosen = runtime.engines.choose(kind, ref, engine)
    missing = chosen.unavailable() if callable(getattr(chosen, "unavailable", None)) else None
    if missing:
        raise EngineError(f"the {chosen.info.name} engine cannot run here: {missing}")
    if ref is not None and ref.role and ref.role != kind and engine is None and ref.engine is None:
        # naming the engine says the model is meant for it (an LLM's GGUF embeds through llama-cpp-embed)
        raise EngineError(f"{ref.label} is a {ref.role} model, not {kind}")
    if adapters and "lora" not in chosen.info.capabilities:
        raise EngineError(f"the {chosen.info.name} engine does not apply LoRAs")
    where = pick_device(chosen, device)
    if ref is None:
        # an engine that needs no model file (a built-in voice) is loaded with None
        return Ready(chosen, None, where, chosen.load(cast(ModelRef, None), where))
    return Ready(chosen, ref, where, runtime.models.get(chosen, ref, where))
