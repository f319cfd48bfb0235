"""The sentence-transformers embedding engine (plugins/zishu_sentence_transformers) with the real
library, on a tiny random BERT that ``tiny_sentence`` writes in the catalog's BGE layout: vectors,
the context cut, the memory estimate from the folder's configuration, rejections, and the host
choosing it for a safetensors embedding model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from zishu.engines import ModelRef, use
from zishu.errors import EngineError
from zishu_sentence_transformers import SentenceEmbedEngine
from zishu_sentence_transformers.memory import LIBRARY_RAM, EncoderShape, memory_need

pytest.importorskip("sentence_transformers", reason="the sentence-transformers engine's library is not installed")

engine = SentenceEmbedEngine()
BGE_MANIFEST = Path(__file__).parent.parent / "registry_index/resources/baai/bge-small-zh-v1-5.yaml"


def ref(path: Path, **kwargs) -> ModelRef:
    return ModelRef(key=str(path), path=path, format="safetensors", role="embedding", **kwargs)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    from tiny_sentence import write_tiny_sentence_model

    made = write_tiny_sentence_model(tmp_path_factory.mktemp("st") / "tiny-bge")
    shutil.rmtree(made / "2_Normalize")  # the catalog's BGE entry has no such folder either
    (made / "manifest.json").write_text("{}")  # as installed: the manifest beside the files
    return made


def test_the_library_is_there_and_the_engine_loads_the_catalogs_format():
    import yaml

    assert engine.unavailable() is None
    spec = yaml.safe_load(BGE_MANIFEST.read_text(encoding="utf-8"))["spec"]
    assert engine.info.kind == spec["role"] and spec["format"] in engine.info.formats


def test_embeddings_are_one_unit_vector_per_text(folder):
    handle = engine.load(ref(folder))
    try:
        vectors = handle.embed(["a cat", "你好我是小雨", "a cat", "b" * 2000])  # the last is cut to 512 tokens
        assert len(vectors) == 4 and all(len(v) == 32 for v in vectors)
        assert all(abs(sum(x * x for x in v) - 1.0) < 1e-4 for v in vectors)
        assert vectors[0] == pytest.approx(vectors[2], abs=1e-5) and vectors[0] != pytest.approx(vectors[1])
        assert handle.model.max_seq_length == 512
        assert handle.embed([]) == []
        with pytest.raises(EngineError, match="a list of texts, not one string"):
            handle.embed("a cat")
        with pytest.raises(EngineError, match="text 1 is ''"):
            handle.embed(["a cat", ""])
    finally:
        handle.close()
    with pytest.raises(EngineError, match="has been unloaded"):
        handle.embed(["a cat"])


def test_the_estimate_reads_the_folder_and_counts_the_library(folder):
    shape = EncoderShape.of_folder(folder, "test")
    assert shape == EncoderShape(hidden=32, heads=2, layers=2, intermediate=64, max_tokens=512)
    need = engine.estimate(ref(folder))
    weights = (folder / "model.safetensors").stat().st_size
    assert need == memory_need(shape, weights) and LIBRARY_RAM + weights < need.ram < LIBRARY_RAM + 64 * 2**20
    on_gpu = engine.estimate(ref(folder), "cuda")
    assert 0 < on_gpu.vram < need.ram and on_gpu.ram > LIBRARY_RAM
    assert engine.estimate(ref(folder, ram_mb=4096)).ram == 4096 * 2**20  # the manifest's, larger
    # BGE small zh's real shape (its config.json): 4 layers, hidden 512, 8 heads, 2048 wide, 512 tokens
    bge = memory_need(EncoderShape(512, 8, 4, 2048, 512), 96 * 2**20)
    assert bge.ram < 2**30


def test_what_is_not_a_model_folder_or_device_is_refused(folder, tmp_path):
    with pytest.raises(EngineError, match="is not a sentence-transformers model folder"):
        engine.load(ref(tmp_path))
    with pytest.raises(EngineError, match=r'runs on "cpu", "cuda" or "cuda:N", not \'tpu\''):
        engine.load(ref(folder), "tpu")
    if "cuda" not in engine.devices():
        with pytest.raises(EngineError, match="this torch cannot use a GPU"):
            engine.load(ref(folder), "cuda")


def test_the_host_chooses_it_for_a_safetensors_embedding_model(folder, runtime):
    runtime.engines.register(SentenceEmbedEngine())  # as its entry point does once installed
    ready = use(runtime, "embedding", str(folder))
    assert ready.engine.info.name == "sentence-transformers" and ready.device == "cpu"
    assert len(ready.handle.embed(["hello"])[0]) == 32
    loaded = runtime.models.loaded()
    assert loaded[0]["ram_bytes"] == engine.estimate(ref(folder)).ram  # the Engines panel's figure
