"""A tiny random-weight ONNX image classifier, built with ``onnx`` the way a real one is laid out:
one picture in (NCHW or NHWC float32), one logit per class out (Flatten → MatMul → Add), and the
class labels and normalisation in the model's ``metadata_props``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SIZE = 8
LABELS = ["safe", "nsfw"]
MEAN = [0.5, 0.5, 0.5]
STD = [0.25, 0.25, 0.25]


def write_classifier(path: Path, *, layout: str = "NCHW", seed: int = 0, metadata: dict | None = None) -> np.ndarray:
    """Write the model at ``path``; return its weights (3*SIZE*SIZE × classes, in the input's order)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weights = rng.normal(0, 0.05, (3 * SIZE * SIZE, len(LABELS))).astype(np.float32)
    bias = np.zeros(len(LABELS), np.float32)
    shape = [1, 3, SIZE, SIZE] if layout == "NCHW" else [1, SIZE, SIZE, 3]
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["pixel_values"], ["flat"], axis=1),
         helper.make_node("MatMul", ["flat", "weights"], ["product"]),
         helper.make_node("Add", ["product", "bias"], ["logits"])],
        "tiny-image-check",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, len(LABELS)])],
        [numpy_helper.from_array(weights, "weights"), numpy_helper.from_array(bias, "bias")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="zishu-tests")
    model.ir_version = 8
    props = {"labels": json.dumps(LABELS), "mean": json.dumps(MEAN), "std": json.dumps(STD), "activation": "softmax"}
    helper.set_model_props(model, {**props, **(metadata or {})})
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return weights


def expected_scores(weights: np.ndarray, rgb: tuple[int, int, int], layout: str = "NCHW") -> dict[str, float]:
    """What the model must say of a picture of one colour, computed here from its weights."""
    pixel = (np.array(rgb, np.float32) / 255 - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
    x = np.repeat(pixel, SIZE * SIZE) if layout == "NCHW" else np.tile(pixel, SIZE * SIZE)
    logits = x.astype(np.float64) @ weights.astype(np.float64)
    exp = np.exp(logits - logits.max())
    return dict(zip(LABELS, (exp / exp.sum()).tolist(), strict=True))
