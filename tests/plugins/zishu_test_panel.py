"""A plugin that adds a UI panel (a Flask blueprint with a nav link) and a job type."""

from flask import Blueprint

from zishu.hookspecs import hookimpl

panel = Blueprint("hello_panel", __name__, url_prefix="/plugins/hello")


@panel.get("/")
def hello():
    return "<!doctype html><title>Hello panel</title><h1 data-testid='hello'>Hello from a plugin</h1>"


@hookimpl
def register_routes(register):
    register(panel, nav=("Hello", "/plugins/hello/"))


def shout(ctx, text: str):
    ctx.progress(1, 1, "shouting")
    return text.upper()


@hookimpl
def register_job_types(register):
    register("shout", shout, title=lambda params: f"Shout {params['text']}")


class EchoEngine:
    """The smallest engine a third party could write: it 'loads' a GGUF by reading its header."""

    from zishu.engines import EngineInfo

    info = EngineInfo(kind="llm", name="echo", formats=("gguf",), capabilities=frozenset({"streaming"}),
                      description="Reads a GGUF's magic bytes; answers by echoing.")

    def load(self, model, device="cpu"):
        return open(model.path, "rb").read(4) if model.path.is_file() else b""


@hookimpl
def register_engines(register):
    register(EchoEngine())
