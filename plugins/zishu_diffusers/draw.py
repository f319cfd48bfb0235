"""Drawing with a loaded pipeline: the ``image`` kind's ``draw(request, progress, cancelled)``.

A request is checked field by field before any work starts. Each picture of a batch has its own
generator, seeded ``seed``, ``seed + 1``, …, so a batch's pictures differ and each can be drawn again
alone (its seed is in ``image.info["seed"]``). ``progress(step, steps)`` is called after each
denoising step; once ``cancelled()`` is true the pipeline is left between two steps and
``JobCancelled`` raised, without decoding. One draw runs at a time on a pipeline.
"""

from __future__ import annotations

import math
import secrets
import threading
from numbers import Real

from zishu.engines import ImageRequest
from zishu.errors import EngineError, JobCancelled, NotEnoughMemory

from . import control

MAX_BATCH = 8
MAX_SIDE = 4096
TILED_VAE_ABOVE = 1024 * 1024  # pixels; a GPU decodes bigger pictures in tiles


class Drawer:
    """A loaded pipeline (what ``DiffusersEngine.load`` returns)."""

    def __init__(self, pipe, device: str, label: str) -> None:
        self.pipe = pipe
        self.device = device
        self.label = label
        self._lock = threading.Lock()

    @property
    def size_multiple(self) -> int:
        """Widths and heights must be multiples of this: 8 and the VAE's scale factor."""
        return math.lcm(8, int(getattr(self.pipe, "vae_scale_factor", 8)))

    def draw(self, request: ImageRequest, progress=None, cancelled=None) -> list:
        import torch

        if self.pipe is None:
            raise EngineError(f"{self.label} was unloaded; load it again to draw")
        self.check(request)
        if cancelled is not None and cancelled():
            raise JobCancelled("the drawing was cancelled before it started")
        seed = request.seed if request.seed is not None else secrets.randbelow(2**32)
        seeds = [seed + n for n in range(request.batch)]

        def after_step(pipe, step, timestep, tensors):
            done, steps = step + 1, pipe.num_timesteps
            if progress is not None:
                progress(done, steps)
            if cancelled is not None and cancelled():
                raise JobCancelled(f"the drawing was cancelled after step {done} of {steps}")
            return {}

        with self._lock:
            if self.device != "cpu":
                self._tile_vae(request.width * request.height > TILED_VAE_ABOVE)
            try:
                images = control.pipeline(self, request)(  # control.py: img2img, inpaint, ControlNet (issue 15)
                    prompt=request.prompt, negative_prompt=request.negative_prompt or None,
                    width=request.width, height=request.height, num_inference_steps=request.steps,
                    guidance_scale=float(request.guidance), num_images_per_prompt=request.batch,
                    generator=[torch.Generator("cpu").manual_seed(s) for s in seeds],
                    callback_on_step_end=after_step, output_type="pil").images
            except torch.cuda.OutOfMemoryError as e:
                raise NotEnoughMemory(f"{self.label} ran out of memory on {self.device} drawing {request.batch} × "
                                      f"{request.width}×{request.height}; draw fewer or smaller pictures") from e
        images = control.finish(request, images)  # control.py: an inpainted picture's unmasked pixels kept
        for image, used in zip(images, seeds, strict=True):  # one image per seed
            image.info["seed"] = used
        return images

    def check(self, request: ImageRequest) -> None:
        """Refuse a request this pipeline cannot draw, naming the field."""
        for name in ("prompt", "negative_prompt"):
            if not isinstance(getattr(request, name), str):
                raise EngineError(f"ImageRequest.{name} must be text, got {type(getattr(request, name)).__name__}")
        multiple = self.size_multiple
        for name in ("width", "height"):
            value = getattr(request, name)
            if not _is_int(value) or not multiple <= value <= MAX_SIDE or value % multiple:
                raise EngineError(f"ImageRequest.{name} must be a multiple of {multiple} from {multiple} to "
                                  f"{MAX_SIDE} for {self.label}, got {value!r}")
        most_steps = int(self.pipe.scheduler.config.get("num_train_timesteps", 1000))
        if not _is_int(request.steps) or not 1 <= request.steps <= most_steps:
            raise EngineError(f"ImageRequest.steps must be a whole number from 1 to {most_steps}, "
                              f"got {request.steps!r}")
        if not _is_int(request.batch) or not 1 <= request.batch <= MAX_BATCH:
            raise EngineError(f"ImageRequest.batch must be from 1 to {MAX_BATCH}, got {request.batch!r}")
        guidance = request.guidance
        if isinstance(guidance, bool) or not isinstance(guidance, Real) or not 0 <= guidance < math.inf:
            raise EngineError(f"ImageRequest.guidance must be a number ≥ 0, got {guidance!r}")
        if request.seed is not None and (not _is_int(request.seed) or not 0 <= request.seed <= 2**64 - request.batch):
            raise EngineError(f"ImageRequest.seed must be a whole number from 0 to 2**64 - batch, got {request.seed!r}")
        control.check(request, self.label)  # control.py: the picture fields (issue 15 item 5)

    def _tile_vae(self, tiled: bool) -> None:
        vae = getattr(self.pipe, "vae", None)
        if vae is not None and hasattr(vae, "enable_tiling"):
            vae.enable_tiling() if tiled else vae.disable_tiling()

    def close(self) -> None:
        """Drop the pipeline and hand its GPU memory back."""
        import gc

        import torch

        self.pipe = None
        control.forget(self)  # control.py: the pipelines made from this one and its ControlNet
        gc.collect()
        if self.device != "cpu" and torch.cuda.is_available():
            torch.cuda.empty_cache()


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
