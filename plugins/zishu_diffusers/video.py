"""Image to video: the ``video`` engine ``diffusers-svd``, Stable Video Diffusion through diffusers.

A model is a diffusers folder of ``StableVideoDiffusionPipeline`` (``model_index.json`` naming it;
stabilityai/stable-video-diffusion-img2vid and -xt have this layout), loaded offline. ``animate``
turns one picture into ``frames`` frames: the picture is scaled and cropped to the asked size, the
pipeline denoises in ``steps`` steps (``progress`` after each, ``JobCancelled`` between two once
``cancelled()`` is true) and decodes a few frames at a time. The engine says it uses a GPU; the
storyboard makes clips only where one is present, because on a CPU a real model takes many minutes a
clip (tests run a tiny random pipeline on the CPU).
"""

from __future__ import annotations

import json
import secrets
import threading
import warnings
from importlib.util import find_spec
from pathlib import Path

from zishu.engines import Engine, EngineInfo, ModelRef, VideoRequest
from zishu.errors import EngineError, JobCancelled

LIBRARIES = ("torch", "diffusers", "transformers", "safetensors")
PIPELINE = "StableVideoDiffusionPipeline"
MULTIPLE = 8  # width and height are rounded down to this


class VideoEngine(Engine):
    info = EngineInfo(kind="video", name="diffusers-svd", formats=("diffusers",),
                      capabilities=frozenset({"i2v", "gpu"}),
                      description="Stable Video Diffusion with diffusers: a picture becomes a short clip (on a GPU).")

    def unavailable(self) -> str | None:
        missing = [name for name in LIBRARIES if find_spec(name) is None]
        if missing:
            return f"needs {', '.join(missing)}: pip install 'zishu[image]'"
        return None

    def load(self, model: ModelRef, device: str = "cpu") -> Animator:
        import torch
        from diffusers import StableVideoDiffusionPipeline
        from diffusers.utils import logging as diffusers_logging

        folder = Path(model.path)
        index = folder / "model_index.json"
        try:
            name = json.loads(index.read_text(encoding="utf-8")).get("_class_name")
        except (OSError, ValueError):
            raise EngineError(f"{model.label}: no readable model_index.json in {folder}; a Stable Video "
                              "Diffusion model is a diffusers folder") from None
        if name != PIPELINE:
            raise EngineError(f"{model.label}: its model_index.json names {name!r}, not {PIPELINE}")
        if device.split(":")[0] == "cuda":
            if not torch.cuda.is_available():
                raise EngineError(f"{device} was asked for, but this torch has no CUDA (a CPU build, or no driver)")
            dtype = torch.float16
        elif device == "cpu":
            dtype = torch.float32
        else:
            raise EngineError(f"the diffusers-svd engine runs on cpu or cuda, not {device!r}")
        diffusers_logging.disable_progress_bar()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "`torch_dtype` is deprecated", FutureWarning)
            pipe = StableVideoDiffusionPipeline.from_pretrained(folder, torch_dtype=dtype, local_files_only=True)
        pipe.set_progress_bar_config(disable=True)
        return Animator(pipe.to(device), device, model.label)


class Animator:
    """A loaded Stable Video Diffusion pipeline; one clip at a time."""

    def __init__(self, pipe, device: str, label: str) -> None:
        self.pipe, self.device, self.label = pipe, device, label
        self._lock = threading.Lock()

    def animate(self, request: VideoRequest, progress=None, cancelled=None) -> list:
        import torch
        from PIL import ImageOps

        width, height = _side(request.width, "width"), _side(request.height, "height")
        if request.frames < 2 or request.steps < 1:
            raise EngineError(f"{self.label}: a clip needs at least 2 frames and 1 step "
                              f"(asked {request.frames} frames, {request.steps} steps)")
        if cancelled is not None and cancelled():
            raise JobCancelled("the clip was cancelled before it started")
        first = ImageOps.fit(request.image.convert("RGB"), (width, height))
        seed = request.seed if request.seed is not None else secrets.randbelow(2**32)

        def after_step(pipe, step, timestep, tensors):
            if progress is not None:
                progress(step + 1, request.steps)
            if cancelled is not None and cancelled():
                raise JobCancelled(f"the clip was cancelled after step {step + 1} of {request.steps}")
            return tensors

        with self._lock, torch.inference_mode():
            out = self.pipe(first, height=height, width=width, num_frames=request.frames,
                            num_inference_steps=request.steps, fps=request.fps, motion_bucket_id=request.motion,
                            decode_chunk_size=int(request.extra.get("decode_chunk_size", 4)),
                            generator=torch.Generator(device="cpu").manual_seed(seed), output_type="pil",
                            callback_on_step_end=after_step)
        return list(out.frames[0])

    def close(self) -> None:
        self.pipe = None


def _side(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 64:
        raise EngineError(f"VideoRequest.{name} must be a whole number of pixels, at least 64, got {value!r}")
    return value - value % MULTIPLE
