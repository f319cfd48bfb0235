"""A plugin whose engine registers fine but raises whenever it is asked to load a model."""

from zishu.engines import Engine, EngineInfo
from zishu.hookspecs import hookimpl


class GrumpyEngine(Engine):
    info = EngineInfo(kind="llm", name="grumpy", formats=("gguf",), description="Fails to load anything.")

    def load(self, model, device="cpu"):
        raise RuntimeError(f"grumpy refuses to load {model.path.name}")


@hookimpl
def register_engines(register):
    register(GrumpyEngine())
