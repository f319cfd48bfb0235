"""Tiny random-weight GGUF files for tests and benchmarks, written with the ``gguf`` package: a
llama-architecture chat model with a byte-level vocabulary (``write_tiny_gguf``) and a GGUF LoRA
adapter for it (``write_tiny_lora``). The weights are random, so the text is noise, but every
parameter is honest: larger ``dim``/``layers`` give a model that really costs what its size says.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np

# ChatML, as many chat models ship it: a role header, the content, an end-of-turn marker.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

SPECIAL_TOKENS = ("<unk>", "<s>", "</s>")  # ids 0, 1, 2; the 256 byte tokens follow
VOCAB_SIZE = len(SPECIAL_TOKENS) + 256
LORA_TARGETS = ("attn_q", "attn_k", "attn_v", "attn_output")


def layer_shapes(dim: int, heads: int, kv_heads: int | None, ffn: int) -> dict[str, tuple[int, int]]:
    """The (out, in) shape of each weight matrix in one llama block, as numpy holds it."""
    if dim % heads:
        raise ValueError(f"dim {dim} is not a multiple of heads {heads}")
    kv_dim = (dim // heads) * (kv_heads or heads)
    return {"attn_q": (dim, dim), "attn_k": (kv_dim, dim), "attn_v": (kv_dim, dim), "attn_output": (dim, dim),
            "ffn_gate": (ffn, dim), "ffn_up": (ffn, dim), "ffn_down": (dim, ffn)}


def write_tiny_gguf(path: str | os.PathLike, *, dim: int = 64, layers: int = 2, heads: int = 4,
                    kv_heads: int | None = None, ffn: int = 128, context: int = 256,
                    chat_template: str | None = CHATML_TEMPLATE, seed: int = 0, script: str | None = None) -> Path:
    """A llama model with random f32 weights; ``chat_template=None`` leaves the template out.

    ``script``: instead, a model that always answers with that text (ASCII, no character twice,
    e.g. "[joy]Hi,cat."): its blocks are zero, so each token's embedding reaches the output
    unchanged, and the output row of each script character points at the embedding of the one
    before it (the first follows the newline that ends the chat template's prompt; the end-of-text
    token follows the last). A bigram model, greedy-decoded by the real llama.cpp."""
    import gguf

    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(None, "llama")
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name("zishu tiny random llama")
    writer.add_context_length(context)
    writer.add_embedding_length(dim)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads or heads)
    writer.add_rope_dimension_count(dim // heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)

    writer.add_tokenizer_model("llama")
    writer.add_token_list([*SPECIAL_TOKENS, *(f"<0x{b:02X}>" for b in range(256))])
    writer.add_token_scores([0.0] * VOCAB_SIZE)  # floats: the writer refuses a list of ints
    writer.add_token_types([gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
                           + [gguf.TokenType.BYTE] * 256)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    if chat_template is not None:
        writer.add_chat_template(chat_template)

    def weight(*shape: int) -> np.ndarray:
        if script is not None and shape != (VOCAB_SIZE, dim):
            return np.zeros(shape, dtype=np.float32)
        return rng.normal(0.0, shape[-1] ** -0.5, size=shape).astype(np.float32)

    embeddings = weight(VOCAB_SIZE, dim)
    writer.add_tensor("token_embd.weight", embeddings)
    for i in range(layers):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(dim, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(dim, dtype=np.float32))
        for name, shape in layer_shapes(dim, heads, kv_heads, ffn).items():
            writer.add_tensor(f"blk.{i}.{name}.weight", weight(*shape))
    writer.add_tensor("output_norm.weight", np.ones(dim, dtype=np.float32))
    if script is None:
        output = weight(VOCAB_SIZE, dim) * _printable_rows()[:, None]
    else:
        output = _script_rows(embeddings, script)
    writer.add_tensor("output.weight", output)
    return _write(writer, Path(path))


def _script_rows(embeddings: np.ndarray, script: str) -> np.ndarray:
    if not script.isascii() or len(set(script)) != len(script) or "\n" in script:
        raise ValueError(f"a script is ASCII with no character twice and no newline: {script!r}")
    byte = {c: len(SPECIAL_TOKENS) + ord(c) for c in "\n" + script}
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    rows = np.zeros_like(embeddings)
    chain = ["\n", *script]
    for before, after in itertools.pairwise(chain):
        rows[byte[after]] = unit[byte[before]] * 4.0
    rows[2] = unit[byte[script[-1]]] * 4.0  # then the end-of-text token
    return rows


def _printable_rows() -> np.ndarray:
    """1 for the tokens of printable ASCII and newline, 0 for the rest: their logits stay 0 while
    about half the printable ones are above it, so greedy and top-k sampling emit readable noise
    that streams token by token (a lone byte of a UTF-8 sequence would be held back until it is
    complete), and never the end-of-text token, so a reply runs to max_tokens (or a stop string)."""
    rows = np.zeros(VOCAB_SIZE, dtype=np.float32)
    rows[[len(SPECIAL_TOKENS) + b for b in (0x0A, *range(0x20, 0x7F))]] = 1.0
    return rows


def write_tiny_lora(path: str | os.PathLike, *, dim: int = 64, layers: int = 2, heads: int = 4,
                    kv_heads: int | None = None, ffn: int = 128, rank: int = 4, alpha: float = 8.0,
                    targets: tuple[str, ...] = LORA_TARGETS, seed: int = 1) -> Path:
    """A GGUF LoRA adapter for the model ``write_tiny_gguf`` writes with the same dimensions:
    ``blk.N.<target>.weight.lora_a`` is (rank, in) and ``.lora_b`` is (out, rank), as llama.cpp
    expects; both random (not B = 0 as training starts), so the adapter visibly changes the output."""
    import gguf

    rng = np.random.default_rng(seed)
    shapes = layer_shapes(dim, heads, kv_heads, ffn)
    writer = gguf.GGUFWriter(None, "llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
    for i in range(layers):
        for target in targets:
            out_dim, in_dim = shapes[target]
            writer.add_tensor(f"blk.{i}.{target}.weight.lora_a",
                              rng.normal(0.0, in_dim ** -0.5, size=(rank, in_dim)).astype(np.float32))
            writer.add_tensor(f"blk.{i}.{target}.weight.lora_b",
                              rng.normal(0.0, rank ** -0.5, size=(out_dim, rank)).astype(np.float32))
    return _write(writer, Path(path))


def _write(writer, path: Path) -> Path:
    """Write through a temporary name, so a failure never leaves a partial file at ``path``."""
    partial = path.with_name(path.name + ".partial")
    try:
        writer.write_header_to_file(partial)
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path
