"""The engines plugins registered, and choosing one for a model."""

from __future__ import annotations

from zishu import plugins
from zishu.errors import EngineError

from .api import Engine, ModelRef


class Engines:
    """Every engine registered through ``register_engines``; ``choose`` picks one for a model."""

    def __init__(self) -> None:
        self.engines: dict[str, Engine] = {}

    def register(self, engine: Engine) -> None:
        """The ``register`` callback of the ``register_engines`` hook; the first name wins."""
        info = getattr(engine, "info", None)
        if info is None or not callable(getattr(engine, "load", None)):
            raise TypeError(f"{engine!r} is not an engine: it needs an `info` (EngineInfo) and a `load` method")
        self.engines.setdefault(info.name, engine)

    @classmethod
    def from_plugins(cls) -> Engines:
        found = cls()
        plugins.call_each("register_engines", register=found.register)
        return found

    def of_kind(self, kind: str) -> list[Engine]:
        return [e for e in self.engines.values() if e.info.kind == kind]

    def choose(self, kind: str, model: ModelRef | None = None, name: str | None = None) -> Engine:
        """The engine called ``name`` (or named by the model, as a voice names its engine), else the
        first of ``kind`` that loads ``model``'s format."""
        name = name or (model.engine if model is not None else None)
        if name is not None:
            engine = self.engines.get(name)
            if engine is None:
                raise EngineError(f"no engine named {name!r}; installed: {', '.join(sorted(self.engines)) or 'none'}")
            if engine.info.kind != kind:
                raise EngineError(f"{name} is a {engine.info.kind} engine, not {kind}")
            return engine
        candidates = self.of_kind(kind)
        if model is None:
            usable = [e for e in candidates if not e.info.needs_model]
            if usable:
                return usable[0]
            raise EngineError(f"every {kind} engine needs a model: pass --model (a catalog id or a path)")
        usable = [e for e in candidates if model.format is None or model.format in e.info.formats]
        if not usable:
            formats = sorted({f for e in candidates for f in e.info.formats})
            raise EngineError(f"no {kind} engine loads {model.label} (format {model.format or 'unknown'}); "
                              f"installed {kind} engines load: {', '.join(formats) or 'nothing'}")
        return usable[0]
