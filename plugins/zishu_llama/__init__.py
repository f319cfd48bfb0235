"""The built-in llama.cpp engines, through llama-cpp-python (``pip install 'zishu[llm]'``):

- ``llama-cpp`` (llm): chats with a GGUF model using the model's own chat template, streams the
  reply, applies a GGUF LoRA, runs on the CPU or all layers on a CUDA GPU (``chat``);
- ``llama-cpp-embed`` (embedding): one normalised vector per text from a GGUF model (``embed``).

Modules: ``gguf_header`` reads a GGUF's metadata without loading it; ``loading`` holds what both
engines share (checks, context, devices, threads, memory estimate, one thread at a time); ``logs``
sends llama.cpp's log to Python logging;
``chat`` and ``embed`` are the two engines. llama_cpp is imported only when a model loads.
"""

from zishu.hookspecs import hookimpl

from .chat import LlamaChatEngine
from .embed import LlamaEmbedEngine


@hookimpl
def register_engines(register):
    register(LlamaChatEngine())
    register(LlamaEmbedEngine())
