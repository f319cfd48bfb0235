"""How much memory a sentence-transformers model needs, from its folder's configuration files
alone (``config.json``, ``sentence_bert_config.json``) and the size of its weights, so the host
can check the budget before torch is imported. ``memory_need`` is the one function behind the
figure the host checks and the Engines panel shows; bench/memory_estimate.py compares it with the
measured resident memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from zishu.engines import MemoryNeed
from zishu.errors import EngineError

EMBED_CONTEXT = 512  # tokens: the most a text is given (what BERT-style embedders are trained on)
BATCH = 8  # texts encoded together
# What importing torch, transformers and sentence-transformers adds to a process before any model:
# about 430 MB on Linux with the CPU build of torch (bench/memory_estimate.py measures it).
LIBRARY_RAM = 400 * 2**20
HOST_RAM_ON_GPU = 256 * 2**20  # the CUDA context's share of RAM besides the library


@dataclass(frozen=True)
class EncoderShape:
    """What the estimate needs of a transformer encoder: its width, heads, layers, feed-forward
    width and the tokens it reads at most."""

    hidden: int
    heads: int
    layers: int
    intermediate: int
    max_tokens: int

    @classmethod
    def of_folder(cls, folder: Path, who: str) -> EncoderShape:
        config = _json(folder / "config.json", who)
        try:
            hidden = int(config["hidden_size"])
            heads = int(config["num_attention_heads"])
            layers = int(config["num_hidden_layers"])
        except (KeyError, TypeError, ValueError) as e:
            raise EngineError(f"{who}: {folder / 'config.json'} is not a transformer encoder's configuration "
                              f"(hidden_size, num_attention_heads, num_hidden_layers): {e}") from e
        intermediate = int(config.get("intermediate_size") or 4 * hidden)
        positions = int(config.get("max_position_embeddings") or EMBED_CONTEXT)
        st_config = folder / "sentence_bert_config.json"
        wanted = _json(st_config, who).get("max_seq_length") if st_config.is_file() else None
        max_tokens = min(EMBED_CONTEXT, positions, int(wanted or EMBED_CONTEXT))
        return cls(hidden, heads, layers, intermediate, max_tokens)


def memory_need(shape: EncoderShape, weights: int, device: str = "cpu") -> MemoryNeed:
    """Bytes to load weights of ``weights`` bytes and encode ``BATCH`` texts of the longest length:
    the weights + one layer's activations at a time in f32 (hidden states, attention scores, the
    feed-forward) with the batch's input and output + the library itself."""
    tokens = BATCH * shape.max_tokens
    per_layer = tokens * (6 * shape.hidden + shape.intermediate + shape.heads * shape.max_tokens) * 4
    activations = 2 * per_layer
    if device == "cpu":
        return MemoryNeed(ram=weights + activations + LIBRARY_RAM)
    return MemoryNeed(vram=weights + activations, ram=LIBRARY_RAM + HOST_RAM_ON_GPU)


def weights_size(folder: Path) -> int:
    """The bytes of the model's weight files (safetensors)."""
    return sum(p.stat().st_size for p in folder.rglob("*.safetensors") if p.is_file())


def _json(path: Path, who: str) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EngineError(f"{who}: {path.parent} has no {path.name}; a sentence-transformers model folder "
                          "has config.json, the tokenizer and *.safetensors weights") from None
    except (OSError, ValueError) as e:
        raise EngineError(f"{who}: {path} is not readable JSON: {e}") from e
    if not isinstance(value, dict):
        raise EngineError(f"{who}: {path} is not a JSON object")
    return value
