"""An ONNX image classifier read as its own metadata describes it, run through onnxruntime.

The model takes one picture (a float32 tensor, NCHW or NHWC as its input shape says; a uint8 tensor
gets raw 0-255 values) and gives one score or logit per class. Its ``metadata_props`` say the rest:

    labels          the class names in output order: a JSON list or comma-separated (required)
    blocking        the labels that block in safe mode (default: every label but safe, sfw, neutral,
                    normal, drawing(s) and none)
    threshold       the score from which a blocking label blocks (default 0.5)
    image_size      "224" or "height,width" (default: the input shape's, else 224)
    mean, std       per-channel normalisation of 0-1 values, JSON lists of three (default 0 and 1)
    color           "RGB" (default) or "BGR"
    activation      "softmax", "sigmoid" or "none" (default: softmax, unless the outputs already are
                    probabilities summing to 1)

``load_classifier(path)`` takes an .onnx file or a folder holding one, and keeps each loaded model
(by path and modification time) for the next picture.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from zishu.errors import EngineError

SAFE_LABELS = {"safe", "sfw", "neutral", "normal", "drawing", "drawings", "none"}
_loaded: dict[tuple[str, float], Classifier] = {}
_lock = threading.Lock()


def _list(text: str) -> list[str]:
    text = text.strip()
    if text.startswith("["):
        return [str(v) for v in json.loads(text)]
    return [part.strip() for part in text.split(",") if part.strip()]


def _floats(text: str | None, default: list[float], what: str, where: Path) -> list[float]:
    if text is None:
        return default
    try:
        values = [float(v) for v in _list(text)]
    except ValueError:
        raise EngineError(f"{where}: metadata {what} must be numbers, e.g. [0.5, 0.5, 0.5]; got {text!r}") from None
    if len(values) == 1:
        values *= 3
    if len(values) != 3:
        raise EngineError(f"{where}: metadata {what} needs three values (one per channel); got {text!r}")
    return values


class Classifier:
    """One loaded model and how to feed it (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        self.path = path
        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types for a broken file
            raise EngineError(f"{path}: not a model onnxruntime can load ({type(e).__name__}: {e})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if not meta.get("labels"):
            raise EngineError(f"{path}: the model's metadata has no 'labels' (its class names, in output order)")
        self.labels = _list(meta["labels"])
        self.blocking = set(_list(meta["blocking"])) if meta.get("blocking") else {
            label for label in self.labels if label.casefold() not in SAFE_LABELS}
        try:
            self.threshold = float(meta.get("threshold", 0.5))
        except ValueError:
            raise EngineError(f"{path}: metadata threshold must be a number; got {meta['threshold']!r}") from None
        self.mean = _floats(meta.get("mean"), [0.0, 0.0, 0.0], "mean", path)
        self.std = _floats(meta.get("std"), [1.0, 1.0, 1.0], "std", path)
        self.bgr = meta.get("color", "RGB").strip().upper() == "BGR"
        self.activation = meta.get("activation", "").strip().lower()
        model_input = self.session.get_inputs()[0]
        self.input_name, shape = model_input.name, list(model_input.shape)
        self.uint8 = model_input.type == "tensor(uint8)"
        if len(shape) != 4 or 3 not in (shape[1], shape[3]):
            raise EngineError(f"{path}: the model's input {shape} is not one RGB picture (NCHW or NHWC)")
        self.channels_first = shape[1] == 3
        self.size = self._size(meta.get("image_size"), shape[2:] if self.channels_first else shape[1:3])

    def _size(self, text: str | None, dims: list[Any]) -> tuple[int, int]:
        """(height, width) the picture is resized to."""
        if text:
            try:
                values = [int(v) for v in _list(text)]
            except ValueError:
                raise EngineError(f"{self.path}: metadata image_size must be '224' or '224,224'") from None
            return (values[0], values[-1])
        if all(isinstance(d, int) and d > 0 for d in dims):
            return (int(dims[0]), int(dims[1]))
        return (224, 224)

    def tensor(self, image):
        """The picture as the model's input: RGB (or BGR), resized, scaled to 0-1 and normalised."""
        import numpy as np
        from PIL import Image

        height, width = self.size
        rgb = image.convert("RGB").resize((width, height), Image.Resampling.BILINEAR)
        pixels = np.asarray(rgb, dtype=np.float32)
        if self.bgr:
            pixels = pixels[..., ::-1]
        if self.uint8:
            data = pixels.astype(np.uint8)
        else:
            mean, std = np.array(self.mean, np.float32), np.array(self.std, np.float32)
            data = ((pixels / 255.0 - mean) / std).astype(np.float32)
        if self.channels_first:
            data = data.transpose(2, 0, 1)
        return np.ascontiguousarray(data[None])

    def scores(self, image) -> dict[str, float]:
        """label → probability for one picture."""
        import numpy as np

        output = np.asarray(self.session.run(None, {self.input_name: self.tensor(image)})[0], dtype=np.float64)
        values = output.reshape(-1)
        if values.size != len(self.labels):
            raise EngineError(f"{self.path}: the model gives {values.size} scores but its metadata names "
                              f"{len(self.labels)} labels")
        activation = self.activation or (
            "none" if values.min() >= 0 and values.max() <= 1 and abs(values.sum() - 1) < 1e-3 else "softmax")
        if activation == "softmax":
            exp = np.exp(values - values.max())
            values = exp / exp.sum()
        elif activation == "sigmoid":
            values = 1 / (1 + np.exp(-values))
        return {label: round(float(v), 6) for label, v in zip(self.labels, values, strict=True)}


def model_file(path: str | Path) -> Path:
    """The .onnx file at ``path``, or the one inside the folder ``path`` (model.onnx when several)."""
    found = Path(path)
    if found.is_dir():
        files = sorted(found.glob("*.onnx"))
        preferred = [f for f in files if f.name == "model.onnx"]
        if not files:
            raise EngineError(f"{found}: the folder holds no .onnx image classifier")
        if len(files) > 1 and not preferred:
            raise EngineError(f"{found}: the folder holds several .onnx files; name one in Settings")
        found = (preferred or files)[0]
    if not found.is_file():
        raise EngineError(f"{found}: no such image classifier file")
    return found


def load_classifier(path: str | Path) -> Classifier:
    """The classifier at ``path``, loaded once per file version."""
    file = model_file(path)
    key = (str(file.resolve()), file.stat().st_mtime)
    with _lock:
        if key not in _loaded:
            _loaded[key] = Classifier(file)
        return _loaded[key]
