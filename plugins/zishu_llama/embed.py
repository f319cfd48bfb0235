"""The ``llama-cpp-embed`` engine: a GGUF model turning texts into vectors, one pooled and
L2-normalised vector per text (the model's own pooling, or the mean of its token vectors when the
GGUF names none, as a chat model's does).

Sentences need a few hundred tokens, never a chat model's context: the engine opens every model
with at most ``EMBED_CONTEXT`` tokens (less when the model was trained on less), whatever the
manifest's ``spec.context_length`` says for chatting, and cuts longer texts to fit. Its memory
estimate follows, since the compute buffers grow with the context squared."""

from __future__ import annotations

from zishu.engines import EngineInfo, ModelRef, texts_to_embed
from zishu.errors import EngineError

from .gguf_header import GGUFHeader
from .loading import LlamaEngine, OneAtATime, context_length

EMBED_CONTEXT = 512  # tokens: what sentence-embedding models are trained on (BERT, BGE)


class LlamaEmbedEngine(LlamaEngine):
    info = EngineInfo(kind="embedding", name="llama-cpp-embed", formats=("gguf",),
                      description="llama.cpp: GGUF embedding models (BERT, Nomic, Qwen3 embedding, …) for memory "
                                  "and search.")

    def context(self, model: ModelRef, header: GGUFHeader) -> int:
        return min(EMBED_CONTEXT, context_length(model, header), int(header.context_length or EMBED_CONTEXT))

    def batch_size(self, n_ctx: int) -> int:
        return n_ctx  # a whole text in one batch: models that attend both ways need it so

    def load(self, model: ModelRef, device: str = "cpu") -> LlamaEmbedder:
        import llama_cpp

        file, header = self.header(model)
        pooling = (llama_cpp.LLAMA_POOLING_TYPE_MEAN if not header.arch_field("pooling_type")
                   else llama_cpp.LLAMA_POOLING_TYPE_UNSPECIFIED)
        llm = self.open(model, file, header, device, embedding=True, pooling_type=pooling)
        return LlamaEmbedder(OneAtATime(llm, model.label))


class LlamaEmbedder:
    """A loaded embedding model: ``embed(texts)`` gives one unit-length vector per text; a text
    longer than the context is cut to fit."""

    def __init__(self, llama: OneAtATime) -> None:
        self.llama = llama

    def embed(self, texts: list[str]) -> list[list[float]]:
        texts = texts_to_embed(texts, self.llama.label)
        if not texts:
            return []
        with self.llama.use() as llm:
            try:
                vectors = llm.embed(texts, normalize=True)
            except (ValueError, RuntimeError) as e:
                raise EngineError(f"llama.cpp failed while {self.llama.label} was embedding: {e}") from e
        return [[float(x) for x in vector] for vector in vectors]

    def close(self) -> None:
        self.llama.close()
