"""A tiny random-weight sentence-transformers model for tests and benchmarks, written with the real
libraries (transformers' BertModel, sentence-transformers' own modules and ``save``) in the folder
layout the catalog's BGE entry has: config.json, model.safetensors, the tokenizer, modules.json,
sentence_bert_config.json and 1_Pooling/ (CLS pooling, then normalisation, as BGE does)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# a WordPiece vocabulary: BERT's special tokens, ASCII letters and digits, a few Chinese characters
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz0123456789",
         *"你好我是小雨记得喜欢猫狗海天"]


def write_tiny_sentence_model(folder: str | os.PathLike, *, hidden: int = 32, layers: int = 2, heads: int = 2,
                              intermediate: int = 64, max_tokens: int = 512, seed: int = 0) -> Path:
    """Write the model into ``folder`` (created) and return it."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = Path(folder)
    raw = folder.parent / f".{folder.name}-raw"
    raw.mkdir(parents=True, exist_ok=True)
    (raw / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(raw / "vocab.txt"), model_max_length=max_tokens).save_pretrained(raw)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=intermediate,
                        max_position_embeddings=max_tokens)
    BertModel(config).save_pretrained(raw, safe_serialization=True)
    transformer = Transformer(str(raw), max_seq_length=max_tokens)
    modules = [transformer, Pooling(hidden, pooling_mode="cls"), Normalize()]
    SentenceTransformer(modules=modules, device="cpu").save(str(folder), safe_serialization=True)
    shutil.rmtree(raw)
    return folder
