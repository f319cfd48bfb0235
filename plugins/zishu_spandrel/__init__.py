"""The built-in upscaling engine on spandrel: Real-ESRGAN-family weights as they are published.

This package owns the ``spandrel-upscale`` engine (kind ``upscale``): it loads an upscaler's
``.pth`` or ``.safetensors`` weights (ESRGAN, Real-ESRGAN, RealESRGAN-compact, SwinIR, … — whatever
architecture spandrel recognises from the state dict) with spandrel's ``ModelLoader`` and draws a
picture in tiles on the CPU or a CUDA GPU. Catalog models of role ``upscale`` in format ``pytorch``
or ``safetensors`` come here; ``.onnx`` exports go to ``onnx-upscale`` (zishu_onnx_vision).
torch and spandrel are imported only when a model is loaded.
"""

from __future__ import annotations

from importlib.util import find_spec

from zishu.engines import Engine, EngineInfo, ModelRef
from zishu.hookspecs import hookimpl


class SpandrelUpscaleEngine(Engine):
    info = EngineInfo(kind="upscale", name="spandrel-upscale", formats=("pytorch", "safetensors"),
                      capabilities=frozenset({"gpu"}),
                      description="Real-ESRGAN-family upscalers from their .pth/.safetensors weights, in tiles, "
                                  "through spandrel (PyTorch).")

    def unavailable(self) -> str | None:
        missing = [name for name in ("torch", "spandrel") if find_spec(name) is None]
        if missing:
            return f"needs {' and '.join(missing)}: pip install 'zishu[upscale]'"
        return None

    def devices(self) -> tuple[str, ...]:
        import torch

        return ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)

    def load(self, model: ModelRef, device: str = "cpu"):
        from .upscale import Upscaler, load_descriptor

        return Upscaler(load_descriptor(model, device), model.label, device, tile=model.spec.get("tile"))


@hookimpl
def register_engines(register):
    register(SpandrelUpscaleEngine())
