"""Tiny random-weight models for the studio's control and post-processing, written with the real libraries.

``write_tiny_controlnet`` (a diffusers ControlNet made from a tiny pipeline's UNet, so it fits that
pipeline's family), ``write_tiny_upscaler`` (an ONNX Real-ESRGAN-shaped upscaler: a convolution to
3·s² channels and DepthToSpace, so the output is ``s`` times the input) and ``write_tiny_segmenter``
(an ONNX U²-Net-shaped segmenter: one RGB input, a one-channel sigmoid mask of the same size) and
``write_tiny_esrgan`` (spandrel's own ESRGAN/Real-ESRGAN architecture, 8 filters and one block, its
state dict saved as ``.pth`` or ``.safetensors`` the way Real-ESRGAN releases are). Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_tiny_controlnet(folder: Path, base_folder: Path, seed: int = 2) -> Path:
    """A ControlNet for ``base_folder``'s pipeline (its UNet's down blocks copied, the conditioning
    embedding scaled to the tiny VAE's factor of 2), saved as a diffusers folder."""
    import torch
    from diffusers import ControlNetModel, UNet2DConditionModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_pretrained(Path(base_folder) / "unet", local_files_only=True)
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(16, 32))
    zeroed = ("controlnet_cond_embedding.conv_out", "controlnet_mid_block", "controlnet_down_blocks")
    with torch.no_grad():  # ControlNet starts with zero convolutions (a no-op); make it do something
        for name, param in controlnet.named_parameters():
            if name.startswith(zeroed):
                param.normal_(std=0.5)
    controlnet.save_pretrained(folder)
    return Path(folder)


def _save(graph, path: Path) -> Path:
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="zishu-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)
    return path


def write_tiny_upscaler(path: Path, scale: int = 2, seed: int = 0) -> Path:
    """``input`` [N,3,H,W] float 0..1 → ``output`` [N,3,H·scale,W·scale]: a 3×3 convolution to 3·scale²
    channels, DepthToSpace, then a clip to 0..1 (the shape of Real-ESRGAN's pixel-shuffle tail)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    out_channels = 3 * scale * scale
    weight = rng.normal(0, 0.1, (out_channels, 3, 3, 3)).astype(np.float32)
    for c in range(out_channels):  # start near "each sub-pixel copies its colour", plus noise
        weight[c, c // (scale * scale), 1, 1] += 1.0
    nodes = [helper.make_node("Conv", ["input", "weight"], ["features"], pads=[1, 1, 1, 1]),
             helper.make_node("DepthToSpace", ["features"], ["spread"], blocksize=scale, mode="CRD"),
             helper.make_node("Clip", ["spread", "low", "high"], ["output"])]
    graph = helper.make_graph(
        nodes, "tiny-upscaler",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 3, "height_out", "width_out"])],
        [numpy_helper.from_array(weight, "weight"), numpy_helper.from_array(np.array(0, np.float32), "low"),
         numpy_helper.from_array(np.array(1, np.float32), "high")])
    return _save(graph, Path(path))


def write_tiny_segmenter(path: Path, side: int | None = 32, seed: int = 0) -> Path:
    """``input`` [1,3,side,side] (normalised RGB) → ``mask`` [1,1,side,side] in 0..1: a 3×3 convolution
    to one channel and a sigmoid. ``side`` None: any size (a dynamic input, as some BiRefNet exports)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weight = rng.normal(0, 1.0, (1, 3, 3, 3)).astype(np.float32)
    dims: list = [1, 3, side, side] if side else [1, 3, "height", "width"]
    nodes = [helper.make_node("Conv", ["input", "weight"], ["logits"], pads=[1, 1, 1, 1]),
             helper.make_node("Sigmoid", ["logits"], ["mask"])]
    graph = helper.make_graph(
        nodes, "tiny-segmenter", [helper.make_tensor_value_info("input", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, *dims[2:]])],
        [numpy_helper.from_array(weight, "weight")])
    return _save(graph, Path(path))


def write_tiny_esrgan(path: Path, scale: int = 2, seed: int = 0) -> Path:
    """A random-weight ESRGAN (RRDBNet: 8 filters, 1 block) of ``scale``, its state dict saved at ``path``
    (``.safetensors`` with safetensors, anything else with ``torch.save``)."""
    import torch
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(seed)
    net = ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=scale)
    state = {name: tensor.contiguous() for name, tensor in net.state_dict().items()}
    if Path(path).suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)
    return Path(path)
