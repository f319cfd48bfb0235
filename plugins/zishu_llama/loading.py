"""What both llama.cpp engines share: the checks made before llama.cpp sees a file, the context
length, the devices this build of llama-cpp-python can use, the device and thread settings, the
memory estimate (``memory_need``, the one function behind every figure the host shows), opening the
model with llama-cpp-python (its log routed to Python logging by ``logs``), and ``OneAtATime``,
which lets one thread at a time use a loaded model.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from zishu.engines import Engine, MemoryNeed, ModelRef
from zishu.errors import EngineError

from .gguf_header import GGUFHeader, read_header
from .logs import route_llama_logs

DEFAULT_CONTEXT = 4096  # the most context used unless the manifest asks for more (spec.context_length)
CONTEXT_PADDING = 256  # llama.cpp rounds the KV cache up to a multiple of this many tokens
MAX_BATCH = 512  # llama-cpp-python's default batch for prompts
HOST_RAM_ON_GPU = 256 * 2**20  # what a model on the GPU still keeps in RAM besides its logits
# What loading the llama.cpp library and a first model adds to the process besides the model's own
# buffers (the shared library, its CPU back end, thread pools): about 25 MB measured by
# bench/memory_estimate.py; counted so that the estimate of a small model is not a tenth of its cost.
LIBRARY_RAM = 32 * 2**20


class LlamaEngine(Engine):
    """The base of both engines: ``open`` loads a checked GGUF with the settings below."""

    def unavailable(self) -> str | None:
        if importlib.util.find_spec("llama_cpp") is None:
            return "needs llama-cpp-python: pip install 'zishu[llm]'"
        return None

    def header(self, model: ModelRef) -> tuple[Path, GGUFHeader]:
        """The model's .gguf file and its header, checked to be a model (not an adapter)."""
        file = model.file(".gguf")
        header = read_header(file, self.info.name)
        if header.type != "model":
            raise EngineError(f"{self.info.name}: {file} is a GGUF {header.type!r} file, not a model"
                              + (" (a LoRA goes in as an adapter of a base model)" if header.type == "adapter" else ""))
        return file, header

    def devices(self) -> tuple[str, ...]:
        """"cpu", and "cuda" only when this llama-cpp-python was built with GPU offload (what a plain
        ``pip install`` gives is a CPU build, even on a machine with a GPU)."""
        if importlib.util.find_spec("llama_cpp") is None:
            return ("cpu",)
        import llama_cpp

        return ("cpu", "cuda") if llama_cpp.llama_supports_gpu_offload() else ("cpu",)

    def context(self, model: ModelRef, header: GGUFHeader) -> int:
        """The context (in tokens) this engine opens ``model`` with."""
        return context_length(model, header)

    def estimate(self, model: ModelRef, device: str = "cpu") -> MemoryNeed:
        """``memory_need`` for the model's files and the context this engine will use; the
        manifest's own figure when that is larger."""
        _, header = self.header(model)
        need = self.memory_need(header, model.size_bytes, self.context(model, header), device)
        if device == "cpu":
            return MemoryNeed(ram=max(need.ram, (model.ram_mb or 0) * 2**20))
        return MemoryNeed(vram=max(need.vram, (model.vram_mb or 0) * 2**20), ram=need.ram)

    def memory_need(self, header: GGUFHeader, weights: int, n_ctx: int, device: str = "cpu") -> MemoryNeed:
        """Bytes a model of ``header``'s shape needs with ``weights`` bytes of files and a context of
        ``n_ctx`` tokens: the weights + the f16 KV cache + the compute buffers llama.cpp reserves
        (outputs and attention scores for one batch) + the logits array llama-cpp-python keeps in
        RAM + the library itself. Pure arithmetic on the header, so it can be checked for a real
        model's shape without its file."""
        batch = self.batch_size(n_ctx)
        heads = header.arch_field("attention.head_count", 1)
        heads = max(heads) if isinstance(heads, list) else heads
        embd = int(header.arch_field("embedding_length", 0))
        outputs = embd if self.info.kind == "embedding" else header.vocab_size
        compute = batch * (outputs + n_ctx * heads + 4 * embd) * 4
        kv_cells = -(-n_ctx // CONTEXT_PADDING) * CONTEXT_PADDING
        on_device = weights + header.kv_bytes_per_token() * kv_cells + compute
        host_logits = 0 if self.info.kind == "embedding" else min(n_ctx, MAX_BATCH) * header.vocab_size * 4
        if device == "cpu":
            return MemoryNeed(ram=on_device + host_logits + LIBRARY_RAM)
        return MemoryNeed(vram=on_device, ram=HOST_RAM_ON_GPU + host_logits + LIBRARY_RAM)

    def batch_size(self, n_ctx: int) -> int:
        return min(n_ctx, MAX_BATCH)

    def open(self, model: ModelRef, file: Path, header: GGUFHeader, device: str, **settings):
        """A ``llama_cpp.Llama`` for ``model`` (its checked ``file`` and ``header``) on ``device``;
        ``settings`` add to the common ones."""
        if model.adapters and "lora" not in self.info.capabilities:
            raise EngineError(f"{self.info.name} does not apply LoRAs")
        n_ctx = self.context(model, header)
        batch = self.batch_size(n_ctx)
        from llama_cpp import Llama

        route_llama_logs()  # llama.cpp's messages go to Python logging, not the terminal
        try:
            return Llama(model_path=str(file), n_ctx=n_ctx, n_batch=batch, n_ubatch=batch, verbose=False,
                         **device_settings(device, self.info.name), **thread_settings(), **settings)
        except ValueError as e:
            if "llama_context" in str(e):  # "Failed to create llama_context"
                raise EngineError(f"{self.info.name}: llama.cpp loaded {file} but could not make room for a "
                                  f"context of {n_ctx} tokens on {device}; set a smaller spec.context_length") from e
            raise EngineError(f"{self.info.name}: llama.cpp could not load {file} (architecture "
                              f"{header.arch!r}): the file is damaged, or made for a newer llama.cpp") from e


def context_length(model: ModelRef, header: GGUFHeader) -> int:
    """The manifest's spec.context_length when it gives one, else the model's trained context up to
    DEFAULT_CONTEXT (the KV cache grows with it; most chats need far less than a model allows)."""
    wanted = model.spec.get("context_length")
    if wanted is not None:
        if not isinstance(wanted, int) or isinstance(wanted, bool) or wanted < 16:
            raise EngineError(f"{model.label}: spec.context_length must be a whole number of tokens "
                              f"(16 or more), not {wanted!r}")
        return wanted
    return min(DEFAULT_CONTEXT, int(header.context_length or DEFAULT_CONTEXT))


def device_settings(device: str, who: str) -> dict:
    """All layers on the GPU for "cuda" (every GPU) or "cuda:N" (that one only); none on "cpu"."""
    if device == "cpu":
        return {"n_gpu_layers": 0}
    kind, _, index = device.partition(":")
    if kind != "cuda" or not (index == "" or index.isdigit()):
        raise EngineError(f"{who} runs on \"cpu\", \"cuda\" or \"cuda:N\", not {device!r}")
    import llama_cpp

    if not llama_cpp.llama_supports_gpu_offload():
        raise EngineError(f"{who}: this llama-cpp-python was built without GPU support, so it cannot run on "
                          f"{device}; reinstall it with CMAKE_ARGS=\"-DGGML_CUDA=on\" or use the cpu")
    if index:
        return {"n_gpu_layers": -1, "main_gpu": int(index), "split_mode": llama_cpp.LLAMA_SPLIT_MODE_NONE}
    return {"n_gpu_layers": -1}


def thread_settings() -> dict:
    """Generation on the physical cores this process may use (extra hyper-threads slow it down);
    prompt processing on every logical core it may use."""
    import psutil

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    physical = psutil.cpu_count(logical=False) or usable
    return {"n_threads": max(1, min(physical, usable)), "n_threads_batch": usable}


class OneAtATime:
    """A loaded ``Llama`` that one thread uses at a time (llama.cpp's context is not thread-safe).

    ``use(deadline, cancelled)`` waits while another thread uses it, but never without bound: at most
    ``MAX_WAITING`` threads wait (one more gets an EngineError saying the model is busy at once), each
    no longer than its ``deadline`` (a ``time.monotonic()`` value; then an EngineError), and a waiter
    whose ``cancelled()`` turns true leaves with None instead of the model. A thread that asks again
    while its own earlier stream is still open gets an EngineError instead of waiting for itself
    forever. ``count_tokens`` uses the tokenizer beside a running reply (it reads only the vocabulary).
    ``close()`` frees the model at once when it is idle, else asks the stream using it to stop early
    and frees it when that stream ends.
    """

    MAX_WAITING = 4  # replies that may queue for one model; more are refused as busy
    POLL = 0.05  # seconds between looks at ``cancelled`` while waiting

    def __init__(self, llm, label: str) -> None:
        self.label = label
        self.closing = False
        self._llm = llm
        self._lock = threading.Lock()
        self._tokenizer = threading.Lock()  # count_tokens and _free never overlap
        self._owner: int | None = None
        self._waiting = 0
        self._queue = threading.Lock()  # guards _waiting

    @contextmanager
    def use(self, deadline: float | None = None, cancelled=None):
        me = threading.get_ident()
        if self._owner == me:
            raise EngineError(f"{self.label}: a reply from this model is still open in this thread; "
                              f"read it to the end or close it before asking again")
        if not self._wait(deadline, cancelled):
            yield None
            return
        try:
            if self._llm is None or self.closing:
                raise EngineError(f"{self.label} has been unloaded")
            self._owner = me
            yield self._llm
        finally:
            self._owner = None
            if self.closing:
                self._free()
            self._lock.release()

    def _wait(self, deadline: float | None, cancelled) -> bool:
        """Take the model (True), or leave because ``cancelled()`` (False); EngineError when too
        many wait already or the deadline passes first."""
        if self._lock.acquire(blocking=False):
            return True
        with self._queue:
            if self._waiting >= self.MAX_WAITING:
                raise EngineError(f"{self.label} is busy: {self._waiting} replies are already waiting for it "
                                  f"(at most {self.MAX_WAITING}); try again when one has finished")
            self._waiting += 1
        started = time.monotonic()
        try:
            while True:
                wait = self.POLL if deadline is None else min(self.POLL, deadline - time.monotonic())
                if wait <= 0:
                    raise EngineError(f"{self.label} was busy with other replies for "
                                      f"{time.monotonic() - started:.0f} s, until this reply's time budget "
                                      f"ran out; try again when it is free")
                if self._lock.acquire(timeout=wait):
                    return True
                if cancelled is not None and cancelled():
                    return False
        finally:
            with self._queue:
                self._waiting -= 1

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes with the model's tokenizer (no BOS, special markers as text)."""
        with self._tokenizer:
            if self._llm is None:
                raise EngineError(f"{self.label} has been unloaded")
            data = text.encode("utf-8", "replace")
            return len(self._llm.tokenize(data, add_bos=False, special=False)) if data else 0

    @property
    def context_length(self) -> int:
        with self._tokenizer:
            return int(self._llm.n_ctx()) if self._llm is not None else 0

    def close(self) -> None:
        self.closing = True
        if self._owner == threading.get_ident():
            return  # this thread's open stream frees the model when it ends
        with self._lock:
            self._free()

    def _free(self) -> None:
        with self._tokenizer:
            if self._llm is not None:
                self._llm.close()
                self._llm = None
