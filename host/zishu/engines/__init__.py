"""Local inference engines: the API plugins implement (``api``), resolving models (``resolve``),
the registered engines (``catalog``) and the memory-bounded cache of loaded models (``cache``).

Engines never import the web app; the web app and the CLI reach engines through this package.
"""

from .api import CAPABILITIES, KINDS, Engine, EngineInfo, MemoryNeed, ModelRef
from .cache import ModelCache
from .catalog import Engines
from .resolve import resolve_model

__all__ = ["CAPABILITIES", "KINDS", "Engine", "EngineInfo", "Engines", "MemoryNeed", "ModelCache", "ModelRef",
           "resolve_model"]
