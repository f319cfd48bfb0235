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
