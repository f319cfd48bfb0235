"""Local inference engines: the API plugins implement (``api``), resolving models (``resolve``),
the registered engines (``catalog``) and the memory-bounded cache of loaded models (``cache``).

Engines never import the web app; the web app and the CLI reach engines through this package.
"""

from .api import CAPABILITIES, KINDS, Engine, EngineInfo, MemoryNeed, ModelRef
from .cache import ModelCache
from .catalog import Engines
from .kinds import (
    ASR_SAMPLE_RATE,
    CONTROL_KINDS,
    AudioChunk,
    ChatOptions,
    ImageRequest,
    Transcript,
    VideoRequest,
    texts_to_embed,
)
from .resolve import resolve_model
from .use import Ready, use

__all__ = ["ASR_SAMPLE_RATE", "CAPABILITIES", "CONTROL_KINDS", "KINDS", "AudioChunk", "ChatOptions", "Engine",
           "EngineInfo", "Engines", "ImageRequest", "MemoryNeed", "ModelCache", "ModelRef", "Ready", "Transcript",
           "VideoRequest", "resolve_model", "texts_to_embed", "use"]
