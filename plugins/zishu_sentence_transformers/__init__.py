"""The built-in ``sentence-transformers`` embedding engine: sentence-embedding models in the
sentence-transformers folder layout (safetensors weights, a tokenizer, ``modules.json``), such as
the catalog's BGE, turned into one unit-length vector per text for a character's memory.

``engine`` holds the engine (what it loads, where it can run, loading offline from the model's
folder); ``memory`` holds its memory estimate. torch and sentence-transformers are imported only
when a model loads (``pip install 'zishu[embedding]'``), so the host starts fast without them.
"""

from zishu.hookspecs import hookimpl

from .engine import SentenceEmbedEngine


@hookimpl
def register_engines(register):
    register(SentenceEmbedEngine())
