"""Drawing from pictures with a loaded pipeline: img2img, inpainting and ControlNet.

A request that carries ``init_image`` (img2img), ``init_image`` + ``mask_image`` (inpaint: repaint
where the mask is white) or ``control_image`` (ControlNet) is drawn by a pipeline made from the loaded
one with diffusers' ``from_pipe``: the same UNet, VAE, text encoders and LoRAs, nothing loaded twice.
The ControlNet itself is a separate model the host finds for the base model's family (catalog role
``controlnet``) and hands in as ``control_model``; it is loaded once and kept beside the pipeline.

Control pictures: "canny" takes any picture and finds its edges here (OpenCV's ``Canny``); "pose" (an
OpenPose skeleton) and "depth" (a depth map) are used as they are given. Every picture is resized to
the request's width and height.

``pipeline`` is what ``draw`` calls with its text-to-image arguments (``prepare``: the pipeline to run
and its arguments for this request); ``finish``
puts an inpainted picture's unmasked pixels back as they were.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from zishu.engines import CONTROL_KINDS, ImageRequest, ModelRef
from zishu.errors import EngineError

CANNY_THRESHOLDS = (100, 200)  # low, high: the values A1111's and diffusers' canny examples use
CONTROL_ROLE = "controlnet"  # the catalog role of a ControlNet model


def uses_pictures(request: ImageRequest) -> bool:
    """Whether the request draws from a picture (anything beyond plain text-to-image)."""
    return any(getattr(request, name, None) is not None for name in ("init_image", "mask_image", "control_image"))


def check(request: ImageRequest, label: str) -> None:
    """Refuse picture fields that cannot be drawn, naming the field."""
    for name in ("init_image", "mask_image", "control_image"):
        value = getattr(request, name)
        if value is not None and not _is_picture(value):
            raise EngineError(f"ImageRequest.{name} must be a picture (PIL image), got {type(value).__name__}")
    if request.mask_image is not None and request.init_image is None:
        raise EngineError("ImageRequest.mask_image needs ImageRequest.init_image: the picture to repaint")
    strength = request.strength
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 < strength <= 1:
        raise EngineError(f"ImageRequest.strength must be a number above 0 and at most 1, got {strength!r}")
    if request.init_image is not None and strength * request.steps < 1:
        raise EngineError(f"ImageRequest.strength {strength:g} × steps {request.steps} leaves no step to draw; "
                          "raise the strength or the steps")
    if request.control_image is None:
        return
    if request.control_kind not in CONTROL_KINDS:
        raise EngineError(f"ImageRequest.control_kind must be one of {', '.join(CONTROL_KINDS)}, "
                          f"got {request.control_kind!r}")
    scale = request.control_scale
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 <= scale <= 2 or math.isnan(scale):
        raise EngineError(f"ImageRequest.control_scale must be a number from 0 to 2, got {scale!r}")
    if request.control_model is None:
        raise EngineError(f"a {request.control_kind} ControlNet is not installed for {label}: install a model of "
                          f"catalog role {CONTROL_ROLE!r} made for its family (tagged {request.control_kind!r})")


def pipeline(drawer: Any, request: ImageRequest) -> Any:
    """What ``draw`` calls with the text-to-image arguments: the loaded pipeline itself for a plain
    request, else the pipeline ``prepare`` makes, called with the arguments ``prepare`` adapts."""
    if not uses_pictures(request):
        return drawer.pipe

    def draw_from_pictures(**arguments: Any) -> Any:
        pipe, adapted = prepare(drawer, request, arguments)
        return pipe(**adapted)

    return draw_from_pictures


def prepare(drawer: Any, request: ImageRequest, arguments: dict) -> tuple[Any, dict]:
    """The pipeline that draws ``request`` and ``arguments`` (the text-to-image ones) adapted to it."""
    width, height = request.width, request.height
    arguments = dict(arguments)
    task = "text2image"
    if request.init_image is not None:
        task = "inpaint" if request.mask_image is not None else "image2image"
        arguments["image"] = _rgb(request.init_image, width, height)
        arguments["strength"] = float(request.strength)
        if request.mask_image is not None:
            arguments["mask_image"] = request.mask_image.convert("L").resize((width, height))
        else:  # the img2img pipelines take their size from the picture
            arguments.pop("width", None)
            arguments.pop("height", None)
    controlnet = None
    if request.control_image is not None:
        controlnet = _controlnet(drawer, request.control_model)
        control = control_picture(request.control_image, request.control_kind or "", width, height)
        arguments["image" if task == "text2image" else "control_image"] = control
        arguments["controlnet_conditioning_scale"] = float(request.control_scale)
    return _pipeline(drawer, task, controlnet), arguments


def finish(request: ImageRequest, images: list) -> list:
    """The drawn pictures; inpainted ones keep ``init_image``'s pixels exactly where the mask is black
    (the pipeline re-decodes the whole picture, which blurs what was not to be repainted)."""
    if request.init_image is None or request.mask_image is None:
        return images
    from PIL import Image

    original = _rgb(request.init_image, request.width, request.height)
    mask = request.mask_image.convert("L").resize((request.width, request.height))
    finished = []
    for image in images:
        kept = Image.composite(image.convert("RGB"), original, mask)
        kept.info.update(image.info)
        finished.append(kept)
    return finished


def control_picture(image: Any, kind: str, width: int, height: int) -> Any:
    """The picture a ControlNet of ``kind`` follows: canny edges found here, pose and depth as given."""
    from PIL import Image

    picture = _rgb(image, width, height)
    if kind != "canny":
        return picture
    import numpy as np

    try:
        import cv2
    except ImportError as e:
        raise EngineError("canny control needs OpenCV: pip install 'zishu[image]' (opencv-python-headless)") from e

    edges = cv2.Canny(np.asarray(picture.convert("L")), *CANNY_THRESHOLDS)
    return Image.fromarray(np.stack([edges] * 3, axis=-1))


def _pipeline(drawer: Any, task: str, controlnet: Any) -> Any:
    """The loaded pipeline for ``task`` (with ``controlnet``), made once from the text-to-image one."""
    if task == "text2image" and controlnet is None:
        return drawer.pipe
    made = _made(drawer)
    key = (task, id(controlnet) if controlnet is not None else None)
    if key not in made:
        from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting, AutoPipelineForText2Image

        auto = {"text2image": AutoPipelineForText2Image, "image2image": AutoPipelineForImage2Image,
                "inpaint": AutoPipelineForInpainting}[task]
        extra = {"controlnet": controlnet} if controlnet is not None else {}
        try:
            pipe = auto.from_pipe(drawer.pipe, **extra)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise EngineError(f"{drawer.label} cannot {task.replace('2', ' to ')}"
                              f"{' with a ControlNet' if controlnet is not None else ''}: {e}") from e
        pipe.set_progress_bar_config(disable=True)
        made[key] = pipe
    return made[key]


def _controlnet(drawer: Any, model: Any) -> Any:
    """The ControlNet at ``model`` (a ModelRef or a path), loaded once in the pipeline's precision and
    checked against the pipeline's UNet; the previous one is dropped when another is asked for."""
    path = Path(model.path if isinstance(model, ModelRef) else model)
    label = model.label if isinstance(model, ModelRef) else str(path)
    loaded = getattr(drawer, "_controlnet", None)
    if loaded is not None and loaded[0] == path:
        return loaded[1]
    import torch
    from diffusers import ControlNetModel

    if not (path / "config.json").is_file():
        raise EngineError(f"{label} is not a diffusers ControlNet folder (no config.json in {path})")
    try:
        controlnet = ControlNetModel.from_pretrained(path, torch_dtype=drawer.pipe.unet.dtype, local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
        raise EngineError(f"could not load the ControlNet {label}: {e}") from e
    unet, own = drawer.pipe.unet.config, controlnet.config
    for name in ("cross_attention_dim", "addition_embed_type"):
        if getattr(own, name, None) != getattr(unet, name, None):
            raise EngineError(f"the ControlNet {label} was made for another base model family than {drawer.label} "
                              f"(its {name} is {getattr(own, name, None)!r}, the model's "
                              f"{getattr(unet, name, None)!r}); install one made for this model's family")
    controlnet.to(torch.device(drawer.device))
    _made(drawer).clear()  # pipelines made with the previous ControlNet
    drawer._controlnet = (path, controlnet)
    return controlnet


def _made(drawer: Any) -> dict:
    made = getattr(drawer, "_made_pipelines", None)
    if made is None:
        made = drawer._made_pipelines = {}
    return made


def forget(drawer: Any) -> None:
    """Drop the pipelines made from ``drawer``'s and its ControlNet (when it is unloaded)."""
    drawer._made_pipelines = {}
    drawer._controlnet = None


def _rgb(image: Any, width: int, height: int) -> Any:
    picture = image.convert("RGB")
    return picture if picture.size == (width, height) else picture.resize((width, height))


def _is_picture(value: Any) -> bool:
    from PIL import Image

    return isinstance(value, Image.Image)
