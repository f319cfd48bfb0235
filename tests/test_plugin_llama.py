"""The llama.cpp engines (plugins/zishu_llama) with the real llama-cpp-python, on tiny random GGUF
models and LoRAs that ``tiny_gguf`` writes: streaming, the model's own chat template, sampling
options, LoRAs, embeddings, memory estimates, every rejection, and the host's path to them."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tiny_gguf import CHATML_TEMPLATE, write_tiny_gguf, write_tiny_lora
from zishu.engines import ChatOptions, ModelCache, ModelRef, use
from zishu.errors import EngineError
from zishu_llama import LlamaChatEngine, LlamaEmbedEngine
from zishu_llama.gguf_header import read_header

# ChatML that refuses a role it does not know, as many real templates do
STRICT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('tiny template: no such role ' + message['role']) }}{% endif %}"
    + CHATML_TEMPLATE.removeprefix("{% for message in messages %}"))
OTHER_TEMPLATE = ("{% for message in messages %}### {{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
                  "### assistant:")
HELLO = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hello there!"}]
GREEDY = ChatOptions(max_tokens=24, temperature=0.0, seed=1)

chat_engine, embed_engine = LlamaChatEngine(), LlamaEmbedEngine()


def ref(path: Path, **kwargs) -> ModelRef:
    return ModelRef(key=str(path), path=path, format="gguf", **kwargs)


def reply(handle, messages=HELLO, options=GREEDY) -> str:
    return "".join(handle.chat(messages, options))


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("gguf")
    return {
        "base": write_tiny_gguf(folder / "base.gguf", chat_template=STRICT_TEMPLATE),
        "other": write_tiny_gguf(folder / "other.gguf", chat_template=OTHER_TEMPLATE),  # same weights
        "none": write_tiny_gguf(folder / "none.gguf", chat_template=None),
        "lora": write_tiny_lora(folder / "lora.gguf"),
        "lora32": write_tiny_lora(folder / "lora32.gguf", dim=32),
    }


@pytest.fixture(scope="module")
def base(files):
    handle = chat_engine.load(ref(files["base"]))
    yield handle
    handle.close()


def test_the_library_is_there_and_both_engines_describe_themselves():
    assert chat_engine.unavailable() is None and embed_engine.unavailable() is None
    assert (chat_engine.info.kind, chat_engine.info.formats) == ("llm", ("gguf",))
    assert chat_engine.info.capabilities == {"streaming", "lora", "gpu"}
    assert (embed_engine.info.kind, embed_engine.info.name, embed_engine.info.formats) == (
        "embedding", "llama-cpp-embed", ("gguf",))


def test_the_reply_streams_piece_by_piece_as_it_is_generated(base):
    llm = base.llama._llm
    stream = base.chat(HELLO, ChatOptions(max_tokens=24, temperature=0.0))
    first = next(stream)
    evaluated_at_first = llm.n_tokens  # the prompt and the tokens sampled so far
    rest = list(stream)
    assert first and rest, "the reply came in one piece"
    assert llm.n_tokens > evaluated_at_first, "the first piece came only after the whole reply was generated"
    assert first + "".join(rest) == reply(base)


def test_the_models_own_chat_template_renders_the_messages(base, files):
    with pytest.raises(EngineError, match="tiny template: no such role narrator"):
        reply(base, [{"role": "narrator", "content": "Once upon a time"}])
    other = chat_engine.load(ref(files["other"]))  # the same weights, another template
    try:
        assert reply(other) != reply(base)
    finally:
        other.close()


def test_a_gguf_without_a_template_is_answered_in_chatml(files):
    handle = chat_engine.load(ref(files["none"]))
    try:
        assert handle.llama._llm.chat_format == "chatml"
        assert reply(handle)
    finally:
        handle.close()


def test_a_stop_string_ends_the_reply_before_it(base):
    full = reply(base, options=ChatOptions(max_tokens=40, temperature=0.0))
    cut = next(i for i in range(2, len(full) - 2) if full[i:i + 2].strip() and full.find(full[i:i + 2]) == i)
    stopped = reply(base, options=ChatOptions(max_tokens=40, temperature=0.0, stop=(full[cut:cut + 2],)))
    assert stopped == full[:cut]


def test_max_tokens_bounds_the_reply(base):
    assert 0 < len(list(base.chat(HELLO, ChatOptions(max_tokens=5, temperature=0.0)))) <= 5
    assert len(list(base.chat(HELLO, ChatOptions(max_tokens=30, temperature=0.0)))) > 5


def test_a_seed_makes_sampling_reproducible(base):
    sampled = ChatOptions(max_tokens=24, temperature=1.0, seed=42)
    assert reply(base, options=sampled) == reply(base, options=sampled)
    assert reply(base) == reply(base)  # greedy
    by_seed = {reply(base, options=ChatOptions(max_tokens=24, temperature=1.0, seed=s)) for s in range(4)}
    assert len(by_seed) > 1


def test_a_lora_changes_the_reply_and_its_weight_scales_it(base, files):
    with_lora = chat_engine.load(ref(files["base"]).with_adapters([(ref(files["lora"]), 1.0)]))
    at_zero = chat_engine.load(ref(files["base"]).with_adapters([(ref(files["lora"]), 0.0)]))
    try:
        assert reply(with_lora) != reply(base)
        assert reply(at_zero) == reply(base)
    finally:
        with_lora.close()
        at_zero.close()


def test_what_is_not_a_fitting_lora_is_refused_clearly(files):
    def load_with(*adapters):
        return chat_engine.load(ref(files["base"]).with_adapters([(ref(files[a]), 1.0) for a in adapters]))

    with pytest.raises(EngineError, match=r"base.gguf is not a LoRA adapter: its general.type is 'model'"):
        load_with("base")
    with pytest.raises(EngineError, match=r"one LoRA at a time.*2 were given"):
        load_with("lora", "lora")
    with pytest.raises(EngineError, match=r"lora32.gguf: blk.0.attn_.* is 64×64 in the base model .*another base"):
        load_with("lora32")
    with pytest.raises(EngineError, match=r"lora.gguf is a GGUF 'adapter' file, not a model"):
        chat_engine.load(ref(files["lora"]))
    with pytest.raises(EngineError, match="llama-cpp-embed does not apply LoRAs"):
        embed_engine.load(ref(files["base"]).with_adapters([(ref(files["lora"]), 1.0)]))


@pytest.mark.parametrize("damage, message", [
    (lambda data: b"PK\x03\x04" + data[4:], "is not a GGUF file"),
    (lambda data: data[:300], "cut short or corrupt: its header runs past the end"),
    (lambda data: data[: len(data) * 3 // 4], "is cut short: its tensor data should reach past byte"),
    (lambda data: data.replace(b"llama", b"llamb", 1), r"llama.cpp could not load .* \(architecture 'llamb'\)"),
])
def test_a_broken_gguf_fails_through_the_cache_naming_the_engine(files, tmp_path, damage, message):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(damage(files["base"].read_bytes()))
    with pytest.raises(EngineError, match=f"^llama-cpp: .*{message}") as failed:
        ModelCache(ram_budget=2**30, vram_budget=0).get(chat_engine, ref(broken))
    assert str(broken) in str(failed.value)


def test_a_template_that_is_not_jinja_is_refused_at_load(tmp_path):
    broken = write_tiny_gguf(tmp_path / "bad-template.gguf", chat_template="{% for m in messages %}{{ m")
    with pytest.raises(EngineError, match=r"the chat template in .*bad-template\.gguf is not valid Jinja"):
        chat_engine.load(ref(broken))


def test_bad_messages_and_a_too_long_conversation_are_refused(base):
    for messages in ([], "hello", [{"role": "user"}], [{"role": "user", "content": 5}]):
        with pytest.raises(EngineError, match="message"):
            base.chat(messages)
    with pytest.raises(EngineError, match=r"cannot answer these messages: Requested tokens .* exceed context"):
        reply(base, [{"role": "user", "content": "word " * 100}])  # 500 tokens; the context is 256
    assert reply(base)  # the model still answers afterwards


def test_the_context_comes_from_the_manifest_or_the_model(files):
    assert read_header(files["base"], "test").context_length == 256
    for spec, n_ctx in (({}, 256), ({"context_length": 128}, 128)):
        handle = chat_engine.load(ref(files["base"], spec=spec))
        assert handle.llama._llm.context_params.n_ctx == n_ctx
        handle.close()
    with pytest.raises(EngineError, match=r"spec\.context_length must be a whole number of tokens .* not 'long'"):
        chat_engine.load(ref(files["base"], spec={"context_length": "long"}))


def test_the_estimate_counts_the_weights_and_the_kv_cache_for_the_context(files):
    model = ref(files["base"])
    kv_per_token = 2 * 2 * 4 * 16 * 2  # layers × (K and V) × kv heads × head dim × f16
    assert read_header(files["base"], "test").kv_bytes_per_token() == kv_per_token
    small, large = (chat_engine.estimate(ref(files["base"], spec={"context_length": n})) for n in (256, 512))
    assert large.ram - small.ram >= kv_per_token * 256
    assert small.ram > model.size_bytes + kv_per_token * 256 and small.vram == 0
    on_gpu = chat_engine.estimate(model, "cuda")
    assert on_gpu.vram > model.size_bytes + kv_per_token * 256 and 0 < on_gpu.ram < on_gpu.vram + 2**30
    assert chat_engine.estimate(ref(files["base"], ram_mb=4096)).ram == 4096 * 2**20  # the manifest's, larger


def test_only_cpu_and_cuda_devices_are_accepted(files):
    import llama_cpp

    with pytest.raises(EngineError, match='llama-cpp runs on "cpu", "cuda" or "cuda:N", not \'tpu\''):
        chat_engine.load(ref(files["base"]), "tpu")
    if not llama_cpp.llama_supports_gpu_offload():
        with pytest.raises(EngineError, match="built without GPU support, so it cannot run on cuda"):
            chat_engine.load(ref(files["base"]), "cuda")


def test_one_reply_at_a_time_per_model(base):
    expected = reply(base)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(reply(base))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 3
    open_reply = base.chat(HELLO, GREEDY)
    next(open_reply)
    with pytest.raises(EngineError, match="a reply from this model is still open in this thread"):
        reply(base)
    open_reply.close()
    assert reply(base) == expected


def test_closing_stops_an_open_reply_and_frees_the_model(files):
    handle = chat_engine.load(ref(files["base"]))
    stream = handle.chat(HELLO, ChatOptions(max_tokens=40, temperature=0.0))
    next(stream)
    handle.close()
    assert list(stream) == []  # it stops at the next token
    assert handle.llama._llm is None
    with pytest.raises(EngineError, match="has been unloaded"):
        reply(handle)


def test_embeddings_are_one_unit_vector_per_text(files):
    handle = embed_engine.load(ref(files["base"]))
    try:
        vectors = handle.embed(["a cat", "a dog", "a cat"])
        assert len(vectors) == 3 and all(len(v) == 64 for v in vectors)
        assert all(abs(sum(x * x for x in v) - 1.0) < 1e-4 for v in vectors)
        assert vectors[0] == pytest.approx(vectors[2], abs=1e-5) and vectors[0] != pytest.approx(vectors[1])
        assert handle.embed([]) == []
        with pytest.raises(EngineError, match="a list of texts, not one string"):
            handle.embed("a cat")
        with pytest.raises(EngineError, match="text 1 is ''"):
            handle.embed(["a cat", ""])
    finally:
        handle.close()


def test_the_host_lists_the_engines_and_loads_through_them(files, runtime):
    assert {"llama-cpp", "llama-cpp-embed"} <= set(runtime.engines.engines)
    ready = use(runtime, "llm", str(files["base"]))
    assert ready.engine.info.name == "llama-cpp" and ready.device == "cpu"
    assert reply(ready.handle)
    tuned = use(runtime, "llm", str(files["base"]), adapters=[(str(files["lora"]), 1.0)])
    assert tuned.handle is not ready.handle and reply(tuned.handle) != reply(ready.handle)
    vectors = use(runtime, "embedding", str(files["base"])).handle.embed(["hello"])
    assert len(vectors) == 1 and len(vectors[0]) == 64


# -- memory on an ordinary PC: the starter characters' real shapes ---------------------------------

QWEN_MANIFEST = Path(__file__).parent.parent / "registry_index/resources/qwen/qwen2-5-0-5b-instruct-gguf.yaml"
SIXTEEN_GB = 16 * 2**30


def write_shape_only_gguf(path: Path, *, layers: int, dim: int, heads: int, kv_heads: int, ffn: int,
                          context: int, vocab: int) -> Path:
    """A GGUF with a real model's metadata (its shape and vocabulary size) and no weights: what the
    estimate reads, without downloading the model."""
    import gguf

    writer = gguf.GGUFWriter(None, "qwen2")
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_context_length(context)
    writer.add_embedding_length(dim)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list([f"t{i}" for i in range(vocab)])
    writer.write_header_to_file(path)
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_the_starter_characters_llm_and_its_memory_fit_16_gb_without_a_gpu(tmp_path):
    import yaml

    from zishu.engines import ModelCache
    from zishu_llama.loading import context_length

    manifest = yaml.safe_load(QWEN_MANIFEST.read_text(encoding="utf-8"))
    spec = manifest["spec"]
    assert spec["context_length"] == 32768  # the catalog's chat context, which memory must not use
    # Qwen2.5-0.5B-Instruct's config.json: 24 layers, hidden 896, 14 query / 2 key-value heads, 151936 tokens
    file = write_shape_only_gguf(tmp_path / "qwen-shape.gguf", layers=24, dim=896, heads=14, kv_heads=2,
                                 ffn=4864, context=32768, vocab=151936)
    header = read_header(file, "test")
    assert header.kv_bytes_per_token() == 24 * 2 * 2 * 64 * 2
    model = ref(file, spec=spec)
    weights = spec["parameters"] * 2  # at most f16; the catalog's Q4_K_M file is smaller
    chat = chat_engine.memory_need(header, weights, context_length(model, header))
    assert embed_engine.context(model, header) == 512  # the fallback embeds with a sentence's context
    memory = embed_engine.memory_need(header, weights, embed_engine.context(model, header))
    assert memory.ram < 2**30 + weights  # before: 56.1 GB (batch = n_ctx = 32768)
    budget = ModelCache(ram_budget=int(SIXTEEN_GB * 0.8)).ram_budget  # the cache's default share of RAM
    assert chat.ram + memory.ram < budget, (chat.ram / 2**30, memory.ram / 2**30)
    # and estimate() (what the cache checks and the Engines panel shows) is the same function
    assert embed_engine.estimate(model).ram == embed_engine.memory_need(header, model.size_bytes, 512).ram


def test_embedding_opens_a_sentence_sized_context_whatever_the_chat_context(files):
    handle = embed_engine.load(ref(files["base"], spec={"context_length": 32768}))
    try:
        assert handle.llama._llm.context_params.n_ctx == 256  # the model's trained context, under 512
        assert handle.embed(["a cat " * 400])  # longer than the context: cut to fit
    finally:
        handle.close()
    big = write_tiny_gguf(files["base"].parent / "long.gguf", context=8192)
    handle = embed_engine.load(ref(big, spec={"context_length": 32768}))
    try:
        assert handle.llama._llm.context_params.n_ctx == 512
    finally:
        handle.close()


def test_a_cpu_build_of_llama_cpp_offers_only_the_cpu():
    import llama_cpp

    assert chat_engine.devices() == (("cpu", "cuda") if llama_cpp.llama_supports_gpu_offload() else ("cpu",))


LEAK_SCRIPT = """
import sys
from pathlib import Path
from zishu.engines import ChatOptions, ModelRef
from zishu_llama import LlamaChatEngine, LlamaEmbedEngine
file = Path(sys.argv[1])
ref = ModelRef(key=str(file), path=file, format="gguf")
embedder = LlamaEmbedEngine().load(ref)
embedder.embed(["hello", "world"])
chat = LlamaChatEngine().load(ref)
print("".join(chat.chat([{"role": "user", "content": "hi"}], ChatOptions(max_tokens=4, temperature=0.0, seed=1))))
embedder.close(); chat.close()
print("done")
"""


def test_llama_cpp_writes_nothing_to_the_terminal(files, tmp_path):
    """llama.cpp's warnings (e.g. the pooling one every embedding model without pooling_type gives)
    went to stderr through llama-cpp-python's own callback, into ``zishu chat``'s terminal."""
    import os
    import subprocess
    import sys

    script = tmp_path / "leak.py"
    script.write_text(LEAK_SCRIPT, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, str(script), str(files["none"])], capture_output=True, text=True,
                          env=env, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("done\n")
    assert done.stderr == ""


def test_llama_cpp_log_lines_arrive_in_python_logging_at_their_level(files, caplog):
    caplog.set_level("DEBUG", logger="zishu_llama.llama_cpp")
    embedder = embed_engine.load(ref(files["none"]))
    embedder.close()
    records = [r for r in caplog.records if r.name == "zishu_llama.llama_cpp"]
    warnings = [r.getMessage() for r in records if r.levelname == "WARNING"]
    assert any("pooling_type" in m for m in warnings), warnings
    assert any(r.levelname in ("INFO", "DEBUG") and "llama_context" in r.getMessage() for r in records)
    assert all("\n" not in r.getMessage() and r.getMessage().strip() for r in records)  # whole lines, one each
