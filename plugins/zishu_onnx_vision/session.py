"""Opening an ONNX model with ONNX Runtime on a device, and moving pictures in and out of it.

A model is one ``.onnx`` file (the file given, or the one in the model's folder). Pictures cross as
NCHW arrays of RGB in 0..1, in the precision the model's input asks for (float32 or float16).
"""

from __future__ import annotations

from typing import Any

from zishu.engines import ModelRef
from zishu.errors import EngineError

ONNX_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16"}


def providers_available() -> list[str]:
    import onnxruntime

    return list(onnxruntime.get_available_providers())


def open_session(model: ModelRef, device: str) -> Any:
    """An ``InferenceSession`` for ``model`` on ``device`` (cpu, or cuda[:N] when onnxruntime has CUDA)."""
    import onnxruntime

    path = model.file(".onnx")
    if device == "cpu":
        providers: list = ["CPUExecutionProvider"]
    elif device.split(":")[0] == "cuda":
        if "CUDAExecutionProvider" not in providers_available():
            raise EngineError(f"{device} was asked for, but this onnxruntime has no CUDA (pip install onnxruntime-gpu)")
        index = int(device.split(":")[1]) if ":" in device else 0
        providers = [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    else:
        raise EngineError(f"the ONNX engines run on cpu or cuda, not {device!r}")
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only; the host logs what matters
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=providers)
    except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph/... classes
        raise EngineError(f"{model.label}: {path.name} is not an ONNX model onnxruntime can run: {e}") from e
    inputs = session.get_inputs()
    if len(inputs) != 1 or len(inputs[0].shape) != 4 or inputs[0].type not in ONNX_TYPES:
        found = ", ".join(f"{i.name} {i.type} {i.shape}" for i in inputs)
        raise EngineError(f"{model.label}: expected one picture input (float, N×3×H×W), found {found or 'none'}")
    return session


def fixed_side(session: Any) -> tuple[int, int] | None:
    """The (height, width) the model's input is fixed at, or None when it takes any size."""
    height, width = session.get_inputs()[0].shape[2:]
    return (height, width) if isinstance(height, int) and isinstance(width, int) else None


def run(session: Any, rgb: Any) -> Any:
    """The model's first output for ``rgb`` (an H×W×3 float32 array), as float32 N×C×H×W."""
    import numpy as np

    first = session.get_inputs()[0]
    batch = np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=ONNX_TYPES[first.type])
    return np.asarray(session.run(None, {first.name: batch})[0], dtype=np.float32)
