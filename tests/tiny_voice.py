"""A tiny random-weight Piper voice for tests and benchmarks (``write_tiny_piper_voice``): a real
ONNX model, written with ``onnx.helper``, with exactly Piper's inputs and output, and the
``.onnx.json`` config beside it.

The model looks up a random frame of ``hop`` samples for each phoneme id (plus a random frame per
speaker when it has several), lays the frames end to end and stretches them by ``length_scale``
(``scales[1]``), so the audio is noise but its length follows the phonemes and the speed like a
real voice's. Its ``phoneme_id_map`` holds every IPA symbol espeak-ng writes for a sample text in
the voice's language, as the phonemizer sees it (decomposed code points, one per phoneme).
"""

from __future__ import annotations

import json
import os
import unicodedata
from pathlib import Path

import numpy as np

SAMPLE_TEXTS = {
    "cmn": "你好，我是小雨。今天天气很好！我们一起去公园散步吧？一二三四五六七八九十。Hello world, how are you?",
    "en": "Hello there, how are you? The quick brown fox jumps over the lazy dog; pack my box with five dozen jugs!",
}
# Piper's own map starts like this: pad, start, end, space, then punctuation.
SPECIAL_SYMBOLS = ["_", "^", "$", " ", "!", "'", "(", ")", ",", "-", ".", ":", ";", "?"]


def ipa_symbols(espeak_voice: str, text: str) -> list[str]:
    """The phonemes the zishu_tts phonemizer produces for ``text`` in ``espeak_voice``."""
    from zishu_tts.espeak import ipa_clauses, usable_voice

    found = set(unicodedata.normalize("NFD", "".join(ipa_clauses(text, usable_voice(espeak_voice)))))
    return sorted(found - set(SPECIAL_SYMBOLS) - {"\n"})


def write_tiny_piper_voice(folder: str | os.PathLike, name: str = "zh_CN-tiny-x_low", espeak_voice: str = "cmn",
                           sample_rate: int = 16000, seed: int = 0, *, hop: int = 64,
                           speakers: tuple[str, ...] = ()) -> Path:
    """Write ``<name>.onnx`` and ``<name>.onnx.json`` into ``folder`` (created); return the folder.
    ``speakers`` (two or more names) makes a multi-speaker voice that takes a ``sid`` input."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    text = SAMPLE_TEXTS["cmn" if espeak_voice.startswith(("cmn", "zh")) else "en"]
    symbols = SPECIAL_SYMBOLS + ipa_symbols(espeak_voice, text)
    id_map = {symbol: [i] for i, symbol in enumerate(symbols)}
    rng = np.random.default_rng(seed)
    model = _model(rng.uniform(-0.5, 0.5, (len(symbols), hop)).astype(np.float32),
                   rng.uniform(-0.3, 0.3, (len(speakers), hop)).astype(np.float32) if speakers else None)
    (folder / f"{name}.onnx").write_bytes(model.SerializeToString())
    config = {
        "audio": {"sample_rate": sample_rate, "quality": "x_low"},
        "espeak": {"voice": espeak_voice},
        "inference": {"noise_scale": 0.667, "length_scale": 1, "noise_w": 0.8},
        "phoneme_type": "espeak",
        "phoneme_map": {},
        "phoneme_id_map": id_map,
        "num_symbols": len(symbols),
        "num_speakers": max(1, len(speakers)),
        "speaker_id_map": {speaker: i for i, speaker in enumerate(speakers)},
        "piper_version": "1.0.0",
    }
    (folder / f"{name}.onnx.json").write_text(json.dumps(config, ensure_ascii=False, indent=2), encoding="utf-8")
    return folder


def _model(table: np.ndarray, speaker_table: np.ndarray | None):
    """input [1, N] -> frames [1, N, hop] (+ speaker frame) -> [1, N*hop] -> stretched by
    length_scale to [1, floor(N*hop*length_scale)] -> output [1, 1, T]."""
    from onnx import TensorProto, helper, numpy_helper

    def const(name, value, dtype):
        return numpy_helper.from_array(np.array(value, dtype=dtype), name)

    inputs = [helper.make_tensor_value_info("input", TensorProto.INT64, [1, "phonemes"]),
              helper.make_tensor_value_info("input_lengths", TensorProto.INT64, [1]),
              helper.make_tensor_value_info("scales", TensorProto.FLOAT, [3])]
    weights = [numpy_helper.from_array(table, "phoneme_frames"), const("flat_shape", [1, -1], np.int64),
               const("one_index", 1, np.int64), const("zero", 0.0, np.float32), const("step", 1.0, np.float32),
               const("last_offset", 1, np.int64), const("axis_1", [1], np.int64)]
    nodes = [helper.make_node("Gather", ["phoneme_frames", "input"], ["frames"])]
    frames = "frames"
    if speaker_table is not None:
        inputs.append(helper.make_tensor_value_info("sid", TensorProto.INT64, [1]))
        weights.append(numpy_helper.from_array(speaker_table, "speaker_frames"))
        nodes += [helper.make_node("Gather", ["speaker_frames", "sid"], ["speaker"]),  # [1, hop]
                  helper.make_node("Unsqueeze", ["speaker", "axis_1"], ["speaker_3d"]),  # [1, 1, hop]
                  helper.make_node("Add", ["frames", "speaker_3d"], ["voiced"])]
        frames = "voiced"
    nodes += [
        helper.make_node("Reshape", [frames, "flat_shape"], ["flat"]),
        helper.make_node("Gather", ["scales", "one_index"], ["length_scale"]),
        helper.make_node("Shape", ["flat"], ["flat_dims"]),
        helper.make_node("Gather", ["flat_dims", "one_index"], ["samples"]),
        helper.make_node("Cast", ["samples"], ["samples_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["samples_f", "length_scale"], ["stretched_f"]),
        helper.make_node("Floor", ["stretched_f"], ["stretched"]),
        helper.make_node("Range", ["zero", "stretched", "step"], ["times"]),
        helper.make_node("Div", ["times", "length_scale"], ["source_f"]),
        helper.make_node("Floor", ["source_f"], ["source_floor"]),
        helper.make_node("Cast", ["source_floor"], ["source"], to=TensorProto.INT64),
        helper.make_node("Sub", ["samples", "last_offset"], ["last"]),
        helper.make_node("Min", ["source", "last"], ["index"]),
        helper.make_node("Gather", ["flat", "index"], ["audio"], axis=1),
        helper.make_node("Unsqueeze", ["audio", "axis_1"], ["output"]),
    ]
    output = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, "samples"])
    graph = helper.make_graph(nodes, "tiny_piper_voice", inputs, [output], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="zishu-tests")
    model.ir_version = 8
    from onnx import checker

    checker.check_model(model)
    return model
