"""The built-in post-processing engines on ONNX Runtime: upscaling (kind ``upscale``) and background
removal (kind ``background``).

This package owns the ``onnx-upscale`` engine (``upscale``: Real-ESRGAN-family upscalers exported to
ONNX, drawn in tiles) and the ``onnx-background`` engine (``background``: U²-Net/BiRefNet-family
segmenters exported to ONNX, their mask applied as alpha). onnxruntime is imported only when a model
is loaded.

Upscalers published as ``.pth``/``.safetensors`` weights go to ``spandrel-upscale``
(zishu_spandrel); this engine takes the models' ONNX exports.
"""

from __future__ import annotations

from importlib.util import find_spec

from zishu.engines import Engine, EngineInfo, ModelRef
from zishu.hookspecs import hookimpl


class _OnnxEngine(Engine):
    def unavailable(self) -> str | None:
        if find_spec("onnxruntime") is None:
            return "needs onnxruntime: pip install 'zishu[image]'"
        return None

    def devices(self) -> tuple[str, ...]:
        from .session import providers_available

        return ("cpu", "cuda") if "CUDAExecutionProvider" in providers_available() else ("cpu",)


class UpscaleEngine(_OnnxEngine):
    info = EngineInfo(kind="upscale", name="onnx-upscale", formats=("onnx",), capabilities=frozenset({"gpu"}),
                      description="Real-ESRGAN-family upscalers exported to ONNX, in tiles, on ONNX Runtime.")

    def load(self, model: ModelRef, device: str = "cpu"):
        from .session import open_session
        from .upscale import Upscaler

        return Upscaler(open_session(model, device), model.label, tile=model.spec.get("tile"))


class BackgroundEngine(_OnnxEngine):
    info = EngineInfo(kind="background", name="onnx-background", formats=("onnx",), capabilities=frozenset({"gpu"}),
                      description="Background removal with U²-Net/BiRefNet-family segmenters exported to ONNX.")

    def load(self, model: ModelRef, device: str = "cpu"):
        from .background import BackgroundRemover
        from .session import open_session

        return BackgroundRemover(open_session(model, device), model.label, size=model.spec.get("size"))


@hookimpl
def register_engines(register):
    register(UpscaleEngine())
    register(BackgroundEngine())
