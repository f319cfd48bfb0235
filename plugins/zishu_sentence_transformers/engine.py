"""The ``sentence-transformers`` engine: loads a model folder offline with the
sentence-transformers library (its own modules: the transformer, its pooling, normalisation) and
embeds texts in batches, one unit-length vector per text, texts cut at ``EMBED_CONTEXT`` tokens."""

from __future__ import annotations

import threading
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from zishu.engines import Engine, EngineInfo, MemoryNeed, ModelRef, texts_to_embed
from zishu.errors import EngineError

from .memory import BATCH, EncoderShape, memory_need, weights_size

LIBRARIES = ("torch", "sentence_transformers")


class SentenceEmbedEngine(Engine):
    info = EngineInfo(kind="embedding", name="sentence-transformers", formats=("safetensors",),
                      capabilities=frozenset({"gpu"}),
                      description="sentence-transformers: embedding models in safetensors (BGE, MiniLM, …) "
                                  "for memory and search, on the CPU or a GPU.")

    def unavailable(self) -> str | None:
        missing = [name.replace("_", "-") for name in LIBRARIES if find_spec(name) is None]
        if missing:
            return f"needs {', '.join(missing)}: pip install 'zishu[embedding]'"
        return None

    def devices(self) -> tuple[str, ...]:
        if find_spec("torch") is None:
            return ("cpu",)
        import torch

        return ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)

    def folder(self, model: ModelRef) -> Path:
        """The model's folder: the one holding config.json (the version folder, or the path given)."""
        root = model.path if model.path.is_dir() else model.path.parent
        configs = sorted(root.rglob("config.json"), key=lambda p: len(p.parts))
        if not configs or not any(root.rglob("*.safetensors")):
            raise EngineError(f"{self.info.name}: {root} is not a sentence-transformers model folder "
                              "(config.json, the tokenizer and *.safetensors weights)")
        return configs[0].parent

    def estimate(self, model: ModelRef, device: str = "cpu") -> MemoryNeed:
        folder = self.folder(model)
        need = memory_need(EncoderShape.of_folder(folder, self.info.name), weights_size(folder), device)
        if device == "cpu":
            return MemoryNeed(ram=max(need.ram, (model.ram_mb or 0) * 2**20))
        return MemoryNeed(vram=max(need.vram, (model.vram_mb or 0) * 2**20), ram=need.ram)

    def load(self, model: ModelRef, device: str = "cpu") -> SentenceEmbedder:
        kind, _, index = device.partition(":")
        if kind not in ("cpu", "cuda") or (kind == "cpu" and index) or not (index == "" or index.isdigit()):
            raise EngineError(f"{self.info.name} runs on \"cpu\", \"cuda\" or \"cuda:N\", not {device!r}")
        if kind == "cuda" and "cuda" not in self.devices():
            raise EngineError(f"{self.info.name}: this torch cannot use a GPU (a CPU build, or no CUDA device), "
                              f"so it cannot run on {device}; use the cpu")
        folder = self.folder(model)
        shape = EncoderShape.of_folder(folder, self.info.name)
        from sentence_transformers import SentenceTransformer

        try:
            st = SentenceTransformer(str(folder), device=device, local_files_only=True, trust_remote_code=False)
        except (OSError, ValueError, RuntimeError, KeyError) as e:
            raise EngineError(f"{self.info.name} could not load {model.label} from {folder}: "
                              f"{type(e).__name__}: {e}") from e
        st.max_seq_length = shape.max_tokens
        return SentenceEmbedder(st, model.label)


class SentenceEmbedder:
    """A loaded model: ``embed(texts)`` gives one unit-length vector per text, one call at a time."""

    def __init__(self, model: Any, label: str) -> None:
        self.model: Any = model
        self.label = label
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> list[list[float]]:
        texts = texts_to_embed(texts, self.label)
        if not texts:
            return []
        with self._lock:
            if self.model is None:
                raise EngineError(f"{self.label} has been unloaded")
            vectors = self.model.encode(texts, batch_size=BATCH, normalize_embeddings=True,
                                        convert_to_numpy=True, show_progress_bar=False)
        return [[float(x) for x in vector] for vector in vectors]

    def close(self) -> None:
        with self._lock:
            self.model = None
