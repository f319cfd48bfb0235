"""The built-in image engine: Stable Diffusion (1.5, 2.x/Turbo, XL) through Hugging Face diffusers.

This package owns the ``diffusers`` engine: what it says it loads (``EngineInfo``), whether it can run
here, how much memory a pipeline needs (``memory``), loading a pipeline and its LoRAs from a diffusers
folder or a single checkpoint file, offline (``pipeline``), and drawing with it (``draw``: the
``image`` kind's ``draw(request, progress, cancelled)``, with samplers by name from ``schedulers``
and a live preview from ``preview``), from a picture too (``control``: img2img, inpainting,
ControlNet), and a second engine, ``diffusers-svd`` (``video``: image to video with Stable Video
Diffusion). torch and diffusers are imported only when
a model is loaded, so the host starts fast and lists the engine without them.
"""

from __future__ import annotations

from importlib.util import find_spec

from zishu.engines import Engine, EngineInfo, MemoryNeed, ModelRef
from zishu.hookspecs import hookimpl

from .schedulers import NAMES as SCHEDULER_NAMES

LIBRARIES = ("torch", "diffusers", "transformers", "peft", "accelerate", "safetensors")


class DiffusersEngine(Engine):
    info = EngineInfo(kind="image", name="diffusers", formats=("diffusers", "safetensors", "ckpt"),
                      capabilities=frozenset({"lora", "gpu", "img2img", "inpaint", "controlnet"}),
                      schedulers=SCHEDULER_NAMES,
                      description="Stable Diffusion 1.5, 2.x/Turbo and XL with diffusers; LoRAs through peft.")

    def unavailable(self) -> str | None:
        missing = [name for name in LIBRARIES if find_spec(name) is None]
        if missing:
            return f"needs {', '.join(missing)}: pip install 'zishu[image]'"
        return None

    def estimate(self, model: ModelRef, device: str = "cpu") -> MemoryNeed:
        if (device == "cpu" and model.ram_mb) or (device != "cpu" and model.vram_mb):
            return super().estimate(model, device)  # the manifest's own figures
        from .memory import estimate

        return estimate(model, device)

    def load(self, model: ModelRef, device: str = "cpu"):
        from .draw import Drawer
        from .pipeline import load_pipeline

        return Drawer(load_pipeline(model, device), device, model.label,
                      loaded_loras=tuple(weight for _, weight in model.adapters))


@hookimpl
def register_engines(register):
    from .video import VideoEngine

    register(DiffusersEngine())
    register(VideoEngine())
